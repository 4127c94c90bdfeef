"""Status of a RagFlowCluster computed from its children's facts (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from cluster_helpers import cluster_body, external_deps_spec
from ragflow_operator import cluster_status
from ragflow_operator.conditions import find_condition
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.observe import MISSING, WorkloadFacts, workload_facts

NOW = datetime(2026, 1, 1, tzinfo=UTC)
READY = WorkloadFacts(
    exists=True, desired=2, current=2, ready=2, available=2, updated=2, observed=True
)


def cond(status, type_):
    return find_condition(status["conditions"], type_)


def test_everything_ready_gives_ready_true_and_running():
    model = ClusterModel.from_body(cluster_body())
    facts = cluster_status.ClusterFacts(
        api=READY, worker=READY, dependencies={"postgres": READY, "redis": READY, "milvus": READY}
    )
    status = cluster_status.summarise(model, facts, current={}, skipped=[], now=NOW)
    assert cond(status, "Ready")["status"] == "True"
    assert cond(status, "DatabaseReady")["reason"] == "StatefulSetReady"
    assert cond(status, "Progressing")["status"] == "False"
    assert cond(status, "Degraded")["status"] == "False"
    assert status["phase"] == "Running"
    assert (status["replicas"], status["readyReplicas"]) == (2, 2)
    assert status["observedGeneration"] == 3
    assert status["endpoint"] == "http://docs-api.team-a.svc:9380"
    assert status["selector"].startswith("app.kubernetes.io/component=api,")


def test_missing_dependency_keeps_the_cluster_not_ready_and_says_why():
    model = ClusterModel.from_body(cluster_body())
    facts = cluster_status.ClusterFacts(
        api=READY, worker=READY, dependencies={"postgres": MISSING, "redis": READY, "milvus": READY}
    )
    status = cluster_status.summarise(
        model, facts, current={}, skipped=["ServiceMonitor skipped: x"], now=NOW
    )
    assert cond(status, "DatabaseReady")["status"] == "False"
    ready = cond(status, "Ready")
    assert ready["status"] == "False"
    assert "dependencies not ready" in ready["message"]
    assert "ServiceMonitor skipped" in ready["message"]
    assert status["phase"] == "Provisioning"


def test_external_dependencies_are_reported_as_external():
    model = ClusterModel.from_body(cluster_body(external_deps_spec()))
    facts = cluster_status.ClusterFacts(api=READY, worker=READY, dependencies={})
    status = cluster_status.summarise(model, facts, current={}, skipped=[], now=NOW)
    assert cond(status, "VectorStoreReady")["reason"] == "External"
    assert cond(status, "Ready")["status"] == "True"


def test_a_second_summary_of_the_same_facts_changes_nothing():
    model = ClusterModel.from_body(cluster_body(external_deps_spec()))
    facts = cluster_status.ClusterFacts(api=READY, worker=READY, dependencies={})
    first = cluster_status.summarise(model, facts, current={}, skipped=[], now=NOW)
    second = cluster_status.summarise(
        model, facts, current=first, skipped=[], now=datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert second == first


def test_deployment_facts_from_a_live_object():
    live = {
        "kind": "Deployment",
        "metadata": {"generation": 4},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": 4,
            "replicas": 3,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "updatedReplicas": 3,
            "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
            ],
        },
    }
    facts = workload_facts(live)
    assert facts.rolled_out and not facts.is_ready
    assert facts.stuck_reason == "ProgressDeadlineExceeded"
    model = ClusterModel.from_body(cluster_body(external_deps_spec()))
    status = cluster_status.summarise(
        model,
        cluster_status.ClusterFacts(api=facts, worker=READY, dependencies={}),
        current={},
        skipped=[],
        now=NOW,
    )
    assert cond(status, "Degraded")["reason"] == "RolloutStuck"
    assert status["phase"] == "Degraded"


def test_failure_status_names_the_reason():
    model = ClusterModel.from_body(cluster_body())
    status = cluster_status.failed(
        model, 3, reason="MissingSecret", message="Secret pg does not exist", current={}, now=NOW
    )
    ready = cond(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MissingSecret")
    assert status["phase"] == "Failed"


def test_pending_restore_keeps_ready_false_with_the_restore_reason():
    model = ClusterModel.from_body(cluster_body())
    facts = cluster_status.ClusterFacts(
        api=MISSING,
        worker=MISSING,
        dependencies={"postgres": READY, "redis": READY, "milvus": READY},
    )
    progress = cluster_status.RestoreProgress("running", "restore Job running: backup latest")
    status = cluster_status.summarise(
        model, facts, current={}, skipped=[], now=NOW, restore=progress
    )
    assert (cond(status, "Ready")["status"], cond(status, "Ready")["reason"]) == (
        "False",
        "Restoring",
    )
    assert cond(status, "Restored")["reason"] == "Restoring"
    done = cluster_status.RestoreProgress("succeeded", "restored backup latest")
    facts = cluster_status.ClusterFacts(
        api=READY, worker=READY, dependencies={"postgres": READY, "redis": READY, "milvus": READY}
    )
    status = cluster_status.summarise(
        model, facts, current=status, skipped=[], now=NOW, restore=done
    )
    assert cond(status, "Restored")["status"] == "True"
    assert cond(status, "Ready")["status"] == "True"
    # later reconciles pass no restore progress: the Restored condition stays as it was
    later = cluster_status.summarise(model, facts, current=status, skipped=[], now=NOW)
    assert cond(later, "Restored") == cond(status, "Restored")
