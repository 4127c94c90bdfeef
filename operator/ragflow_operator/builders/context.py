"""The input of every RagFlowCluster sub-builder: model, capabilities and generated secret values.

Made by `builders.cluster.build` from its arguments: the kopf layer (handlers/cluster.py) passes
random values for Secrets that do not exist yet, the `render` command passes none (fixed
placeholders, so its output is stable). Builders never make random values themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ragflow_operator import names
from ragflow_operator.builders.common import owner_reference
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.cluster import ClusterModel

#: Value `render` puts into generated Secrets: the operator generates the real one on create.
RENDER_PLACEHOLDER = "generated-by-operator-on-create"


@dataclass(frozen=True)
class BuildContext:
    """Model + cluster capabilities + values for Secrets the operator generates once."""

    model: ClusterModel
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: secret name -> key -> value; missing entries get RENDER_PLACEHOLDER.
    generated: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def generated_value(self, secret: str, key: str) -> str:
        return self.generated.get(secret, {}).get(key, RENDER_PLACEHOLDER)

    def owner_references(self) -> list[dict[str, object]]:
        return owner_reference(
            api_version=names.API_VERSION,
            kind=names.KIND_CLUSTER,
            name=self.model.name,
            uid=self.model.uid,
        )
