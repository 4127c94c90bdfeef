"""Entry point of the RagFlowCluster builders: BuildContext -> every child manifest, in order.

`build_cluster_children(ctx)` is called by handlers/cluster.py (then apply.py writes the result)
and by `ragflow-operator render`. Optional children whose API the cluster lacks (ServiceMonitor,
VPA) are left out and the reason is returned in `BuildResult.skipped`, which the handler shows in
a condition message. `CLUSTER_CHILD_KINDS` lists every kind a cluster may own, so apply.py can
remove children of features that were switched off (a promoted standby's sync CronJob).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragflow_operator import names
from ragflow_operator.builders import (
    autoscaling,
    dependencies,
    monitoring,
    networking,
    runtime,
    standby,
)
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.model.standby import standby_of

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


@dataclass(frozen=True)
class BuildResult:
    manifests: list[Manifest]
    #: Human-readable reasons why requested optional children were not built.
    skipped: list[str] = field(default_factory=list)


SKIPPED_SERVICE_MONITOR = (
    "ServiceMonitor skipped: the cluster does not serve "
    "monitoring.coreos.com/v1 ServiceMonitor (install the Prometheus Operator CRDs)"
)
SKIPPED_VPA = (
    "VerticalPodAutoscaler skipped: the cluster does not serve "
    "autoscaling.k8s.io/v1 VerticalPodAutoscaler (install the VPA CRDs)"
)


def wants_service_monitor(model: ClusterModel) -> bool:
    return bool(model.section("monitoring").get("serviceMonitor", True))


def skipped_children(model: ClusterModel, capabilities: Capabilities) -> list[str]:
    """Why requested optional children cannot be built on this cluster."""
    skipped = []
    if wants_service_monitor(model) and not capabilities.service_monitor:
        skipped.append(SKIPPED_SERVICE_MONITOR)
    if model.vpa_enabled and not capabilities.vertical_pod_autoscaler:
        skipped.append(SKIPPED_VPA)
    return skipped


def build_cluster_children(ctx: BuildContext, *, hold_runtime: bool = False) -> BuildResult:
    """All children of one RagFlowCluster in apply order (config and secrets first).

    `hold_runtime=True` (a restore from backup is pending) leaves out the API/worker
    Deployments and what scales them: nothing may write to the stores before the restore.
    """
    model = ctx.model
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
    if model.section("networkPolicy").get("enabled", True):
        manifests += networking.build_network_policies(ctx)
    manifests += networking.build_ingress(ctx)
    if wants_service_monitor(model) and ctx.capabilities.service_monitor:
        manifests.append(monitoring.build_service_monitor(ctx))
    if model.vpa_enabled and ctx.capabilities.vertical_pod_autoscaler and not hold_runtime:
        manifests += autoscaling.build_vpas(ctx)
    manifests += standby.build_standby_children(model, standby_of(model))
    return BuildResult(manifests=manifests, skipped=skipped_children(model, ctx.capabilities))
