"""API key use cases: issue, list, revoke and rotate keys in the key store.

Called by the admin routes (``ragruntime.api.routes.keys``) and ``ragruntime keys``
(``ragruntime.security.cli``). The store (``ragruntime.security.keys.KeyStore``) keeps only
digests: an issued key is in the answer once and never again.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragruntime.security.keys import ApiKey, IssuedKey, KeyStore, parse_role, parse_scope


def issue(
    store: KeyStore, *, name: str | None, role: str, dataset_ids: Sequence[str] | None
) -> IssuedKey:
    """A new key of ``role``, limited to ``dataset_ids`` (None: every dataset); named
    ``<role>-key`` unless ``name`` is given."""
    parsed = parse_role(role)
    scope = parse_scope(parsed, dataset_ids)
    return store.create(name=name or f"{parsed.value}-key", role=parsed, dataset_ids=scope)


def listed(store: KeyStore, *, include_inactive: bool) -> list[ApiKey]:
    """Every key (revoked and expired ones too with ``include_inactive``), oldest first."""
    return store.list(include_inactive=include_inactive)


def revoke(store: KeyStore, key_id: str) -> ApiKey:
    return store.revoke(key_id)


def rotate(store: KeyStore, key_id: str, grace_seconds: float) -> IssuedKey:
    """A new key with the same name, role and scope; the old one stays valid ``grace_seconds``."""
    return store.rotate(key_id, grace_seconds)
