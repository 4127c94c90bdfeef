"""Keys the deployment provides: ``RAGFLOW_API_KEY`` and the per-role Secrets the operator mounts.

Layout of ``RAGFLOW_AUTH_KEYS_DIR`` (one Secret per role, mounted by the operator)::

    <dir>/admin/<any name>    one key per file: the key itself, or its digest "sha256:<hex>"
    <dir>/editor/<any name>
    <dir>/viewer/<any name>

Kubelet updates mounted Secrets in place, so ``KeySync`` re-reads the directory every
``RAGFLOW_AUTH_RELOAD_SECONDS`` and hands each role's digests to ``KeyStore.sync_source``: a key
that left its Secret stays valid for ``RAGFLOW_AUTH_ROTATION_GRACE_SECONDS``. The configured
``RAGFLOW_API_KEY`` is an admin key of source ``env`` (backward compatible single key).
Called by the app's lifecycle; the file contents are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ragruntime.errors import InvalidArgument
from ragruntime.security.keys import KeyStore, SyncResult, digest_of
from ragruntime.security.roles import AccessRole

log = logging.getLogger(__name__)

SOURCE_ENV = "env"
MAX_KEY_FILE_BYTES = 4096


def secret_source(role: AccessRole) -> str:
    return f"secret:{role.value}"


def read_role_dir(directory: Path) -> dict[str, str]:
    """digest -> file name for every key file of one role directory (missing dir = no keys).

    Names starting with a dot are kubelet's bookkeeping (``..data``), not keys. A file that is
    empty, too large or not a key is skipped with a warning naming the file only.
    """
    found: dict[str, str] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            log.warning("key file too large; ignored", extra={"file": str(path)})
            continue
        value = path.read_text(errors="replace").strip()
        if not value:
            continue
        try:
            found[digest_of(value)] = path.name[:128]
        except InvalidArgument:
            log.warning("key file holds a malformed digest; ignored", extra={"file": str(path)})
    return found


class KeySync:
    """Mirror the configured keys into the key store (run at start and then periodically)."""

    def __init__(
        self,
        store: KeyStore,
        *,
        env_key: str,
        keys_dir: Path | None,
        grace_seconds: float,
        on_change: Callable[[SyncResult], None] | None = None,
    ) -> None:
        self.store, self.env_key, self.keys_dir = store, env_key, keys_dir
        self.grace_seconds = grace_seconds
        self.on_change = on_change or (lambda _result: None)

    def run_once(self) -> list[SyncResult]:
        results = []
        env = {digest_of(self.env_key): "RAGFLOW_API_KEY"} if self.env_key else {}
        results.append(
            self.store.sync_source(SOURCE_ENV, AccessRole.ADMIN, env, self.grace_seconds)
        )
        if self.keys_dir is not None:
            for role in AccessRole:
                present = read_role_dir(self.keys_dir / role.value)
                results.append(
                    self.store.sync_source(secret_source(role), role, present, self.grace_seconds)
                )
        for result in results:
            if result.added or result.expiring:
                self.on_change(result)
        return results
