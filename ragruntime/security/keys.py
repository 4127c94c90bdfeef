"""API keys in the metadata database: create, look up, rotate, revoke, sync from Secrets.

A key is ``ragflow-`` + 43 random URL-safe characters (256 bits). Only its SHA-256 digest is
stored: the key itself is shown once, to whoever created it. Because keys are random (not
passwords), a fast digest is enough; the lookup goes by digest and the stored digest is then
compared with ``hmac.compare_digest`` (constant time). Keys from Secrets may also be given as
their digest (``sha256:<hex>``), so that the Secret never holds the key.

Called by ``ragruntime.api.auth`` (lookup), the key routes, ``ragruntime.security.sources``
(keys the operator mounts) and the ``ragruntime keys`` CLI.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ragruntime.errors import InvalidArgument, NotFound
from ragruntime.security.roles import AccessRole
from ragruntime.store.database import now_ms
from ragruntime.store.schema import api_keys

KEY_PREFIX = "ragflow-"
DIGEST_PREFIX = "sha256:"
SOURCE_API = "api"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_of(key: str) -> str:
    """Hex SHA-256 of a key; a ``sha256:<hex>`` value is already a digest and is returned as is."""
    key = key.strip()
    if key.startswith(DIGEST_PREFIX):
        value = key[len(DIGEST_PREFIX) :].lower()
        if not _HEX64.match(value):
            raise InvalidArgument("a sha256: key digest must be 64 hexadecimal characters")
        return value
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the key itself)."""

    id: str
    name: str
    role: AccessRole
    dataset_ids: tuple[str, ...] | None
    source: str
    created_at_ms: int
    expires_at_ms: int | None
    revoked_at_ms: int | None

    def valid_at(self, at_ms: int) -> bool:
        if self.revoked_at_ms is not None:
            return False
        return self.expires_at_ms is None or at_ms < self.expires_at_ms

    def may_touch(self, dataset_id: str) -> bool:
        return self.dataset_ids is None or dataset_id in self.dataset_ids

    def state(self, at_ms: int) -> str:
        """``active``, ``expiring`` (rotated, in its grace period), ``expired`` or ``revoked``."""
        if self.revoked_at_ms is not None:
            return "revoked"
        if self.expires_at_ms is not None:
            return "expiring" if self.valid_at(at_ms) else "expired"
        return "active"

    def describe(self) -> dict[str, object]:
        """What the API and the CLI show of a key: everything but the key itself."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "dataset_ids": list(self.dataset_ids) if self.dataset_ids is not None else None,
            "source": self.source,
            "state": self.state(now_ms()),
            "create_time": self.created_at_ms,
            "expire_time": self.expires_at_ms,
            "revoke_time": self.revoked_at_ms,
        }


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: ``token`` is shown once and never stored."""

    key: ApiKey
    token: str


def _row_to_key(row: Mapping[Any, Any]) -> ApiKey:
    scope = row["dataset_ids"]
    return ApiKey(
        id=str(row["id"]),
        name=str(row["name"]),
        role=AccessRole(str(row["role"])),
        dataset_ids=tuple(str(d) for d in scope) if isinstance(scope, list) else None,
        source=str(row["source"]),
        created_at_ms=int(row["created_at_ms"]),  # type: ignore[call-overload]
        expires_at_ms=row["expires_at_ms"],  # type: ignore[arg-type]
        revoked_at_ms=row["revoked_at_ms"],  # type: ignore[arg-type]
    )


def parse_role(value: object) -> AccessRole:
    try:
        return AccessRole(str(value))
    except ValueError as exc:
        allowed = ", ".join(r.value for r in AccessRole)
        raise InvalidArgument(f"`role` must be one of {allowed}") from exc


def parse_scope(role: AccessRole, value: object) -> tuple[str, ...] | None:
    """``dataset_ids``: None (every dataset) or a non-empty list; admin keys are never scoped."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidArgument("`dataset_ids` must be a non-empty list of dataset ids, or null")
    if role == AccessRole.ADMIN:
        raise InvalidArgument("admin keys cannot be scoped to datasets")
    return tuple(sorted(set(value)))


class KeyStore:
    """The ``api_keys`` table behind one SQLAlchemy engine (shared with the metadata store)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- lookup ------------------------------------------------------------------------------
    def authenticate(self, token: str, at_ms: int | None = None) -> ApiKey | None:
        """The valid key whose digest matches ``token``, else None (unknown, expired, revoked)."""
        if token.startswith(DIGEST_PREFIX):
            return None  # a digest is not a key: presenting one must not authenticate
        wanted = hashlib.sha256(token.encode()).hexdigest()
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.digest == wanted))
                .mappings()
                .first()
            )
        if row is None or not hmac.compare_digest(str(row["digest"]), wanted):
            return None
        key = _row_to_key(row)
        return key if key.valid_at(now_ms() if at_ms is None else at_ms) else None

    def get(self, key_id: str) -> ApiKey:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
            )
        if row is None:
            raise NotFound(f"No API key with id {key_id}")
        return _row_to_key(row)

    def list(self, *, include_inactive: bool = False) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at_ms)).mappings()
            keys = [_row_to_key(r) for r in rows]
        at = now_ms()
        return keys if include_inactive else [k for k in keys if k.valid_at(at)]

    # --- changes -----------------------------------------------------------------------------
    def create(
        self,
        *,
        name: str,
        role: AccessRole,
        dataset_ids: Sequence[str] | None = None,
        source: str = SOURCE_API,
    ) -> IssuedKey:
        token = generate_key()
        key = self._insert(digest_of(token), name, role, dataset_ids, source)
        return IssuedKey(key, token)

    def _insert(
        self,
        digest: str,
        name: str,
        role: AccessRole,
        dataset_ids: Sequence[str] | None,
        source: str,
        conn: sa.Connection | None = None,
    ) -> ApiKey:
        if not name or len(name) > 128:
            raise InvalidArgument("`name` must be 1 to 128 characters")
        values = {
            "id": uuid.uuid4().hex,
            "digest": digest,
            "name": name,
            "role": role.value,
            "dataset_ids": list(dataset_ids) if dataset_ids is not None else None,
            "source": source,
            "created_at_ms": now_ms(),
            "expires_at_ms": None,
            "revoked_at_ms": None,
        }
        if conn is None:
            with self.engine.begin() as own:
                own.execute(api_keys.insert().values(**values))
        else:
            conn.execute(api_keys.insert().values(**values))
        return _row_to_key(values)

    def rotate(self, key_id: str, grace_seconds: float) -> IssuedKey:
        """A new key with the same name, role and scope; the old one stays valid for the grace."""
        old = self.get(key_id)
        if not old.valid_at(now_ms()):
            raise InvalidArgument(f"API key {key_id} is revoked or expired; create a new one")
        if old.source != SOURCE_API:
            raise InvalidArgument(
                f"API key {key_id} comes from {old.source}: rotate it by changing that Secret"
            )
        token = generate_key()
        expires = now_ms() + int(grace_seconds * 1000)
        with self.engine.begin() as conn:
            new = self._insert(
                digest_of(token), old.name, old.role, old.dataset_ids, old.source, conn
            )
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.expires_at_ms.is_(None))
                .values(expires_at_ms=expires)
            )
        return IssuedKey(new, token)

    def revoke(self, key_id: str) -> ApiKey:
        key = self.get(key_id)
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at_ms.is_(None))
                .values(revoked_at_ms=now_ms())
            )
        return self.get(key.id)

    def sync_source(
        self, source: str, role: AccessRole, present: Mapping[str, str], grace_seconds: float
    ) -> SyncResult:
        """Make the keys of ``source`` (e.g. a mounted Secret) match ``present`` (digest -> name).

        New digests are added; digests that left the source expire after ``grace_seconds``
        (rotation without downtime: old and new keys are both valid meanwhile); a digest that
        comes back before expiring is valid again. Revoked keys stay revoked.
        """
        at = now_ms()
        added: list[str] = []
        expiring: list[str] = []
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(api_keys).where(api_keys.c.source == source)).mappings()
            known = {str(r["digest"]): _row_to_key(r) for r in rows}
            for digest, name in sorted(present.items()):
                key = known.get(digest)
                if key is None:
                    row = (
                        conn.execute(sa.select(api_keys).where(api_keys.c.digest == digest))
                        .mappings()
                        .first()
                    )
                    other = _row_to_key(row) if row is not None else None
                    if other is None:
                        added.append(self._insert(digest, name, role, None, source, conn).id)
                    elif _movable(other):  # moved here from another Secret that dropped it
                        conn.execute(
                            api_keys.update()
                            .where(api_keys.c.id == other.id)
                            .values(source=source, role=role.value, name=name, expires_at_ms=None)
                        )
                        added.append(other.id)
                    # else: the same key is active in another place, which keeps it
                elif key.revoked_at_ms is None and (
                    key.expires_at_ms is not None or key.role != role
                ):
                    conn.execute(
                        api_keys.update()
                        .where(api_keys.c.id == key.id)
                        .values(expires_at_ms=None, role=role.value)
                    )
            for digest, key in known.items():
                if digest not in present and key.expires_at_ms is None:
                    conn.execute(
                        api_keys.update()
                        .where(api_keys.c.id == key.id)
                        .values(expires_at_ms=at + int(grace_seconds * 1000))
                    )
                    expiring.append(key.id)
        return SyncResult(source, tuple(added), tuple(expiring))


def _movable(key: ApiKey) -> bool:
    """A Secret-provided key its source no longer lists (expiring or expired), not revoked."""
    return key.source != SOURCE_API and key.expires_at_ms is not None and key.revoked_at_ms is None


@dataclass(frozen=True)
class SyncResult:
    source: str
    added: tuple[str, ...]
    expiring: tuple[str, ...]
