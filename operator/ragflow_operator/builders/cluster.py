"""Entry point of the RagFlowCluster builders: model + capabilities -> every child, in order.

`build(model, capabilities)` (the shape of every kind's builder, builders/children.py) is called
by handlers/cluster.py (then apply.py writes the result) and by `ragflow-operator render`.
Optional children whose API the cluster lacks (ServiceMonitor, VPA) are left out and the reason
is returned in `Children.notes`, which the handler shows in a condition message.
`CLUSTER_CHILD_KINDS` lists every kind a cluster may own, so apply.py can remove children of
features that were switched off (a promoted standby's sync CronJob).
"""

from __future__ import annotations

from collections.abc import Mapping

from ragflow_operator import names
from ragflow_operator.builders import (
    autoscaling,
    dependencies,
    monitoring,
    networking,
    runtime,
    standby,
)
from ragflow_operator.builders.children import Children
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.cluster import ClusterModel

#: (apiVersion, kind) of everything a RagFlowCluster may own, for removal of switched-off parts.
CLUSTER_CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
    ("batch/v1", "CronJob"),
)


SKIPPED_SERVICE_MONITOR = (
    "ServiceMonitor skipped: the cluster does not serve "
    "monitoring.coreos.com/v1 ServiceMonitor (install the Prometheus Operator CRDs)"
)
SKIPPED_VPA = (
    "VerticalPodAutoscaler skipped: the cluster does not serve "
    "autoscaling.k8s.io/v1 VerticalPodAutoscaler (install the VPA CRDs)"
)


def skipped_children(model: ClusterModel, capabilities: Capabilities) -> list[str]:
    """Why requested optional children cannot be built on this cluster."""
    skipped = []
    if model.monitoring.service_monitor and not capabilities.service_monitor:
        skipped.append(SKIPPED_SERVICE_MONITOR)
    if model.vertical_autoscaling.enabled and not capabilities.vertical_pod_autoscaler:
        skipped.append(SKIPPED_VPA)
    return skipped


def build(
    model: ClusterModel,
    capabilities: Capabilities,
    *,
    generated: Mapping[str, Mapping[str, str]] | None = None,
    hold_runtime: bool = False,
) -> Children:
    """All children of one RagFlowCluster in apply order (config and secrets first).

    `generated` holds the values of Secrets the operator generates (secret -> key -> value,
    `generated_secret_keys` says which; the kopf layer draws them, `render` leaves them out and
    gets fixed placeholders). `hold_runtime=True` (a restore from backup is pending) leaves out
    the API/worker Deployments and what scales them: nothing may write to the stores before
    the restore.
    """
    ctx = BuildContext(model=model, capabilities=capabilities, generated=generated or {})
    runtime_parts: list[Manifest] = []
    if not hold_runtime:
        runtime_parts = [
            runtime.build_deployment(ctx, names.COMPONENT_API),
            runtime.build_deployment(ctx, names.COMPONENT_WORKER),
            *autoscaling.build_hpa(ctx),
        ]
    manifests: list[Manifest] = [
        runtime.build_config_map(ctx),
        runtime.build_api_key_secret(ctx),
        *dependencies.build_dependencies(ctx),
        runtime.build_service(ctx, names.COMPONENT_API),
        runtime.build_service(ctx, names.COMPONENT_WORKER),
        *runtime_parts,
        *autoscaling.build_pdb(ctx),
    ]
    if model.network_policy.enabled:
        manifests += networking.build_network_policies(ctx)
    manifests += networking.build_ingress(ctx)
    if model.monitoring.service_monitor and capabilities.service_monitor:
        manifests.append(monitoring.build_service_monitor(ctx))
    vpa = model.vertical_autoscaling.enabled and capabilities.vertical_pod_autoscaler
    if vpa and not hold_runtime:
        manifests += autoscaling.build_vpas(ctx)
    manifests += standby.build_standby_children(model)
    return Children(manifests=manifests, notes=skipped_children(model, capabilities))
