"""HPA (seed behaviour, latency metric), replicas hand-over, VPA and PDB."""

from __future__ import annotations

from cluster_helpers import build, find, kinds
from ragflow_operator.builders.autoscaling import seconds_quantity
from ragflow_operator.capabilities import Capabilities


def test_hpa_scales_on_cpu_memory_and_latency_with_the_seed_behaviour():
    result = build({"autoscaling": {"enabled": True, "latencyTargetSeconds": 2.0}})
    hpa = find(result, "HorizontalPodAutoscaler", "docs-api")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "docs-api",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 20)
    cpu, memory, latency = spec["metrics"]
    assert cpu["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 70},
    }
    assert memory["resource"]["target"]["averageUtilization"] == 80
    assert latency["pods"]["metric"]["name"] == "ragflow_query_latency_p95_seconds"
    assert latency["pods"]["target"] == {"type": "AverageValue", "averageValue": "2"}
    assert spec["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
    }
    assert spec["behavior"]["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 50, "periodSeconds": 60},
        {"type": "Pods", "value": 2, "periodSeconds": 60},
    ]


def test_deployment_leaves_replicas_to_the_hpa_when_autoscaling_is_on():
    on = find(build({"autoscaling": {"enabled": True}}), "Deployment", "docs-api")
    off = find(build({"api": {"replicas": 5}}), "Deployment", "docs-api")
    assert "replicas" not in on["spec"]
    assert off["spec"]["replicas"] == 5
    assert "HorizontalPodAutoscaler/docs-api" not in kinds(build())


def test_latency_quantities():
    assert seconds_quantity(2.0) == "2"
    assert seconds_quantity(1.5) == "1500m"
    assert seconds_quantity(0.25) == "250m"


def test_vpa_only_recommends_for_the_api_while_the_hpa_is_on():
    spec = {
        "autoscaling": {"enabled": True},
        "verticalAutoscaling": {"enabled": True, "maxAllowed": {"cpu": "4", "memory": "8Gi"}},
    }
    result = build(spec)
    api = find(result, "VerticalPodAutoscaler", "docs-api")
    worker = find(result, "VerticalPodAutoscaler", "docs-worker")
    assert api["spec"]["updatePolicy"]["updateMode"] == "Off"
    assert worker["spec"]["updatePolicy"]["updateMode"] == "Auto"
    assert worker["spec"]["resourcePolicy"]["containerPolicies"][0]["maxAllowed"] == {
        "cpu": "4",
        "memory": "8Gi",
    }


def test_optional_children_are_skipped_with_a_reason_when_their_api_is_missing():
    result = build({"verticalAutoscaling": {"enabled": True}}, capabilities=Capabilities())
    built = kinds(result)
    assert not [k for k in built if k.startswith(("VerticalPodAutoscaler/", "ServiceMonitor/"))]
    assert any("ServiceMonitor skipped" in s for s in result.notes)
    assert any("VerticalPodAutoscaler skipped" in s for s in result.notes)
    assert build().notes == []


def test_pdb_follows_its_toggle():
    assert (
        find(
            build({"podDisruptionBudget": {"minAvailable": "50%"}}),
            "PodDisruptionBudget",
            "docs-api",
        )["spec"]["minAvailable"]
        == "50%"
    )
    assert "PodDisruptionBudget/docs-api" not in kinds(
        build({"podDisruptionBudget": {"enabled": False}})
    )


def test_a_pending_restore_holds_back_the_runtime_and_what_scales_it():
    from cluster_helpers import cluster_body
    from ragflow_operator.builders import cluster
    from ragflow_operator.model.cluster import ClusterModel

    spec = {"autoscaling": {"enabled": True}, "verticalAutoscaling": {"enabled": True}}
    model = ClusterModel.from_body(cluster_body(spec))
    held = [
        f"{m['kind']}/{m['metadata']['name']}"
        for m in cluster.build(model, Capabilities.all_enabled(), hold_runtime=True).manifests
    ]
    assert not [
        k
        for k in held
        if k.startswith(("Deployment/", "HorizontalPodAutoscaler/", "VerticalPodAutoscaler/"))
    ]
    assert "StatefulSet/docs-postgres" in held and "Service/docs-api" in held
