"""Argo CD health checks (deploy/argocd/health.lua), run with Lua 5.1 like Argo CD's gopher-lua.

Each case feeds a custom resource with a sample status to the script through lupa and checks the
health status Argo CD would show; the argocd-cm snippet must carry the same script for each kind.
"""

from __future__ import annotations

from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from conftest import REPO_ROOT

HEALTH_LUA = REPO_ROOT / "deploy" / "argocd" / "health.lua"
KINDS = ("RagFlowCluster", "BackupPolicy", "AlertPolicy")


def condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def assess(resource: dict[str, Any]) -> tuple[str, str]:
    """Run health.lua against the resource; (status, message) as Argo CD would read them."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(resource, recursive=True)
    health = runtime.execute(HEALTH_LUA.read_text())
    return health["status"], health["message"]


def resource(
    status: dict[str, Any] | None, generation: int = 2, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "ragflow.operator.dev/v1alpha1",
        "kind": "RagFlowCluster",
        "metadata": {"name": "demo", "namespace": "ragflow", "generation": generation},
        "spec": spec or {},
    }
    if status is not None:
        body["status"] = status
    return body


CASES = {
    "ready": (
        {"observedGeneration": 2, "conditions": [condition("Ready", "True", "Ready", "All good")]},
        ("Healthy", "All good"),
    ),
    "not ready while progressing": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "False", "Reconciling"),
                condition("Progressing", "True", "RollingOut", "2/3 api replicas ready"),
            ],
        },
        ("Progressing", "2/3 api replicas ready"),
    ),
    "degraded wins over ready": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "True", "Ready"),
                condition("Degraded", "True", "DatabaseDown", "postgres unreachable"),
            ],
        },
        ("Degraded", "postgres unreachable"),
    ),
    "not ready and not progressing": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "False", "MissingReference", "secret s3-creds not found"),
                condition("Progressing", "False", "Stalled"),
            ],
        },
        ("Degraded", "secret s3-creds not found"),
    ),
    "old generation observed": (
        {"observedGeneration": 1, "conditions": [condition("Ready", "True", "Ready")]},
        ("Progressing", "Waiting for the operator to observe generation 2"),
    ),
    "no observed generation yet": (
        {"conditions": [condition("Ready", "True", "Ready")]},
        ("Progressing", "Waiting for the operator to observe generation 2"),
    ),
    "no status": (None, ("Progressing", "Waiting for the operator to report status")),
    "status without conditions": (
        {"observedGeneration": 2},
        ("Progressing", "Waiting for the Ready condition"),
    ),
    "ready but the last backup failed": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "True", "Ready"),
                condition("LastBackupSucceeded", "False", "BackupFailed", "s3: access denied"),
            ],
        },
        ("Degraded", "s3: access denied"),
    ),
    "ready and the last validation failed": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "True", "Ready"),
                condition("LastBackupSucceeded", "True", "BackupSucceeded"),
                condition("LastValidationSucceeded", "False", "ValidationFailed"),
            ],
        },
        ("Degraded", "ValidationFailed"),
    ),
    "restoring from a backup": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "False", "Restoring", "restore Job running"),
                condition("Progressing", "False", "RolledOut"),
                condition("Restored", "False", "Restoring", "restore Job running: docs-restore"),
            ],
        },
        ("Progressing", "restore Job running: docs-restore"),
    ),
    "restore failed": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "False", "RestoreFailed", "restore Job docs-restore failed"),
                condition("Restored", "False", "RestoreFailed", "restore Job docs-restore failed"),
            ],
        },
        ("Degraded", "restore Job docs-restore failed"),
    ),
    "ready unknown": (
        {"observedGeneration": 2, "conditions": [condition("Ready", "Unknown", "Starting")]},
        ("Progressing", "Starting"),
    ),
    "standby following its primary": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "True", "AllComponentsReady", "serving"),
                condition("Progressing", "False", "RolledOut"),
                condition("StandbyReady", "True", "Following", "serving backup b1 of docs-eu"),
            ],
        },
        ("Healthy", "Standby (read-only): serving backup b1 of docs-eu"),
    ),
    "standby waiting for its first sync": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "True", "AllComponentsReady", "serving"),
                condition("StandbyReady", "False", "WaitingForSync", "waiting for the first sync"),
            ],
        },
        ("Progressing", "Standby: waiting for the first sync"),
    ),
    "standby lagging": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "True", "AllComponentsReady", "serving"),
                condition("StandbyReady", "False", "Lagging", "backup b1 is 2000s old"),
            ],
        },
        ("Degraded", "Standby: backup b1 is 2000s old"),
    ),
    "standby sync failing": (
        {
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "True", "AllComponentsReady", "serving"),
                condition("StandbyReady", "False", "SyncFailed", "no destination readable"),
            ],
        },
        ("Degraded", "Standby: no destination readable"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_health_follows_the_conditions(case: str) -> None:
    status, expected = CASES[case]
    assert assess(resource(status)) == expected


def test_suspended_backup_policy_reports_suspended_unless_degraded() -> None:
    ready = {"observedGeneration": 2, "conditions": [condition("Ready", "True", "Ready")]}
    assert assess(resource(ready, spec={"suspend": True}))[0] == "Suspended"
    degraded = {"observedGeneration": 2, "conditions": [condition("Degraded", "True", "Broken")]}
    assert assess(resource(degraded, spec={"suspend": True}))[0] == "Degraded"


def test_argocd_cm_carries_the_script_for_all_three_kinds() -> None:
    config_map = yaml.safe_load(
        (REPO_ROOT / "deploy" / "argocd" / "argocd-cm-health.yaml").read_text()
    )
    assert config_map["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
    }
    expected_keys = {
        f"resource.customizations.health.ragflow.operator.dev_{kind}" for kind in KINDS
    }
    assert set(config_map["data"]) == expected_keys
    script = HEALTH_LUA.read_text()
    for key in expected_keys:
        assert config_map["data"][key] == script, f"{key} differs from deploy/argocd/health.lua"


def test_application_example_points_at_the_chart_and_samples() -> None:
    apps = list(
        yaml.safe_load_all((REPO_ROOT / "deploy" / "argocd" / "application.yaml").read_text())
    )
    by_name = {app["metadata"]["name"]: app for app in apps}
    chart = by_name["ragflow-operator"]["spec"]
    assert chart["source"]["path"] == "charts/ragflow-operator"
    assert (REPO_ROOT / chart["source"]["path"] / "Chart.yaml").is_file()
    assert "ServerSideApply=true" in chart["syncPolicy"]["syncOptions"]
    samples = by_name["ragflow-samples"]["spec"]
    assert samples["source"]["path"] == "samples"
    waves = [int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for app in apps]
    assert waves == sorted(waves)


# --- statuses the operator itself writes (cluster_status), not hand-written samples ----------


def _operator_status_of_a_failed_restore() -> dict[str, Any]:
    from datetime import UTC, datetime

    from ragflow_operator import cluster_status
    from ragflow_operator.model.cluster import ClusterModel
    from ragflow_operator.observe import MISSING, WorkloadFacts

    now = datetime(2026, 1, 1, tzinfo=UTC)
    body = resource(None, generation=2, spec={"restoreFrom": {"backupPolicy": "p", "latest": True}})
    body["metadata"]["uid"] = "uid-1"
    model = ClusterModel.from_body(body)
    ready = WorkloadFacts(True, 1, 1, 1, 1, 1, observed=True)
    facts = cluster_status.ClusterFacts(
        api=MISSING,
        worker=MISSING,
        dependencies=dict.fromkeys(("postgres", "redis", "milvus"), ready),
    )
    running = cluster_status.RestoreProgress("running", "restore Job running: backup latest")
    restoring = cluster_status.summarise(
        model, facts, current={}, skipped=[], now=now, restore=running
    )
    assert assess(resource(restoring))[0] == "Progressing"
    return cluster_status.failed(
        model,
        2,
        reason=cluster_status.RESTORE_FAILED,
        message="restore Job demo-restore failed",
        current=restoring,
        now=now,
    )


def test_a_failed_restore_as_the_operator_writes_it_is_degraded_not_progressing() -> None:
    status = _operator_status_of_a_failed_restore()
    assert assess(resource(status)) == ("Degraded", "restore Job demo-restore failed")


def test_a_missing_secret_during_a_restore_is_degraded_not_progressing() -> None:
    from datetime import UTC, datetime

    from ragflow_operator import cluster_status

    restoring = {
        "observedGeneration": 2,
        "conditions": [
            condition("Ready", "False", "Restoring", "restore Job running"),
            condition("Restored", "False", "Restoring", "restore Job running"),
        ],
    }
    status = cluster_status.failed(
        None,
        2,
        reason="MissingSecret",
        message="Secret s3 does not exist",
        current=restoring,
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert assess(resource(status)) == ("Degraded", "Secret s3 does not exist")


def test_ready_with_a_rollout_in_progress_is_progressing() -> None:
    status = {
        "observedGeneration": 2,
        "conditions": [
            condition("Ready", "True", "AllComponentsReady", "serving"),
            condition("Progressing", "True", "RollingOut", "waiting for: api"),
        ],
    }
    assert assess(resource(status)) == ("Progressing", "waiting for: api")
