"""spec.auth: per-role key Secrets mounted into the API pods, dependency TLS, audit file."""

from __future__ import annotations

import json

import pytest
from cluster_helpers import build, external_deps_spec, find
from ragflow_operator.errors import InvalidSpec


def pod_of(result, name: str) -> dict:
    return find(result, "Deployment", name)["spec"]["template"]["spec"]


def mounts_of(pod: dict) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}


def secured_spec() -> dict:
    spec = external_deps_spec()
    spec["auth"] = {
        "roleKeySecrets": {"viewer": "docs-viewer-keys", "editor": "docs-editor-keys"},
        "rotationGraceSeconds": 600,
        "auditFile": True,
        "dependencyTLS": {
            "database": {"secretName": "pg-ca"},
            "cache": {"secretName": "redis-client", "mutual": True},
            "vectorStore": {"secretName": "milvus-ca", "serverName": "milvus.internal"},
        },
    }
    return spec


def test_role_key_secrets_are_mounted_read_only_into_api_pods_only():
    result = build(secured_spec())
    api = pod_of(result, "docs-api")
    volumes = {v["name"]: v for v in api["volumes"]}
    assert volumes["keys-viewer"]["secret"] == {
        "secretName": "docs-viewer-keys",
        "defaultMode": 0o440,
    }
    assert mounts_of(api)["keys-editor"] == "/etc/ragflow/keys/editor"
    assert "keys-admin" not in volumes
    assert all(m["readOnly"] for m in api["containers"][0]["volumeMounts"] if "keys" in m["name"])
    worker = pod_of(result, "docs-worker")
    assert not any(name.startswith("keys-") for name in mounts_of(worker))


def test_tls_settings_point_the_runtime_at_mounted_certificates():
    result = build(secured_spec())
    config = find(result, "ConfigMap", "docs-config")["data"]
    assert config["RAGFLOW_AUTH_KEYS_DIR"] == "/etc/ragflow/keys"
    assert config["RAGFLOW_AUTH_ROTATION_GRACE_SECONDS"] == "600"
    assert config["RAGFLOW_AUDIT_FILE"] == "/data/audit/audit.jsonl"
    assert config["RAGFLOW_DATABASE_TLS_CA"] == "/etc/ragflow/tls/database/ca.crt"
    assert "RAGFLOW_DATABASE_TLS_CERT" not in config
    assert config["RAGFLOW_CACHE_TLS_CERT"] == "/etc/ragflow/tls/cache/tls.crt"
    assert config["RAGFLOW_CACHE_TLS_KEY"] == "/etc/ragflow/tls/cache/tls.key"
    assert config["RAGFLOW_VECTOR_TLS_SERVER_NAME"] == "milvus.internal"
    for name in ("docs-api", "docs-worker"):
        mounts = mounts_of(pod_of(result, name))
        assert mounts["tls-vector-store"] == "/etc/ragflow/tls/vector-store"
        assert mounts["tls-cache"] == "/etc/ragflow/tls/cache"


def test_no_secret_value_or_key_reaches_a_configmap_or_pod_spec():
    result = build(secured_spec())
    for manifest in result.manifests:
        if manifest["kind"] in ("ConfigMap", "Deployment"):
            text = json.dumps(manifest)
            assert "stringData" not in text and "sha256:" not in text


def test_without_spec_auth_additions_nothing_changes():
    result = build(external_deps_spec())
    config = find(result, "ConfigMap", "docs-config")["data"]
    assert not [k for k in config if "TLS" in k or "AUTH" in k or "AUDIT" in k]
    assert set(mounts_of(pod_of(result, "docs-api"))) == {"data", "tmp"}


def test_tls_to_a_managed_dependency_is_refused_with_a_clear_reason():
    with pytest.raises(InvalidSpec, match=r"dependencyTLS\.database needs an external") as error:
        build({"auth": {"dependencyTLS": {"database": {"secretName": "x"}}}})
    assert error.value.reason == "InvalidTLS"


def test_tls_secrets_are_checked_before_pods_wait_for_them():
    from cluster_helpers import cluster_body
    from ragflow_operator.model.cluster import ClusterModel, SecretKeyRef

    refs = ClusterModel.from_body(cluster_body(secured_spec())).referenced_secrets()
    assert SecretKeyRef("pg-ca", "ca.crt") in refs
    assert SecretKeyRef("pg-ca", "tls.key") not in refs
    assert SecretKeyRef("redis-client", "tls.key") in refs
