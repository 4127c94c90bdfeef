"""Access control and dependency TLS of the runtime pods, from `spec.auth` (pure functions).

`config_data(model)` adds the non-secret RAGFLOW_* settings of ragruntime.security to the
runtime ConfigMap; `volumes(model, role)` returns the Secret volumes and mounts of one pod role:
the per-role key Secrets (API pods only; kubelet updates them in place, so editing a Secret
rotates keys with no restart) and the CA/client certificate Secrets of each dependency that
talks TLS. Secret contents never enter a ConfigMap or a pod spec: the runtime reads the files
and stores only key digests. Called by builders/runtime.py.
"""

from __future__ import annotations

from typing import Any

from ragflow_contract import environment
from ragflow_operator import names
from ragflow_operator.errors import InvalidSpec
from ragflow_operator.model.cluster import ClusterModel, DependencyTLS

Json = dict[str, Any]

KEYS_DIR = "/etc/ragflow/keys"
TLS_DIR = "/etc/ragflow/tls"
AUDIT_FILE = "/data/audit/audit.jsonl"
#: The runtime's own default (ragruntime.security): only a different value is written.
RUNTIME_DEFAULT_GRACE_SECONDS = 300
#: spec key -> (its RAGFLOW_*_TLS_* names, directory name, ClusterModel dependency attribute)
TLS_TARGETS = {
    "database": (environment.DATABASE_TLS, "database", "database"),
    "cache": (environment.CACHE_TLS, "cache", "cache"),
    "vectorStore": (environment.VECTOR_TLS, "vector-store", "vector_store"),
}
SECRET_FILE_MODE = 0o440  # readable by the runtime user's group (fsGroup), nobody else


def dependency_tls(model: ClusterModel) -> dict[str, DependencyTLS]:
    """spec key -> its TLS settings; TLS is for external dependencies only."""
    wanted = model.auth.dependency_tls
    for key, (_names, _dir, attribute) in TLS_TARGETS.items():
        if key in wanted and getattr(model, attribute).is_managed:
            raise InvalidSpec(
                f"spec.auth.dependencyTLS.{key} needs an external dependency: the managed one "
                "does not serve TLS",
                reason="InvalidTLS",
            )
    return {key: wanted[key] for key in TLS_TARGETS if key in wanted}


def config_data(model: ClusterModel) -> dict[str, str]:
    data: dict[str, str] = {}
    auth = model.auth
    if auth.role_key_secrets:
        data[environment.AUTH_KEYS_DIR] = KEYS_DIR
    if auth.rotation_grace_seconds != RUNTIME_DEFAULT_GRACE_SECONDS:
        data[environment.AUTH_ROTATION_GRACE_SECONDS] = str(auth.rotation_grace_seconds)
    if auth.audit_file:
        data[environment.AUDIT_FILE] = AUDIT_FILE
    for key, settings in dependency_tls(model).items():
        tls, directory, _attribute = TLS_TARGETS[key]
        base = f"{TLS_DIR}/{directory}"
        data[tls.ca] = f"{base}/ca.crt"
        if settings.mutual:
            data[tls.cert] = f"{base}/tls.crt"
            data[tls.key] = f"{base}/tls.key"
        if settings.server_name and tls.server_name:  # the CRD has it for Milvus only
            data[tls.server_name] = settings.server_name
    return data


def _secret_volume(name: str, secret: str) -> Json:
    return {"name": name, "secret": {"secretName": secret, "defaultMode": SECRET_FILE_MODE}}


def volumes(model: ClusterModel, role: str) -> tuple[list[Json], list[Json]]:
    """(volumes, volumeMounts) for a pod of `role` (api or worker), read-only."""
    vols: list[Json] = []
    mounts: list[Json] = []
    if role == names.COMPONENT_API:
        for key_role, secret in model.auth.role_key_secrets.items():
            vols.append(_secret_volume(f"keys-{key_role}", secret))
            mounts.append(
                {
                    "name": f"keys-{key_role}",
                    "mountPath": f"{KEYS_DIR}/{key_role}",
                    "readOnly": True,
                }
            )
    for key, settings in dependency_tls(model).items():
        directory = TLS_TARGETS[key][1]
        vols.append(_secret_volume(f"tls-{directory}", settings.secret_name))
        mounts.append(
            {"name": f"tls-{directory}", "mountPath": f"{TLS_DIR}/{directory}", "readOnly": True}
        )
    return vols, mounts
