"""A standby RagFlowCluster (spec.standby): CRD, model, children, status, promotion, and the
suspension of its BackupPolicy. Builders and status are pure; the handler cases run the real
reconcile against the in-memory FakeKube, playing the runtime's part with a finished sync Job
whose pod carries the JSON summary `ragruntime standby sync` writes as termination message.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_helpers import build, cluster_body, find, kinds
from fake_kube import FakeKube
from kopf_events import captured_events  # noqa: F401 - the `events` fixture
from ragflow_operator import conditions, metrics, names, standby_status
from ragflow_operator.builders import backup, standby
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.errors import InvalidSpec
from ragflow_operator.handlers import backup_policy, cluster
from ragflow_operator.k8s import ObjectRef
from ragflow_operator.model.cluster import ClusterModel

from ragflow_contract import environment
from ragruntime.backup.settings import BackupConfig

ROOT = Path(__file__).resolve().parents[3]
NS = "team-a"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SINCE = "2026-03-01T11:00:00Z"


def crd_schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / f"{name}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def standby_spec(**extra: Any) -> dict[str, Any]:
    return {
        "standby": {
            "source": {
                "cluster": "docs-eu",
                "destinations": [
                    {
                        "name": "primary",
                        "s3": {
                            "bucket": "rag",
                            "prefix": "dr",
                            "credentialsSecret": {"name": "aws"},
                        },
                    },
                    {"name": "mirror", "gcs": {"bucket": "rag-mirror"}},
                ],
                "encryption": {"keySecret": {"name": "eu-keys"}},
            },
            **extra,
        }
    }


def model(spec: dict[str, Any] | None = None) -> ClusterModel:
    return ClusterModel.from_body(cluster_body(standby_spec() if spec is None else spec))


def summary(**fields: Any) -> dict[str, Any]:
    """The termination-message summary of `ragruntime standby sync` (interface of issue 14)."""
    base = {
        "applied": "20260301T115500Z-aaaa",
        "current": "20260301T115500Z-aaaa",
        "currentBackupTime": "2026-03-01T11:55:00Z",
        "newestAvailable": "20260301T115500Z-aaaa",
        "skipped": [],
        "chunksFetched": 12,
        "bytesFetched": 4096,
        "upToDate": False,
    }
    return {**base, **fields}


def result(job: str, finished: str, fields: dict[str, Any], *, failed: bool = False) -> dict:
    """A finished sync Job as backup_policy.job_result reads it."""
    job_body = {
        "metadata": {"name": job},
        "status": {
            "completionTime": finished,
            "conditions": [
                {"type": "Failed" if failed else "Complete", "status": "True", "reason": "x"}
            ],
        },
    }
    pod = {
        "metadata": {"creationTimestamp": finished},
        "status": {
            "containerStatuses": [{"state": {"terminated": {"message": json.dumps(fields)}}}]
        },
    }
    parsed = backup_policy.job_result(job_body, [pod])
    assert parsed is not None
    return parsed


# --- CRD ----------------------------------------------------------------------------------------


def test_standby_destinations_have_the_backup_policy_shape_and_rules() -> None:
    ours = crd_schema("ragflowclusters")["properties"]["spec"]["properties"]["standby"]
    theirs = crd_schema("backuppolicies")["properties"]["spec"]["properties"]["destinations"]
    destinations = ours["properties"]["source"]["properties"]["destinations"]
    strip = lambda schema: {k: v for k, v in schema.items() if k != "description"}  # noqa: E731
    assert strip(destinations) == strip(theirs)
    key_secret = ours["properties"]["source"]["properties"]["encryption"]["properties"]
    policy_key = crd_schema("backuppolicies")["properties"]["spec"]["properties"]["encryption"]
    assert strip(key_secret["keySecret"]) == strip(policy_key["properties"]["keySecret"])
    cron = crd_schema("backuppolicies")["properties"]["spec"]["properties"]["validation"]
    assert (
        ours["properties"]["schedule"]["x-kubernetes-validations"]
        == cron["properties"]["schedule"]["x-kubernetes-validations"]
    )


def test_admission_refuses_standby_with_restore_and_names_too_long_for_the_cronjob() -> None:
    schema = crd_schema("ragflowclusters")
    spec_rules = [r["rule"] for r in schema["properties"]["spec"]["x-kubernetes-validations"]]
    assert "!has(self.standby) || !has(self.restoreFrom)" in spec_rules
    root_rules = [r["rule"] for r in schema["x-kubernetes-validations"]]
    limit = 52 - len("-standby-sync")
    assert any(f"self.metadata.name.size() <= {limit}" in r for r in root_rules)
    assert len(standby.cronjob_name("a" * limit)) == 52
    assert any("self.spec.standby.source.cluster != self.metadata.name" in r for r in root_rules)


# --- model --------------------------------------------------------------------------------------


def test_model_defaults_and_secret_references() -> None:
    parsed = model().standby
    assert parsed is not None
    assert (parsed.schedule, parsed.max_lag_seconds) == ("* * * * *", 900)
    assert parsed.source_cluster == "docs-eu"
    assert parsed.referenced_secrets() == [("eu-keys", "keyring"), ("aws", None)]


@pytest.mark.parametrize("spec", [{}, standby_spec(enabled=False)])
def test_a_primary_or_a_promoted_cluster_is_no_standby(spec: dict[str, Any]) -> None:
    assert model(spec).standby is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"source": {**standby_spec()["standby"]["source"], "cluster": "docs"}}, "InvalidStandby"),
        ({"schedule": "0 0 30 2 *"}, "InvalidCron"),
    ],
)
def test_model_refuses_what_cannot_work(change: dict[str, Any], reason: str) -> None:
    spec = standby_spec()
    spec["standby"].update(change)
    with pytest.raises(InvalidSpec) as raised:
        model(spec)
    assert raised.value.reason == reason


# --- builders -----------------------------------------------------------------------------------


def _env(manifest: dict[str, Any]) -> dict[str, Any]:
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_standby_children_sync_cronjob_and_read_only_pods() -> None:
    result = build(standby_spec())
    cronjob = find(result, "CronJob", "docs-standby-sync")
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"], spec["suspend"]) == (
        "* * * * *",
        "Forbid",
        False,
    )
    assert cronjob["metadata"]["ownerReferences"][0]["kind"] == "RagFlowCluster"
    job = spec["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == [
        "ragruntime",
        "standby",
        "sync",
        "--config",
        "/etc/ragflow/backup/standby.json",
        "--termination-log",
        "/dev/termination-log",
    ]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"eu-keys", "aws"}
    env = _env({"spec": job})
    assert "RAGFLOW_DATABASE_URL" in env and environment.STANDBY not in env
    assert "RAGFLOW_ROLE" not in env
    labels = job["template"]["metadata"]["labels"]
    assert labels[backup.LABEL_JOB_KIND] == standby.JOB_KIND
    assert labels[names.LABEL_COMPONENT] == names.COMPONENT_BACKUP  # may reach the stores
    for deployment in ("docs-api", "docs-worker"):
        assert _env(find(result, "Deployment", deployment))[environment.STANDBY] == "true"


def test_sync_config_is_the_backup_configuration_of_the_primary() -> None:
    result = build(standby_spec())
    config_map = find(result, "ConfigMap", "docs-standby-config")
    raw = json.loads(config_map["data"]["standby.json"])
    assert raw["cluster"] == "docs-eu"
    assert raw["destinations"][0] == {
        "name": "primary",
        "s3": {
            "bucket": "rag",
            "prefix": "dr",
            "credentialsDir": f"{backup.CREDENTIALS_DIR}/primary",
        },
    }
    parsed = BackupConfig.from_raw(raw)  # the runtime reads it with the backup settings parser
    assert parsed.cluster == "docs-eu" and len(parsed.destinations) == 2
    assert parsed.keyring_file == f"{backup.KEYRING_DIR}/keyring"
    text = json.dumps(config_map)
    assert "eu-keys" not in text and "aws" not in text  # Secrets are mounted, never named


def test_a_promoted_cluster_has_no_sync_and_writable_pods() -> None:
    result = build(standby_spec(enabled=False))
    assert not [k for k in kinds(result) if "standby" in k]
    assert environment.STANDBY not in _env(find(result, "Deployment", "docs-api"))


# --- status (pure) ------------------------------------------------------------------------------


def follow(results: list[dict], previous: dict | None = None, max_lag: int | None = None):
    spec = standby_spec(**({"maxLagSeconds": max_lag} if max_lag else {}))
    parsed = model(spec).standby
    assert parsed is not None
    start = {"enabled": True, "source": "docs-eu", "since": SINCE}
    return standby_status.following(
        parsed, results, start if previous is None else previous, NOW, cronjob="docs-standby-sync"
    )


def test_waiting_for_the_first_sync() -> None:
    view = follow([])
    assert view.condition is not None and view.condition[:2] == ("False", "WaitingForSync")
    assert view.status == {"enabled": True, "source": "docs-eu", "since": SINCE}


def test_a_sync_summary_becomes_status_and_lag() -> None:
    view = follow([result("sync-1", "2026-03-01T11:56:00Z", summary())])
    assert view.status["currentBackup"] == "20260301T115500Z-aaaa"
    assert view.status["currentBackupTime"] == "2026-03-01T11:55:00Z"
    assert view.status["lastSyncTime"] == "2026-03-01T11:56:00Z"
    assert view.status["lagSeconds"] == 300 and view.lag_seconds == 300
    assert view.status["lastSyncSucceeded"] is True and view.status["skipped"] == []
    assert view.condition is not None and view.condition[:2] == ("True", "Following")
    assert view.events == []


def test_lag_above_max_is_lagging() -> None:
    view = follow([result("sync-1", "2026-03-01T11:56:00Z", summary())], max_lag=120)
    assert view.condition is not None
    assert view.condition[:2] == ("False", "Lagging") and "300s old" in view.condition[2]


def test_a_failed_sync_keeps_serving_the_last_good_backup_and_warns_once() -> None:
    good = result("sync-1", "2026-03-01T11:56:00Z", summary())
    bad = result(
        "sync-2", "2026-03-01T11:57:00Z", {"error": "no destination readable"}, failed=True
    )
    view = follow([good, bad])
    assert view.status["currentBackup"] == "20260301T115500Z-aaaa"
    assert view.status["lastSyncSucceeded"] is False
    assert view.status["lastError"] == "no destination readable"
    assert view.condition is not None and view.condition[:2] == ("False", "SyncFailed")
    assert "still serving 20260301T115500Z-aaaa" in view.condition[2]
    assert [e.reason for e in view.events] == ["SyncFailed"]
    again = follow([good, bad], previous=view.status)
    assert again.events == [] and again.status["lastError"] == "no destination readable"
    recovered = follow(
        [good, bad, result("sync-3", "2026-03-01T11:58:00Z", summary(upToDate=True))],
        previous=again.status,
    )
    assert "lastError" not in recovered.status
    assert recovered.condition is not None and recovered.condition[0] == "True"


def test_a_skipped_corrupt_backup_is_reported_while_the_standby_keeps_serving() -> None:
    skipped = [{"backupId": "20260301T115800Z-bbbb", "reason": "authentication failed"}]
    fields = summary(applied=None, skipped=skipped, newestAvailable="20260301T115800Z-bbbb")
    view = follow([result("sync-1", "2026-03-01T11:59:00Z", fields)])
    assert view.status["skipped"] == skipped
    assert view.status["newestAvailable"] == "20260301T115800Z-bbbb"
    assert view.condition is not None and view.condition[0] == "True"
    assert "1 newer backup(s) skipped" in view.condition[2]
    assert [(e.type, e.reason) for e in view.events] == [("Warning", "BackupSkipped")]
    assert follow([result("sync-1", "2026-03-01T11:59:00Z", fields)], view.status).events == []


def test_no_backup_at_the_source_and_a_summaryless_job() -> None:
    empty = summary(applied=None, current=None, currentBackupTime=None, newestAvailable=None)
    view = follow([result("sync-1", "2026-03-01T11:56:00Z", empty)])
    assert view.condition is not None and view.condition[:2] == ("False", "NoBackup")
    assert "lagSeconds" not in view.status
    bare = result("sync-2", "2026-03-01T11:57:00Z", {})  # Complete, but no summary
    view = follow([bare])
    assert view.condition is not None and view.condition[1] == "SyncFailed"


def test_a_new_source_starts_afresh_and_ignores_older_sync_jobs() -> None:
    old = {"enabled": True, "source": "elsewhere", "currentBackup": "x", "lastSyncJob": "j"}
    earlier = result("sync-0", "2026-03-01T11:59:00Z", summary())
    view = follow([earlier], previous=old)
    assert view.status == {"enabled": True, "source": "docs-eu", "since": "2026-03-01T12:00:00Z"}
    assert view.condition is not None and view.condition[1] == "WaitingForSync"


def test_promotion_is_recorded_once() -> None:
    following_status = follow([result("sync-1", "2026-03-01T11:56:00Z", summary())]).status
    view = standby_status.promoted(following_status, NOW)
    assert "since" in following_status
    assert view is not None
    assert view.status == {
        "enabled": False,
        "source": "docs-eu",
        "currentBackup": "20260301T115500Z-aaaa",
        "currentBackupTime": "2026-03-01T11:55:00Z",
        "promotedAt": "2026-03-01T12:00:00Z",
    }
    assert view.condition is None
    assert [(e.type, e.reason) for e in view.events] == [("Normal", "Promoted")]
    assert standby_status.promoted(view.status, NOW) is None
    assert standby_status.promoted({}, NOW) is None


def test_status_patch_removes_keys_a_nested_object_dropped() -> None:
    current = {"standby": {"enabled": False, "promotedAt": "t", "source": "a"}}
    desired = {"standby": {"enabled": True, "source": "a"}}
    assert conditions.status_patch(current, desired) == {
        "standby": {"enabled": True, "promotedAt": None}
    }
    assert conditions.status_patch(desired, desired) is None


# --- the handlers -------------------------------------------------------------------------------


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": data,
    }


def kube_with_secrets() -> FakeKube:
    kube = FakeKube()
    kube.put(secret("eu-keys", keyring="a2V5"))
    kube.put(secret("aws", AWS_ACCESS_KEY_ID="aWQ="))
    return kube


def feed_sync_job(kube: FakeKube, name: str, fields: dict[str, Any], *, failed: bool = False):
    """A finished sync Job and its pod, as the CronJob, kubelet and runtime leave them."""
    labels = {**standby.job_labels("docs")}
    state = "Failed" if failed else "Complete"
    kube.put(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "status": {
                "completionTime": "2026-03-01T11:56:00Z",
                "conditions": [{"type": state, "status": "True"}],
            },
        }
    )
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-x",
                "namespace": NS,
                "labels": {backup_policy.JOB_NAME_LABEL: name},
            },
            "status": {
                "containerStatuses": [{"state": {"terminated": {"message": json.dumps(fields)}}}]
            },
        }
    )


def last_status(kube: FakeKube, kind: str = names.KIND_CLUSTER) -> dict[str, Any]:
    """The status patches written to objects of `kind`, merged (top-level keys)."""
    merged: dict[str, Any] = {}
    for ref, patch in kube.status_patches:
        if ref.kind == kind:
            merged.update(patch)
    return merged


def standby_condition(status: dict[str, Any]) -> dict[str, Any]:
    return dict(conditions.find_condition(status.get("conditions") or [], "StandbyReady") or {})


def test_reconcile_builds_the_sync_and_reports_the_fed_summary(events) -> None:
    kube = kube_with_secrets()
    feed_sync_job(kube, "docs-standby-sync-1", summary())
    body = cluster_body(standby_spec())
    body["status"] = {"standby": {"enabled": True, "source": "docs-eu", "since": SINCE}}
    cluster.reconcile(body, kube, Capabilities.all_enabled())
    written = {name for _, name in kube.writes}
    assert {"CronJob/docs-standby-sync", "ConfigMap/docs-standby-config"} <= written
    status = last_status(kube)
    assert status["standby"]["currentBackup"] == "20260301T115500Z-aaaa"
    assert status["standby"]["lastSyncJob"] == "docs-standby-sync-1"
    assert isinstance(status["standby"]["lagSeconds"], int)
    assert standby_condition(status)["reason"] in ("Following", "Lagging")
    lag = metrics.REGISTRY.get_sample_value(
        "ragflow_operator_standby_lag_seconds", {"namespace": NS, "cluster": "docs"}
    )
    assert lag == status["standby"]["lagSeconds"]


def test_a_missing_keyring_secret_is_ready_false_and_nothing_is_written(events) -> None:
    kube = FakeKube()
    kube.put(secret("aws", AWS_ACCESS_KEY_ID="aWQ="))
    cluster.reconcile(cluster_body(standby_spec()), kube, Capabilities.all_enabled())
    assert kube.writes == []
    ready = next(c for c in last_status(kube)["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MissingSecret")
    assert "eu-keys" in ready["message"]
    assert [e["reason"] for e in events] == ["MissingSecret"]


def test_promotion_removes_the_sync_records_it_and_resumes_the_backup_policy(events) -> None:
    kube = kube_with_secrets()
    body = cluster_body(standby_spec())
    cluster.reconcile(body, kube, Capabilities.all_enabled())
    following = last_status(kube)
    kube.put({**copy.deepcopy(body), "status": following})
    policy = _policy()
    kube.put(policy)
    backup_policy.run_reconcile(kube, policy)
    hourly = kube.get(ObjectRef("batch/v1", "CronJob", NS, "nightly-hourly"))
    assert hourly is not None and hourly["spec"]["suspend"] is True
    suspended = last_status(kube, names.KIND_BACKUP_POLICY)
    ready = next(c for c in suspended["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "SuspendedForStandby" and "standby of docs-eu" in ready["message"]
    assert suspended["nextScheduled"] == {}

    promoted = cluster_body(standby_spec(enabled=False))
    promoted["status"] = following
    kube.put(promoted)
    kube.status_patches.clear()
    cluster.reconcile(promoted, kube, Capabilities.all_enabled())
    assert ("delete", "CronJob/docs-standby-sync") in kube.writes
    assert kube.get(ObjectRef("batch/v1", "CronJob", NS, "docs-standby-sync")) is None
    api = kube.get(ObjectRef("apps/v1", "Deployment", NS, "docs-api"))
    assert api is not None and environment.STANDBY not in _env(api)
    status = last_status(kube)
    assert status["standby"]["enabled"] is False and status["standby"]["promotedAt"]
    assert standby_condition(status) == {}
    assert [e["reason"] for e in events if e["reason"] == "Promoted"] == ["Promoted"]
    resumed = kube.get(ObjectRef("batch/v1", "CronJob", NS, "nightly-hourly"))
    assert resumed is not None and resumed["spec"]["suspend"] is False
    assert (
        metrics.REGISTRY.get_sample_value(
            "ragflow_operator_standby_lag_seconds", {"namespace": NS, "cluster": "docs"}
        )
        is None
    )


def _policy() -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_BACKUP_POLICY,
        "metadata": {"name": "nightly", "namespace": NS, "uid": "uid-p", "generation": 1},
        "spec": {
            "clusterRef": {"name": "docs"},
            "schedules": [{"name": "hourly", "schedule": "0 * * * *"}],
            "destinations": [
                {"name": "primary", "s3": {"bucket": "b", "credentialsSecret": {"name": "aws"}}}
            ],
            "encryption": {"keySecret": {"name": "eu-keys"}},
        },
    }


def test_backup_times_are_normalised_to_rfc3339_utc() -> None:
    fields = summary(currentBackupTime="2026-03-01T12:55:00+01:00")
    view = follow([result("sync-1", "2026-03-01T11:56:00Z", fields)])
    assert view.status["currentBackupTime"] == "2026-03-01T11:55:00Z"
    garbled = follow([result("sync-1", "2026-03-01T11:56:00Z", summary(currentBackupTime="x"))])
    assert "currentBackupTime" not in garbled.status and "lagSeconds" not in garbled.status


def test_lag_is_recomputed_from_the_clock() -> None:
    fields = summary(currentBackupTime=(NOW - timedelta(seconds=42)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert follow([result("sync-1", "2026-03-01T11:59:00Z", fields)]).lag_seconds == 42


def test_a_finished_sync_job_reconciles_its_cluster_at_once() -> None:
    job = {
        "kind": "Job",
        "metadata": {"name": "docs-standby-sync-29000000", "labels": standby.job_labels("docs")},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    assert cluster._owner_name(job) == "docs" and cluster._sync_finished(job)
    running = {**job, "status": {"active": 1}}
    assert not cluster._sync_finished(running)
    backup_job = {**job, "metadata": {"name": "n", "labels": {backup.LABEL_JOB_KIND: "backup"}}}
    assert cluster._owner_name(backup_job) is None and not cluster._sync_finished(backup_job)
