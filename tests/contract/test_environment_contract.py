"""The RAGFLOW_* environment: what the operator writes is what ``ragruntime.config`` reads.

Renders real operator output (the cluster's ConfigMap, the api and worker containers, a backup
Job) for a managed, an external and a fully secured cluster, and checks it against
``ragflow_contract.environment`` and the runtime's ``Settings``: nothing written that the runtime
ignores, nothing required left out, and every value parses on the runtime side.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ragflow_operator import names
from ragflow_operator.builders import backup, cluster
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.backup_policy import BackupPolicyModel
from ragflow_operator.model.cluster import ClusterModel

from ragflow_contract import environment
from ragruntime.config import Role, Settings

ROOT = Path(__file__).resolve().parents[2]
Json = dict[str, Any]

EXTERNAL = {
    "database": {"external": {"host": "pg.example", "credentialsSecret": {"name": "pg"}}},
    "cache": {
        "external": {"url": "redis://cache.example:6379/0", "credentialsSecret": {"name": "rd"}}
    },
    "vectorStore": {
        "external": {"uri": "https://milvus.example:19530", "tokenSecret": {"name": "mv"}}
    },
}
SECURED = {
    **EXTERNAL,
    "auth": {
        "roleKeySecrets": {"admin": "keys-admin", "viewer": "keys-viewer"},
        "rotationGraceSeconds": 60,
        "auditFile": True,
        "dependencyTLS": {
            "database": {"secretName": "pg-tls", "mutual": True},
            "cache": {"secretName": "redis-tls", "mutual": True},
            "vectorStore": {"secretName": "milvus-tls", "mutual": True, "serverName": "milvus.in"},
        },
    },
}
STANDBY = {
    "standby": {
        "enabled": True,
        "source": {
            "cluster": "docs-eu",
            "destinations": [
                {"name": "s3", "s3": {"bucket": "b", "credentialsSecret": {"name": "aws"}}}
            ],
            "encryption": {"keySecret": {"name": "keys", "key": "keyring"}},
        },
    }
}
SPECS = {"managed": {}, "external": EXTERNAL, "secured": SECURED, "standby": STANDBY}


def cluster_model(spec: Json) -> ClusterModel:
    return ClusterModel.from_body(
        {
            "apiVersion": f"{names.GROUP}/{names.VERSION}",
            "kind": names.KIND_CLUSTER,
            "metadata": {"name": "docs", "namespace": "team-a", "uid": "u-1", "generation": 1},
            "spec": spec,
        }
    )


def children(spec: Json) -> list[Json]:
    return cluster.build(cluster_model(spec), Capabilities.all_enabled()).manifests


def container_environment(manifests: list[Json], kind: str, name: str) -> dict[str, Json]:
    """name -> env entry of the runtime container, the ConfigMap it loads included."""
    config = {
        m["metadata"]["name"]: m.get("data") or {} for m in manifests if m["kind"] == "ConfigMap"
    }
    (workload,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    spec = workload["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else workload["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    found: dict[str, Json] = {}
    for source in container.get("envFrom") or []:
        data = config[source["configMapRef"]["name"]]
        found.update({key: {"name": key, "value": value} for key, value in data.items()})
    found.update({entry["name"]: entry for entry in container.get("env") or []})
    return found


def backup_job_environment() -> dict[str, Json]:
    """The env of a backup CronJob's container (the worker's, minus its role, plus ours)."""
    policy = yaml.safe_load((ROOT / "samples" / "backuppolicy.yaml").read_text())
    policy["metadata"].update(namespace="team-a", uid="u-2", generation=1)
    model = BackupPolicyModel.from_body(policy)
    target = cluster_model(SECURED)
    manifests = [
        *children(SECURED),
        *backup.build(model, Capabilities(), target=backup.runtime_target(target, model)).manifests,
    ]
    cronjob = next(m for m in manifests if m["kind"] == "CronJob")
    return container_environment(manifests, "CronJob", cronjob["metadata"]["name"])


def written(env: dict[str, Json]) -> set[str]:
    return {name for name in env if name.startswith(environment.PREFIX)}


def runtime_reads() -> set[str]:
    """Every variable ``Settings`` reads (pydantic-settings: prefix + field name, upper case)."""
    return {environment.PREFIX + field.upper() for field in Settings.model_fields}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
@pytest.mark.parametrize("role", [names.COMPONENT_API, names.COMPONENT_WORKER])
def test_the_operator_writes_every_required_variable_and_only_contract_ones(spec, role) -> None:
    env = written(container_environment(children(spec), "Deployment", f"docs-{role}"))
    assert env >= environment.REQUIRED, environment.REQUIRED - env
    assert env <= environment.ALL, env - environment.ALL


def test_a_backup_job_gets_the_runtime_environment_without_a_role() -> None:
    env = written(backup_job_environment())
    assert env <= environment.ALL, env - environment.ALL
    assert environment.REQUIRED - {environment.ROLE} <= env
    assert environment.ROLE not in env


def test_the_runtime_reads_every_variable_of_the_contract() -> None:
    assert all(name.startswith(environment.PREFIX) for name in environment.ALL)
    assert runtime_reads() >= environment.ALL, environment.ALL - runtime_reads()


def test_the_contract_names_nothing_the_operator_never_writes() -> None:
    seen: set[str] = written(backup_job_environment())
    for spec in SPECS.values():
        for role in (names.COMPONENT_API, names.COMPONENT_WORKER):
            seen |= written(container_environment(children(spec), "Deployment", f"docs-{role}"))
    assert seen == environment.ALL, environment.ALL ^ seen


def resolved(env: dict[str, Json]) -> dict[str, str]:
    """Values as the kubelet hands them over: Secret references filled, `$(VAR)` expanded."""
    values: dict[str, str] = {}
    for name, entry in env.items():
        if "valueFrom" in entry:
            values[name] = f"secret-{name.lower()}"
        else:
            values[name] = re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], entry["value"])
    return values


def test_the_runtime_parses_what_the_operator_writes(monkeypatch) -> None:
    env = resolved(container_environment(children(SECURED), "Deployment", "docs-api"))
    for name in runtime_reads():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.role is Role.API
    assert settings.cluster_name == "docs"
    assert settings.port == names.RUNTIME_PORT
    assert settings.api_key == "secret-ragflow_api_key"
    assert settings.database_url.startswith("postgresql://secret-database_user:secret-")
    assert settings.cache_url == "redis://:secret-cache_password@cache.example:6379/0"
    assert settings.vector_uri == "https://milvus.example:19530"
    assert settings.vector_token == "secret-ragflow_vector_token"
    assert settings.embedding_batch_size == 64
    assert settings.cache_l2_ttl_seconds == 3600
    assert settings.auth_rotation_grace_seconds == 60
    assert settings.auth_keys_dir is not None and settings.audit_file is not None
    for tls in (settings.database_tls(), settings.cache_tls(), settings.vector_tls()):
        assert tls.enabled and tls.ca.endswith("/ca.crt") and tls.cert.endswith("/tls.crt")
    assert settings.vector_tls().server_name == "milvus.in"


def test_a_standby_runtime_reads_the_standby_switch(monkeypatch) -> None:
    env = resolved(container_environment(children(STANDBY), "Deployment", "docs-api"))
    assert env[environment.STANDBY] == "true"
    for name in runtime_reads():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().standby is True
