"""Scaling children of a RagFlowCluster: HorizontalPodAutoscaler, VPAs, PodDisruptionBudget.

Called by builders/cluster.py. The HPA (autoscaling/v2) scales the API Deployment on CPU and
memory utilisation and, with `latencyTargetSeconds`, on the per-pod p95 query latency served by
prometheus-adapter as `ragflow_query_latency_p95_seconds`; behaviour defaults are the seed's.
VPAs exist only when the VPA API is served (the caller records why otherwise). While the HPA is
on, the API's VPA only recommends (updateMode Off), so the two never fight over CPU/memory.
"""

from __future__ import annotations

from typing import Any

from ragflow_operator import names
from ragflow_operator.builders import common
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest, render_manifest
from ragflow_operator.model.cluster import Autoscaling

Json = dict[str, Any]


def _meta(ctx: BuildContext, name: str, component: str) -> Json:
    return common.object_meta(
        name=name,
        namespace=ctx.model.namespace,
        labels=names.component_labels(ctx.model.name, component),
        owner_references=ctx.owner_references(),
    )


def seconds_quantity(seconds: float) -> str:
    """A latency in seconds as a Kubernetes quantity (2.0 → "2", 1.5 → "1500m")."""
    millis = round(seconds * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def hpa_metrics(autoscaling: Autoscaling) -> list[Json]:
    metrics: list[Json] = [
        {
            "type": "Resource",
            "resource": {
                "name": resource,
                "target": {"type": "Utilization", "averageUtilization": utilization},
            },
        }
        for resource, utilization in (
            ("cpu", autoscaling.target_cpu_utilization),
            ("memory", autoscaling.target_memory_utilization),
        )
    ]
    latency = autoscaling.latency_target_seconds
    if latency:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": names.LATENCY_METRIC},
                    "target": {"type": "AverageValue", "averageValue": seconds_quantity(latency)},
                },
            }
        )
    return metrics


def build_hpa(ctx: BuildContext) -> list[Manifest]:
    model = ctx.model
    autoscaling = model.autoscaling
    if not autoscaling.enabled:
        return []
    return [
        render_manifest(
            "horizontalpodautoscaler.yaml.j2",
            meta=_meta(ctx, names.api_name(model.name), names.COMPONENT_API),
            target=names.api_name(model.name),
            min_replicas=autoscaling.min_replicas,
            max_replicas=autoscaling.max_replicas,
            metrics=hpa_metrics(autoscaling),
            behavior=dict(autoscaling.behavior),
        )
    ]


def build_vpas(ctx: BuildContext) -> list[Manifest]:
    model = ctx.model
    vpa = model.vertical_autoscaling
    policy: Json = {
        "containerName": names.RUNTIME_CONTAINER,
        "controlledResources": ["cpu", "memory"],
    }
    for key, bound in (("minAllowed", vpa.min_allowed), ("maxAllowed", vpa.max_allowed)):
        if bound:
            policy[key] = dict(sorted(bound.items()))
    mode = vpa.update_mode
    api_mode = "Off" if model.autoscaling.enabled else mode
    targets = (
        (names.api_name(model.name), names.COMPONENT_API, api_mode),
        (names.worker_name(model.name), names.COMPONENT_WORKER, mode),
    )
    return [
        render_manifest(
            "verticalpodautoscaler.yaml.j2",
            meta=_meta(ctx, name, component),
            target=name,
            update_mode=update_mode,
            container_policies=[policy],
        )
        for name, component, update_mode in targets
    ]


def build_pdb(ctx: BuildContext) -> list[Manifest]:
    model = ctx.model
    pdb = model.pod_disruption_budget
    if not pdb.enabled:
        return []
    return [
        render_manifest(
            "poddisruptionbudget.yaml.j2",
            meta=_meta(ctx, names.api_name(model.name), names.COMPONENT_API),
            min_available=pdb.min_available,
            selector=names.selector_labels(model.name, names.COMPONENT_API),
        )
    ]
