"""`render` support: kind -> function turning a CR body into the children the operator applies.

cli.py's `render -f cr.yaml` looks the document's `kind` up in RENDERERS. Each entry parses the
body into its kind's model and calls that kind's builder, `build(model, capabilities)`
(builders/children.py); to make another kind renderable, add ONE entry mapping its kind to a
function `(body, capabilities) -> Children`. Bodies are defaulted from the CRD first, values
that the operator would generate at random are fixed placeholders, and owner references are
omitted when the body has no uid: the output is stable (byte-identical for the same input),
suitable for reviews and GitOps diffs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ragflow_operator import names
from ragflow_operator.builders import alert_policy, backup, cluster
from ragflow_operator.builders.children import Children
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.alert_policy import AlertPolicyModel
from ragflow_operator.model.backup_policy import BackupPolicyModel
from ragflow_operator.model.cluster import ClusterModel


def render_cluster(body: dict[str, Any], capabilities: Capabilities) -> Children:
    return cluster.build(ClusterModel.from_body(body), capabilities)


def render_alert_policy(body: dict[str, Any], capabilities: Capabilities) -> Children:
    return alert_policy.build(AlertPolicyModel.from_body(body), capabilities)


def render_backup_policy(body: dict[str, Any], capabilities: Capabilities) -> Children:
    """The policy's ConfigMap and CronJobs, for a RagFlowCluster with the CRD's defaults.

    The backup pods copy the cluster's image and connection settings; a file holds only the policy,
    so the referenced cluster is rendered with every default (what `spec: {}` gives), and a note
    says so. The operator itself reads the live RagFlowCluster.
    """
    model = BackupPolicyModel.from_body(body)
    target = ClusterModel.from_body(
        {"metadata": {"name": model.cluster, "namespace": model.namespace}, "spec": {}}
    )
    built = backup.build(model, capabilities, target=backup.runtime_target(target, model))
    note = (
        f"BackupPolicy {model.name}: image and connection settings rendered for RagFlowCluster "
        f"{model.cluster} with default settings; the operator uses the live cluster's"
    )
    return Children(manifests=built.manifests, notes=[*built.notes, note])


Renderer = Callable[[dict[str, Any], Capabilities], Children]

RENDERERS: dict[str, Renderer] = {
    names.KIND_CLUSTER: render_cluster,
    names.KIND_ALERT_POLICY: render_alert_policy,
    names.KIND_BACKUP_POLICY: render_backup_policy,
}
