"""Pieces every RagFlowCluster builder shares: object metadata, owner reference, security.

Pure helpers called by builders/runtime.py, dependencies.py, networking.py, autoscaling.py and
monitoring.py (and usable by the BackupPolicy/AlertPolicy builders). The pod and container
security contexts satisfy the `restricted` Pod Security Standard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Json = dict[str, Any]


def owner_reference(*, api_version: str, kind: str, name: str, uid: str) -> list[Json]:
    """Controller owner reference list; empty when the owner has no uid (rendered from a file)."""
    if not uid:
        return []
    return [
        {
            "apiVersion": api_version,
            "kind": kind,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def object_meta(
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    owner_references: list[Json],
    annotations: dict[str, str] | None = None,
) -> Json:
    """The `meta` value templates/_metadata.j2 expects."""
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(sorted(labels.items())),
        "annotations": dict(sorted((annotations or {}).items())),
        "owner_references": owner_references,
    }


def pod_security_context(user: int, *, fs_group: int | None = None) -> Json:
    """Pod-level part of the restricted profile: non-root, RuntimeDefault seccomp."""
    context: Json = {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        context["fsGroup"] = fs_group
        context["fsGroupChangePolicy"] = "OnRootMismatch"
    return context


def container_security_context() -> Json:
    """Container-level part: no privilege escalation, read-only root, every capability dropped."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(section: Mapping[str, Any] | None) -> Json:
    """`{requests, limits}` copied from a spec section, keys sorted, empty parts dropped."""
    section = section or {}
    result: Json = {}
    for part in ("requests", "limits"):
        values = section.get(part)
        if values:
            result[part] = dict(sorted(values.items()))
    return result


def secret_env(env_name: str, secret: str, key: str) -> Json:
    """An env var read from a Secret key."""
    return {"name": env_name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
