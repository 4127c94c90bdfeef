"""BackupPolicy on a real API server: CronJobs with the right settings, on-demand Jobs, and a
finished Job's termination message landing in the policy's status.

The operator's BackupPolicy handlers run in kopf (KopfRunner) against the local control plane.
No pod ever runs there (kwok plays the kubelet), so a finished backup is staged the way the Job
controller and kubelet would leave it: a Job managed by a stand-in controller (`spec.managedBy`)
whose status says Complete/Failed, and a pod carrying the JSON summary that `ragruntime backup
run` writes as its termination message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from e2e.controlplane.cluster import Cluster
from e2e.support import (
    apply,
    eventually,
    get,
    install_crd,
    kopf_handlers,
    stage_finished_job,
)

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[1]
HANDLERS = "ragflow_operator.handlers.backup_policy"
POLICY_LABEL = "ragflow.operator.dev/backup-policy"


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((dict(c) for c in status.get("conditions", []) if c["type"] == type_), {})


@kopf.on.login()
def login_from_kubeconfig(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Read $KUBECONFIG when kopf starts, not when `kubernetes` was first imported."""
    return kopf.login_with_kubeconfig(**kwargs)


def status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return (get(cluster, namespace, "backuppolicy", "nightly") or {}).get("status", {})


def policy(namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ragflow.operator.dev/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": {"name": "nightly", "namespace": namespace},
        "spec": {
            "clusterRef": {"name": "docs"},
            "schedules": [
                {
                    "name": "hourly",
                    "schedule": "0 * * * *",
                    "type": "incremental",
                    "retention": {"maxAge": "24h"},
                },
                {"name": "weekly", "schedule": "0 2 * * 0", "retention": {"count": 52}},
            ],
            "destinations": [
                {"name": "primary", "s3": {"bucket": "b", "credentialsSecret": {"name": "aws"}}},
                {
                    "name": "secondary",
                    "azure": {"container": "c", "credentialsSecret": {"name": "azure"}},
                },
            ],
            "encryption": {"keySecret": {"name": "backup-keys"}},
            **spec,
        },
    }


def secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


@pytest.fixture
def operator(cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for crd in ("ragflowclusters", "backuppolicies"):
        install_crd(cluster, ROOT / "crds" / f"{crd}.yaml")
    monkeypatch.setenv("RAGFLOW_OPERATOR_RESYNC_SECONDS", "2")
    for body in (
        secret(namespace, "backup-keys", {"keyring": "a2V5"}),
        secret(namespace, "aws", {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "s"}),
        secret(namespace, "azure", {"AZURE_STORAGE_CONNECTION_STRING": "x"}),
        {
            "apiVersion": "ragflow.operator.dev/v1alpha1",
            "kind": "RagFlowCluster",
            "metadata": {"name": "docs", "namespace": namespace},
            "spec": {},
        },
    ):
        apply(cluster, body)
    with kopf_handlers(cluster, namespace, HANDLERS, monkeypatch):
        yield


def finished_job(
    cluster: Cluster, namespace: str, name: str, kind: str, summary: dict, *, failed: bool = False
) -> None:
    """A backup Job and pod left as the Job controller and kubelet would leave them."""
    labels = {POLICY_LABEL: "nightly", "ragflow.operator.dev/backup-job": kind}
    stage_finished_job(
        cluster, namespace, name, labels, summary, failed=failed, stamp="2026-03-01T01:00:00Z"
    )


def test_policy_yields_cronjobs_with_safe_settings_and_reports_job_results(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    apply(cluster, policy(namespace))
    cronjobs = eventually(
        "the CronJobs exist",
        lambda: (
            {
                n: get(cluster, namespace, "cronjob", n)
                for n in ("nightly-hourly", "nightly-weekly", "nightly-validate")
            }
            if all(
                get(cluster, namespace, "cronjob", n)
                for n in ("nightly-hourly", "nightly-weekly", "nightly-validate")
            )
            else None
        ),
    )
    hourly = cronjobs["nightly-hourly"]["spec"]
    assert hourly["schedule"] == "0 * * * *"
    assert hourly["concurrencyPolicy"] == "Forbid"
    assert hourly["startingDeadlineSeconds"] == 300 and hourly["suspend"] is False
    pod = hourly["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][2:5] == ["run", "--schedule", "hourly"]
    assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == {
        "backup-keys",
        "aws",
        "azure",
    }
    ready = eventually("Ready", lambda: condition(status(cluster, namespace), "Ready") or None)
    assert ready["status"] == "True"
    assert set(status(cluster, namespace)["nextScheduled"]) == {"hourly", "weekly"}

    summary = {
        "kind": "backup",
        "id": "20260301T000000Z-abcdef",
        "succeeded": True,
        "schedule": "hourly",
        "type": "incremental",
        "bytes": 1234,
        "destinations": [
            {"name": "primary", "state": "succeeded", "error": ""},
            {"name": "secondary", "state": "failed", "error": "connection refused"},
        ],
    }
    finished_job(cluster, namespace, "nightly-hourly-1", "backup", summary)
    last = eventually(
        "lastBackup is filled", lambda: status(cluster, namespace).get("lastSuccessfulBackup")
    )
    assert last["id"] == summary["id"]
    current = status(cluster, namespace)
    assert current["lastBackup"]["destinations"][1] == {
        "name": "secondary",
        "state": "failed",
        "error": "connection refused",
    }
    assert condition(current, "LastBackupSucceeded")["status"] == "True"

    failed = {
        "kind": "backup",
        "succeeded": False,
        "error": "only 0 of 2 destinations took it",
        "destinations": [],
    }
    finished_job(cluster, namespace, "nightly-hourly-2", "backup", failed, failed=True)
    eventually(
        "the failure is reported",
        lambda: (
            condition(status(cluster, namespace), "LastBackupSucceeded").get("status") == "False"
        ),
    )
    assert status(cluster, namespace)["lastSuccessfulBackup"]["id"] == summary["id"]
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json")
    reasons = {e.get("reason") for e in json.loads(events.stdout)["items"]}
    assert "BackupFailed" in reasons


def test_suspend_and_on_demand_backups(cluster: Cluster, namespace: str, operator: None) -> None:
    apply(cluster, policy(namespace, suspend=True))
    eventually(
        "suspended CronJobs",
        lambda: (
            (get(cluster, namespace, "cronjob", "nightly-hourly") or {})
            .get("spec", {})
            .get("suspend")
            is True
        ),
    )
    cluster.kubectl(
        "annotate",
        "backuppolicy",
        "nightly",
        "-n",
        namespace,
        "ragflow.operator.dev/backup-now=first",
    )
    job_name = eventually(
        "the on-demand Job", lambda: status(cluster, namespace).get("onDemand", {}).get("job")
    )
    job = get(cluster, namespace, "job", job_name)
    assert job is not None
    assert "on-demand" in job["spec"]["template"]["spec"]["containers"][0]["args"]
    # the same value again changes nothing; a new value makes a new Job
    cluster.kubectl(
        "annotate",
        "--overwrite",
        "backuppolicy",
        "nightly",
        "-n",
        namespace,
        "ragflow.operator.dev/backup-now=second",
    )
    eventually(
        "a second on-demand Job",
        lambda: status(cluster, namespace).get("onDemand", {}).get("job") not in (None, job_name),
    )
    jobs = json.loads(cluster.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)
    assert len(jobs["items"]) == 2


def test_invalid_input_is_refused_or_reported(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    bad = policy(namespace, minSuccessfulDestinations=3)
    result = cluster.kubectl("apply", "-f", "-", stdin=json.dumps(bad), check=False)
    assert result.returncode != 0 and "minSuccessfulDestinations" in result.stderr
    missing = policy(namespace)
    missing["spec"]["clusterRef"] = {"name": "absent"}
    apply(cluster, missing)
    ready = eventually(
        "Ready=False", lambda: condition(status(cluster, namespace), "Ready") or None
    )
    assert ready["status"] == "False" and ready["reason"] == "ClusterNotFound"
