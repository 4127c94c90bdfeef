"""A standby RagFlowCluster on the real control plane: children, status from a sync Job's
summary, one-edit promotion, and re-pointing the promoted cluster as a standby again.

One operator subprocess (every handler, resync every 2s). No pod runs here (kwok), so the test
plays the runtime: it stages a finished sync Job whose pod carries the JSON summary that
`ragruntime standby sync` writes as its termination message (e2e/support.py
`stage_finished_job`, shared with the BackupPolicy tests). The sync CronJob's schedule is set
far away so the CronJob controller never starts a Job of its own during the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from e2e.controlplane.cluster import Cluster
from e2e.ragflowcluster_support import (
    OperatorProcess,
    cluster_manifest,
    condition,
    create_secret,
    external_spec,
    get_json,
    install_crds,
)
from e2e.support import eventually, stage_finished_job

pytestmark = pytest.mark.cluster
NEVER_DURING_THE_TEST = "0 0 1 1 *"
JOB_LABELS = {
    "app.kubernetes.io/name": "ragflow",
    "app.kubernetes.io/instance": "docs",
    "app.kubernetes.io/component": "backup",
    "app.kubernetes.io/part-of": "ragflow",
    "app.kubernetes.io/managed-by": "ragflow-operator",
    "ragflow.operator.dev/backup-job": "standby-sync",
}
POLICY = """
apiVersion: ragflow.operator.dev/v1alpha1
kind: BackupPolicy
metadata: {name: nightly, namespace: %s}
spec:
  clusterRef: {name: docs}
  schedules:
    - {name: hourly, schedule: "0 * * * *", type: incremental, retention: {maxAge: 24h}}
  destinations:
    - name: primary
      s3: {bucket: rag-us, credentialsSecret: {name: backup-s3}}
  encryption: {keySecret: {name: backup-keys}}
"""


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(cluster, log, resync_seconds=2.0).start()
    try:
        yield process
    finally:
        process.stop()


def standby(source: str, *, enabled: bool = True) -> dict[str, Any]:
    return {
        "enabled": enabled,
        "schedule": NEVER_DURING_THE_TEST,
        "maxLagSeconds": 600,
        "source": {
            "cluster": source,
            "destinations": [
                {
                    "name": "primary",
                    "s3": {"bucket": f"rag-{source}", "credentialsSecret": {"name": "backup-s3"}},
                }
            ],
            "encryption": {"keySecret": {"name": "backup-keys"}},
        },
    }


def apply_cluster(cluster: Cluster, namespace: str, standby_section: dict[str, Any]) -> None:
    spec = {**external_spec(), "standby": standby_section}
    cluster.kubectl("apply", "-f", "-", stdin=cluster_manifest("docs", namespace, spec))


def rfc(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return get_json(cluster, "rfc", "docs", "-n", namespace) or {}


def standby_status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return dict((rfc(cluster, namespace).get("status") or {}).get("standby") or {})


def api_env(cluster: Cluster, namespace: str) -> dict[str, str] | None:
    deployment = get_json(cluster, "deployment", "docs-api", "-n", namespace)
    if deployment is None:
        return None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def hourly_suspended(cluster: Cluster, namespace: str) -> bool | None:
    cronjob = get_json(cluster, "cronjob", "nightly-hourly", "-n", namespace)
    return None if cronjob is None else bool(cronjob["spec"]["suspend"])


def policy_ready_reason(cluster: Cluster, namespace: str) -> str:
    return str(
        condition(get_json(cluster, "backuppolicy", "nightly", "-n", namespace), "Ready").get(
            "reason", ""
        )
    )


def events(cluster: Cluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    found = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    return [e for e in found["items"] if e.get("reason") == reason]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_standby_follows_is_promoted_in_one_edit_and_is_re_pointed(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    create_secret(cluster, namespace, "pg", username="u", password="p")
    create_secret(cluster, namespace, "backup-keys", keyring="a2V5")
    create_secret(cluster, namespace, "backup-s3", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b")
    cluster.kubectl("apply", "-f", "-", stdin=POLICY % namespace)
    apply_cluster(cluster, namespace, standby("eu"))
    try:
        cronjob = eventually(
            "the sync CronJob",
            lambda: get_json(cluster, "cronjob", "docs-standby-sync", "-n", namespace),
        )
    except AssertionError:
        print(operator.log_tail())
        raise
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    args = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["ragruntime", "standby", "sync"]
    config = get_json(cluster, "configmap", "docs-standby-config", "-n", namespace)
    assert config is not None and json.loads(config["data"]["standby.json"])["cluster"] == "eu"
    eventually(
        "read-only API pods",
        lambda: (api_env(cluster, namespace) or {}).get("RAGFLOW_STANDBY") == "true",
    )
    eventually("the BackupPolicy suspended", lambda: hourly_suspended(cluster, namespace) is True)
    eventually(
        "SuspendedForStandby",
        lambda: policy_ready_reason(cluster, namespace) == "SuspendedForStandby",
    )
    waiting = eventually("StandbyReady", lambda: condition(rfc(cluster, namespace), "StandbyReady"))
    assert (waiting["status"], waiting["reason"]) == ("False", "WaitingForSync")

    # The runtime's part: a sync Job finished and reported what it applied.
    taken = datetime.now(UTC) - timedelta(seconds=90)
    backup_id = taken.strftime("%Y%m%dT%H%M%SZ") + "-abc123"
    summary = {
        "applied": backup_id,
        "current": backup_id,
        "currentBackupTime": iso(taken),
        "newestAvailable": backup_id,
        "skipped": [{"backupId": "20990101T000000Z-bad", "reason": "authentication failed"}],
        "chunksFetched": 40,
        "bytesFetched": 81920,
        "upToDate": False,
    }
    stage_finished_job(cluster, namespace, "docs-standby-sync-1", JOB_LABELS, summary)
    following = eventually(
        "the summary in status.standby",
        lambda: (s := standby_status(cluster, namespace)).get("currentBackup") == backup_id and s,
    )
    assert following["currentBackupTime"] == iso(taken) and following["source"] == "eu"
    assert 90 <= following["lagSeconds"] < 600
    assert following["skipped"][0]["backupId"] == "20990101T000000Z-bad"
    ready = condition(rfc(cluster, namespace), "StandbyReady")
    assert (ready["status"], ready["reason"]) == ("True", "Following")
    eventually(
        "the lag recomputed on a resync",
        lambda: standby_status(cluster, namespace).get("lagSeconds", 0) > following["lagSeconds"],
        timeout=30,
    )

    # Promotion: one edit.
    cluster.kubectl(
        "patch",
        "rfc",
        "docs",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"standby": {"enabled": False}}}),
    )
    eventually(
        "the sync CronJob removed",
        lambda: get_json(cluster, "cronjob", "docs-standby-sync", "-n", namespace) is None,
    )
    eventually(
        "writable API pods",
        lambda: "RAGFLOW_STANDBY" not in (api_env(cluster, namespace) or {"RAGFLOW_STANDBY": ""}),
    )
    promoted = eventually(
        "promotedAt",
        lambda: (
            standby_status(cluster, namespace).get("promotedAt")
            and standby_status(cluster, namespace)
        ),
    )
    assert promoted["enabled"] is False and promoted["currentBackup"] == backup_id
    assert condition(rfc(cluster, namespace), "StandbyReady") == {}
    eventually("the BackupPolicy resumed", lambda: hourly_suspended(cluster, namespace) is False)
    eventually("Scheduled", lambda: policy_ready_reason(cluster, namespace) == "Scheduled")
    promoted_events = eventually(
        "the Promoted Event", lambda: events(cluster, namespace, "Promoted")
    )
    assert len(promoted_events) == 1 and "stopped following eu" in promoted_events[0]["message"]
    assert events(cluster, namespace, "BackupSkipped")

    # Failback preparation: the old standby (now primary elsewhere) follows a new primary again.
    apply_cluster(cluster, namespace, standby("us"))
    eventually(
        "the sync CronJob again",
        lambda: get_json(cluster, "cronjob", "docs-standby-sync", "-n", namespace),
    )
    eventually(
        "read-only again",
        lambda: (api_env(cluster, namespace) or {}).get("RAGFLOW_STANDBY") == "true",
    )
    eventually(
        "the BackupPolicy suspended again", lambda: hourly_suspended(cluster, namespace) is True
    )
    re_pointed = eventually(
        "following the new primary",
        lambda: (s := standby_status(cluster, namespace)).get("source") == "us" and s,
    )
    assert re_pointed["enabled"] is True
    assert "promotedAt" not in re_pointed and "currentBackup" not in re_pointed  # old Job ignored
    assert condition(rfc(cluster, namespace), "StandbyReady")["reason"] == "WaitingForSync"


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        (
            "docs",
            {"restoreFrom": {"backupPolicy": "nightly", "latest": True}},
            "mutually exclusive",
        ),
        ("d" * 40, {}, "at most 39 characters"),
        ("eu", {}, "names this cluster itself"),
    ],
)
def test_the_api_server_refuses_impossible_standbys(
    cluster: Cluster,
    namespace: str,
    operator: OperatorProcess,
    name: str,
    extra: dict,
    message: str,
) -> None:
    spec = {"standby": standby("eu"), **extra}
    result = cluster.kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        stdin=cluster_manifest(name, namespace, spec),
        check=False,
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr
