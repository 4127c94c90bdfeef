"""BackupPolicy CRD, model and builders: a small literal CR, then assertions on the manifests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from ragflow_operator import names
from ragflow_operator.builders import backup
from ragflow_operator.builders import runtime as runtime_builders
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.errors import InvalidSpec
from ragflow_operator.model.backup_policy import BackupPolicyModel
from ragflow_operator.model.cluster import ClusterModel

from ragruntime.backup.settings import BackupConfig

ROOT = Path(__file__).resolve().parents[3]
CRD = yaml.safe_load((ROOT / "crds/backuppolicies.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

POLICY: dict[str, Any] = {
    "apiVersion": "ragflow.operator.dev/v1alpha1",
    "kind": "BackupPolicy",
    "metadata": {"name": "nightly", "namespace": "team-a", "uid": "uid-p", "generation": 2},
    "spec": {
        "clusterRef": {"name": "docs"},
        "schedules": [
            {
                "name": "hourly",
                "schedule": "0 * * * *",
                "type": "incremental",
                "retention": {"maxAge": "24h"},
            },
            {"name": "weekly", "schedule": "0 2 * * 0", "retention": {"maxAge": "1y", "count": 52}},
        ],
        "destinations": [
            {
                "name": "primary",
                "s3": {"bucket": "b", "region": "eu-west-1", "credentialsSecret": {"name": "aws"}},
            },
            {"name": "secondary", "gcs": {"bucket": "g"}},
            {"name": "tertiary", "azure": {"container": "c", "credentialsSecret": {"name": "az"}}},
        ],
        "minSuccessfulDestinations": 2,
        "encryption": {"keySecret": {"name": "backup-keys"}},
    },
}
CLUSTER = {
    "apiVersion": "ragflow.operator.dev/v1alpha1",
    "kind": "RagFlowCluster",
    "metadata": {"name": "docs", "namespace": "team-a", "uid": "uid-c", "generation": 1},
    "spec": {},
}


def policy(**spec: Any) -> BackupPolicyModel:
    body = copy.deepcopy(POLICY)
    body["spec"].update(spec)
    return BackupPolicyModel.from_body(body)


def target() -> backup.RuntimeTarget:
    return backup.runtime_target(ClusterModel.from_body(copy.deepcopy(CLUSTER)))


def walk(schema: dict, path: str = "spec"):
    yield path, schema
    for key, prop in (schema.get("properties") or {}).items():
        yield from walk(prop, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")


def test_crd_is_valid_structural_and_explained() -> None:
    kubernetes_validate.validate(CRD, "1.34.0", strict=True)
    assert CRD["spec"]["names"]["shortNames"] == ["rbp"]
    assert "status" in CRD["spec"]["versions"][0]["subresources"]
    columns = [c["name"] for c in CRD["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert {"Ready", "Last Backup", "Age"} <= set(columns)
    undocumented = [
        p
        for p, s in walk(SCHEMA["properties"]["spec"])
        if "description" not in s and not p.endswith("[]")
    ]
    assert undocumented == []
    untyped = [p for p, s in walk(SCHEMA) if "type" not in s]
    assert untyped == []
    rules = [
        r["rule"]
        for _, s in walk(SCHEMA["properties"]["spec"])
        for r in s.get("x-kubernetes-validations") or []
    ]
    assert "self.minSuccessfulDestinations <= size(self.destinations)" in rules
    assert any("has(self.s3)" in r for r in rules)
    assert any("exists_one(t, t.name == s.name)" in r for r in rules)


def test_model_applies_crd_defaults() -> None:
    model = policy()
    assert model.starting_deadline_seconds == 300 and model.suspend is False
    assert model.include == {
        "database": True,
        "vectors": True,
        "documents": True,
        "configuration": True,
    }
    assert model.schedule("weekly").type == "full"
    assert model.validation.cron == "30 3 * * *" and model.validation.enabled
    assert model.key_secret_key == "keyring"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"schedules": [{"name": "x", "schedule": "61 * * * *"}]}, "InvalidCron"),
        (
            {"destinations": [{"name": "d", "s3": {"bucket": "b"}, "gcs": {"bucket": "g"}}]},
            "InvalidSpec",
        ),
        ({"minSuccessfulDestinations": 4}, "InvalidSpec"),
    ],
)
def test_model_rejects_what_cannot_work(spec: dict, reason: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        policy(**spec)
    assert info.value.reason == reason


def test_one_cronjob_per_schedule_plus_validation_with_safe_settings() -> None:
    manifests = backup.build(policy(), Capabilities(), target=target()).manifests
    cronjobs = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "CronJob"}
    assert set(cronjobs) == {"nightly-hourly", "nightly-weekly", "nightly-validate"}
    hourly = cronjobs["nightly-hourly"]
    assert hourly["spec"]["schedule"] == "0 * * * *"
    assert hourly["spec"]["concurrencyPolicy"] == "Forbid"
    assert hourly["spec"]["startingDeadlineSeconds"] == 300
    assert hourly["spec"]["suspend"] is False
    assert hourly["metadata"]["ownerReferences"][0]["uid"] == "uid-p"
    job = hourly["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    assert container["args"][:5] == ["ragruntime", "backup", "run", "--schedule", "hourly"]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    validate = cronjobs["nightly-validate"]["spec"]["jobTemplate"]["spec"]
    args = validate["template"]["spec"]["containers"][0]["args"]
    assert args[2:5] == ["verify", "--tests", "integrity,restore,performance"]


def test_pods_are_restricted_and_take_credentials_only_from_secret_references() -> None:
    cronjob = backup.build_cronjobs(policy(), target())[0]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"backup-keys", "aws", "az"}
    env_names = [e["name"] for e in container["env"]]
    assert len(env_names) == len(set(env_names))  # server-side apply rejects duplicates
    for env in container["env"]:
        assert "value" not in env or "PASSWORD" not in env["name"]
        assert "valueFrom" not in env or "secretKeyRef" in env["valueFrom"]
    labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert labels[names.LABEL_INSTANCE] == "docs"  # so the cluster's NetworkPolicy admits it
    assert labels[names.LABEL_COMPONENT] == names.COMPONENT_BACKUP


def test_jobs_run_the_clusters_image_unless_the_policy_names_another() -> None:
    cluster = ClusterModel.from_body(copy.deepcopy(CLUSTER))
    assert backup.runtime_target(cluster, policy()).image == cluster.image.reference
    moved = policy(image={"repository": "registry.local/ragruntime"})
    assert (
        backup.runtime_target(cluster, moved).image
        == f"registry.local/ragruntime:{cluster.version}"
    )
    pinned = policy(image={"repository": "registry.local/ragruntime", "tag": "9.9"})
    assert backup.runtime_target(cluster, pinned).image == "registry.local/ragruntime:9.9"


def test_config_map_is_what_the_runtime_cli_reads_without_any_secret() -> None:
    config_map = backup.build_config_map(policy())
    raw = json.loads(config_map["data"]["backup.json"])
    config = BackupConfig.from_raw(raw)
    assert config.cluster == "docs" and config.min_successful == 2
    assert [d["name"] for d in config.destinations] == ["primary", "secondary", "tertiary"]
    assert raw["destinations"][0]["s3"]["credentialsDir"].endswith("/primary")
    assert "credentialsDir" not in raw["destinations"][1]["gcs"]
    assert config.policies()["weekly"].count == 52
    assert config.destination_timeout == 3600  # the CRD default reaches the runtime


def test_destination_time_budget_reaches_the_runtime() -> None:
    raw = json.loads(
        backup.build_config_map(policy(destinationTimeoutSeconds=900))["data"]["backup.json"]
    )
    assert BackupConfig.from_raw(raw).destination_timeout == 900


def test_suspend_stops_every_schedule() -> None:
    for cronjob in backup.build_cronjobs(policy(suspend=True), target()):
        assert cronjob["spec"]["suspend"] is True


def test_on_demand_job_name_depends_only_on_the_annotation_value() -> None:
    first = backup.build_on_demand_job(policy(), target(), "2026-01-01")
    again = backup.build_on_demand_job(policy(), target(), "2026-01-01")
    other = backup.build_on_demand_job(policy(), target(), "2026-01-02")
    assert first == again and first["metadata"]["name"] != other["metadata"]["name"]
    assert "on-demand" in first["spec"]["template"]["spec"]["containers"][0]["args"]


def test_restore_job_for_restore_from_is_owned_by_the_new_cluster() -> None:
    new_cluster = ClusterModel.from_body(
        {
            **copy.deepcopy(CLUSTER),
            "metadata": {**CLUSTER["metadata"], "name": "copy", "uid": "uid-new"},
        }
    )
    config_map, job = backup.build_restore_job(new_cluster, policy(), None)
    assert job["metadata"]["name"] == "copy-restore"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-new"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[2:5] == ["restore", "--backup-id", "latest"]
    assert json.loads(config_map["data"]["backup.json"])["cluster"] == "docs"


def every_job_pod() -> dict[str, dict[str, Any]]:
    """Job kind → pod spec, for every Job the operator creates for backups and restores."""
    cronjobs = backup.build_cronjobs(policy(), target())
    pods = {
        c["metadata"]["name"]: c["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        for c in cronjobs
    }
    pods["on-demand"] = backup.build_on_demand_job(policy(), target(), "now")["spec"]["template"][
        "spec"
    ]
    _, restore = backup.build_restore_job(
        ClusterModel.from_body(copy.deepcopy(CLUSTER)), policy(), None
    )
    pods["restore"] = restore["spec"]["template"]["spec"]
    return pods


@pytest.mark.parametrize("job", ["nightly-hourly", "nightly-validate", "on-demand", "restore"])
def test_every_path_the_runtime_writes_is_a_pod_volume(job: str) -> None:
    """Found on a real node: the restore writes the restored settings into the runtime's data
    dir, which only containerd's anonymous volume for the image's VOLUME made writable (the root
    filesystem is read-only); a runtime that ignores image volumes, as the real-node tier's
    containerd now does, leaves it read-only."""
    pod = every_job_pod()[job]
    data_dir = runtime_builders.config_data(ClusterModel.from_body(copy.deepcopy(CLUSTER)))[
        "RAGFLOW_DATA_DIR"
    ]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {
        m["mountPath"]: volumes[m["name"]]
        for m in container["volumeMounts"]
        if not m.get("readOnly")
    }
    for path in (data_dir, "/tmp", backup.SCRATCH_DIR):
        assert "emptyDir" in writable[path], (path, writable)
    assert container["terminationMessagePath"] == backup.TERMINATION_LOG
    assert container["args"][-2:] == ["--termination-log", backup.TERMINATION_LOG]


@pytest.mark.parametrize("version", ["1.30.0", "1.34.0"])
def test_every_manifest_is_valid_for_kubernetes(version: str) -> None:
    manifests = backup.build(policy(), Capabilities(), target=target()).manifests
    manifests.append(backup.build_on_demand_job(policy(), target(), "now"))
    manifests += backup.build_restore_job(
        ClusterModel.from_body(copy.deepcopy(CLUSTER)), policy(), "20260101T000000Z-abcdef"
    )
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)
