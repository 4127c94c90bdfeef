"""On-storage format of a backup repository: manifests, catalog, keys and canonical JSON.

Pure data, no I/O. Used by the engine (writes), verify/restore/prune (read) and the CLI (list).

Layout per destination, under ``<prefix>/<cluster>/``::

    data/<aa>/<object name>        encrypted chunks, named by a keyed hash of their plaintext
    backups/<backup id>/manifest.json
    backups/<backup id>/committed  marker: the backup was committed (catalog is rebuildable)
    catalog.json                   the committed backups (a cache of the manifests)
    locks/<backup id>.json         written while a backup runs, so prune does not sweep under it

A manifest is self-contained: it lists every object that makes up the full state at the time of
the backup (an incremental just reuses objects that already exist) and the wrapped data key of
every object it references. It is authenticated with a MAC derived from the backup's data key.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

FORMAT_VERSION = 1
ALGORITHM = "AES-256-GCM"
KEY_WRAP = "AES-KW"
CATALOG_NAME = "catalog.json"


class FormatError(ValueError):
    """A manifest or catalog is malformed, of an unknown version, or fails authentication."""


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8, so MACs and hashes are stable."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _check_version(raw: Mapping[str, Any], what: str) -> None:
    version = raw.get("formatVersion")
    if version != FORMAT_VERSION:
        raise FormatError(f"{what} has format version {version!r}; expected {FORMAT_VERSION}")


def object_path(name: str, key: str) -> str:
    """Storage key of a data object, relative to the repository root.

    The data key id is part of the key: the same plaintext sealed by two backups (two fulls, or
    after a key rotation) gives two objects, and an upload never overwrites another backup's.
    """
    return f"data/{name[:2]}/{name}.{key}"


def manifest_path(backup_id: str) -> str:
    return f"backups/{backup_id}/manifest.json"


def commit_path(backup_id: str) -> str:
    """Written after the manifest when a backup is committed; the catalog can be rebuilt from
    the manifests that have one, and prune never deletes those."""
    return f"backups/{backup_id}/committed"


def lock_path(backup_id: str) -> str:
    return f"locks/{backup_id}.json"


@dataclasses.dataclass(frozen=True)
class WrappedKey:
    """A backup's data key wrapped (AES-KW) by the master key ``master_key_id``."""

    master_key_id: str
    wrapped: str  # base64

    def to_raw(self) -> dict[str, str]:
        return {"masterKeyId": self.master_key_id, "wrapped": self.wrapped}

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> WrappedKey:
        return cls(master_key_id=str(raw["masterKeyId"]), wrapped=str(raw["wrapped"]))


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    """One stored, encrypted chunk of an entry.

    ``key`` names the data key (the id of the backup that wrote the object); ``component`` and
    ``key`` are part of the associated data the object was encrypted with.
    """

    name: str
    key: str
    component: str
    plain_size: int
    stored_size: int
    sha256: str  # of the stored (encrypted) bytes: checkable without any key
    md5: str = ""  # of the stored bytes too: what object stores report in listings (ETag, ...)

    @property
    def path(self) -> str:
        return object_path(self.name, self.key)

    def to_raw(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "component": self.component,
            "plainSize": self.plain_size,
            "storedSize": self.stored_size,
            "sha256": self.sha256,
            **({"md5": self.md5} if self.md5 else {}),
        }

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> ObjectRef:
        return cls(
            name=str(raw["name"]),
            key=str(raw["key"]),
            component=str(raw["component"]),
            plain_size=int(raw["plainSize"]),
            stored_size=int(raw["storedSize"]),
            sha256=str(raw["sha256"]),
            md5=str(raw.get("md5", "")),
        )


@dataclasses.dataclass(frozen=True)
class Entry:
    """A named byte stream inside a component (a database dump, a file, a vector export)."""

    component: str
    path: str
    size: int
    sha256: str  # of the plaintext stream
    objects: tuple[ObjectRef, ...]
    records: int = 0  # rows, vectors or 0 for opaque data

    def to_raw(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "records": self.records,
            "objects": [o.to_raw() for o in self.objects],
        }

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Entry:
        return cls(
            component=str(raw["component"]),
            path=str(raw["path"]),
            size=int(raw["size"]),
            sha256=str(raw["sha256"]),
            records=int(raw.get("records", 0)),
            objects=tuple(ObjectRef.from_raw(o) for o in raw["objects"]),
        )


@dataclasses.dataclass(frozen=True)
class Manifest:
    """Everything needed to verify and restore one backup (besides the master key)."""

    backup_id: str
    cluster: str
    type: str  # full | incremental
    parent_id: str | None
    schedule: str
    started_at: str
    finished_at: str
    entries: tuple[Entry, ...]
    keys: Mapping[str, WrappedKey]  # data key id -> wrapped key
    counts: Mapping[str, int]  # component -> records, compared after a restore
    chunk_size: int
    mac: str = ""

    @property
    def objects(self) -> dict[str, ObjectRef]:
        """Distinct objects this backup references, by storage path."""
        return {o.path: o for e in self.entries for o in e.objects}

    @property
    def plain_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def components(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for e in self.entries:
            sizes[e.component] = sizes.get(e.component, 0) + e.size
        return sizes

    def unsigned_raw(self) -> dict[str, Any]:
        return {
            "formatVersion": FORMAT_VERSION,
            "algorithm": ALGORITHM,
            "keyWrap": KEY_WRAP,
            "id": self.backup_id,
            "cluster": self.cluster,
            "type": self.type,
            "parentId": self.parent_id,
            "schedule": self.schedule,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "chunkSize": self.chunk_size,
            "components": self.components,
            "counts": dict(self.counts),
            "keys": {k: v.to_raw() for k, v in sorted(self.keys.items())},
            "entries": [e.to_raw() for e in self.entries],
        }

    def to_bytes(self) -> bytes:
        raw = self.unsigned_raw()
        raw["mac"] = self.mac
        return canonical_json(raw)

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise FormatError(f"manifest is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise FormatError("manifest is not a JSON object")
        _check_version(raw, "manifest")
        try:
            return cls(
                backup_id=str(raw["id"]),
                cluster=str(raw["cluster"]),
                type=str(raw["type"]),
                parent_id=raw.get("parentId"),
                schedule=str(raw.get("schedule", "")),
                started_at=str(raw["startedAt"]),
                finished_at=str(raw["finishedAt"]),
                entries=tuple(Entry.from_raw(e) for e in raw["entries"]),
                keys={k: WrappedKey.from_raw(v) for k, v in raw["keys"].items()},
                counts={str(k): int(v) for k, v in raw.get("counts", {}).items()},
                chunk_size=int(raw["chunkSize"]),
                mac=str(raw.get("mac", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"manifest is missing or has a bad field: {exc}") from None


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One committed backup as listed in a destination's catalog."""

    backup_id: str
    type: str
    parent_id: str | None
    schedule: str
    started_at: str
    finished_at: str
    plain_bytes: int
    stored_bytes: int  # bytes this backup uploaded (new objects only)
    manifest_sha256: str
    master_key_id: str

    def to_raw(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "type": self.type,
            "parentId": self.parent_id,
            "schedule": self.schedule,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "plainBytes": self.plain_bytes,
            "storedBytes": self.stored_bytes,
            "manifestSha256": self.manifest_sha256,
            "masterKeyId": self.master_key_id,
        }

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> CatalogEntry:
        return cls(
            backup_id=str(raw["id"]),
            type=str(raw["type"]),
            parent_id=raw.get("parentId"),
            schedule=str(raw.get("schedule", "")),
            started_at=str(raw["startedAt"]),
            finished_at=str(raw["finishedAt"]),
            plain_bytes=int(raw.get("plainBytes", 0)),
            stored_bytes=int(raw.get("storedBytes", 0)),
            manifest_sha256=str(raw["manifestSha256"]),
            master_key_id=str(raw.get("masterKeyId", "")),
        )


@dataclasses.dataclass(frozen=True)
class Catalog:
    """The committed backups of one cluster on one destination, oldest first."""

    cluster: str
    entries: tuple[CatalogEntry, ...] = ()

    def find(self, backup_id: str) -> CatalogEntry | None:
        return next((e for e in self.entries if e.backup_id == backup_id), None)

    def latest(self) -> CatalogEntry | None:
        """The newest snapshot (by start time: a slow backup does not hide a newer one)."""
        return max(self.entries, key=lambda e: (e.started_at, e.backup_id), default=None)

    def with_entry(self, entry: CatalogEntry) -> Catalog:
        kept = tuple(e for e in self.entries if e.backup_id != entry.backup_id)
        return Catalog(self.cluster, (*kept, entry))

    def without(self, backup_ids: set[str]) -> Catalog:
        kept = tuple(e for e in self.entries if e.backup_id not in backup_ids)
        return Catalog(self.cluster, kept)

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "formatVersion": FORMAT_VERSION,
                "cluster": self.cluster,
                "backups": [e.to_raw() for e in self.entries],
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Catalog:
        try:
            raw = json.loads(data)
            _check_version(raw, "catalog")
            return cls(
                cluster=str(raw["cluster"]),
                entries=tuple(CatalogEntry.from_raw(e) for e in raw["backups"]),
            )
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"catalog is malformed: {exc}") from None
