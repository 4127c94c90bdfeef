"""Secrets a custom resource points at must exist before anything is created from it.

One check for every kind: the RagFlowCluster's external dependency credentials and TLS Secrets,
the BackupPolicy's keyring and destination credentials, and the policy a `spec.restoreFrom`
names. A missing Secret or key becomes `MissingReference` with reason `MissingSecret` or
`MissingSecretKey`, which the handlers report as `Ready=False` with nothing applied.
"""

from __future__ import annotations

from collections.abc import Iterable

from ragflow_operator import errors
from ragflow_operator.k8s import KubeClient, ObjectRef


def require_secrets(
    client: KubeClient,
    namespace: str,
    refs: Iterable[tuple[str, str | None]],
    *,
    referrer: str,
) -> None:
    """Each (Secret, key) exists; a key of None asks only for the Secret itself.

    `referrer` says who points at the Secrets, for the message ("referenced by the spec").
    """
    for name, key in refs:
        secret = client.get(ObjectRef("v1", "Secret", namespace, name))
        if secret is None:
            raise errors.MissingReference(
                f"Secret {name} ({referrer}) does not exist", reason="MissingSecret"
            )
        if key and key not in (secret.get("data") or {}):
            raise errors.MissingReference(
                f"Secret {name} has no key {key}", reason="MissingSecretKey"
            )
