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
from ragflow_operator.builders import alert_policy, backup
from ragflow_operator.builders.cluster import build_cluster_children
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.backup_policy import BackupPolicyModel
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


def render_backup_policy(body: dict[str, Any], capabilities: Capabilities) -> RenderResult:
    """The policy's ConfigMap and CronJobs, for a RagFlowCluster with the CRD's defaults.

    The backup pods copy the cluster's image and connection settings; a file holds only the policy,
    so the referenced cluster is rendered with every default (what `spec: {}` gives), and a note
    says so. The operator itself reads the live RagFlowCluster.
    """
    model = BackupPolicyModel.from_body(body)
    cluster = ClusterModel.from_body(
        {"metadata": {"name": model.cluster, "namespace": model.namespace}, "spec": {}}
    )
    manifests = backup.build_policy_children(model, backup.runtime_target(cluster, model))
    note = (
        f"BackupPolicy {model.name}: image and connection settings rendered for RagFlowCluster "
        f"{model.cluster} with default settings; the operator uses the live cluster's"
    )
    return RenderResult(manifests=manifests, notes=[note])


Renderer = Callable[[dict[str, Any], Capabilities], RenderResult]

RENDERERS: dict[str, Renderer] = {
    names.KIND_CLUSTER: render_cluster,
    names.KIND_ALERT_POLICY: render_alert_policy,
    names.KIND_BACKUP_POLICY: render_backup_policy,
}
