"""`render` support: kind -> function turning a CR body into the manifests the operator applies.

cli.py's `render -f cr.yaml` looks the document's `kind` up in RENDERERS. To make another kind
renderable, add ONE entry mapping its kind to a function `(body, capabilities) -> RenderResult`.
Bodies are defaulted from the CRD first, values that the operator would generate at random are
fixed placeholders, and owner references are omitted when the body has no uid: the output is
stable (byte-identical for the same input), suitable for reviews and GitOps diffs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ragflow_operator import names
from ragflow_operator.builders import alert_policy
from ragflow_operator.builders.cluster import build_cluster_children
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.cluster import ClusterModel


@dataclass(frozen=True)
class RenderResult:
    manifests: list[Manifest]
    #: Remarks printed to stderr (e.g. optional children skipped for lack of an API).
    notes: list[str] = field(default_factory=list)


def render_cluster(body: dict[str, Any], capabilities: Capabilities) -> RenderResult:
    model = ClusterModel.from_body(body)
    built = build_cluster_children(BuildContext(model=model, capabilities=capabilities))
    return RenderResult(manifests=built.manifests, notes=built.skipped)


def render_alert_policy(body: dict[str, Any], capabilities: Capabilities) -> RenderResult:
    built = alert_policy.render_alert_policy(body, capabilities.prometheus_rule)
    return RenderResult(manifests=built.manifests, notes=built.notes)


Renderer = Callable[[dict[str, Any], Capabilities], RenderResult]

RENDERERS: dict[str, Renderer] = {
    names.KIND_CLUSTER: render_cluster,
    names.KIND_ALERT_POLICY: render_alert_policy,
}
