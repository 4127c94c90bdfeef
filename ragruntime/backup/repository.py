"""A backup repository on one destination: catalog, manifests, locks, and manifest authentication.

Shared by the engine, verify, restore, prune and the CLI's ``list``, so the on-storage layout
(``format``) is interpreted in one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from ragruntime.backup import crypto
from ragruntime.backup.destinations.base import Destination, NotFound
from ragruntime.backup.format import (
    CATALOG_NAME,
    Catalog,
    CatalogEntry,
    FormatError,
    Manifest,
    canonical_json,
    commit_path,
    lock_path,
    manifest_path,
)

log = logging.getLogger(__name__)


class UnknownBackup(LookupError):
    """The requested backup id is not in the catalog."""


class Repository:
    def __init__(self, destination: Destination, cluster: str) -> None:
        self.destination = destination
        self.cluster = cluster

    @property
    def name(self) -> str:
        return self.destination.name

    def load_catalog(self) -> Catalog:
        """The committed backups: the stored catalog, healed against the commit markers.

        The catalog is a cache of the markers and manifests. An unreadable or lost catalog is
        rebuilt from them; a marker missing from it (a lost concurrent write) is added, an entry
        without a marker (forgotten by prune, or never committed) is dropped. Nothing is
        written here: ``repair_catalog`` saves the healed copy.
        """
        stored = self._stored_catalog()
        committed = self.committed_ids()
        kept = tuple(e for e in stored.entries if e.backup_id in committed)
        catalog = Catalog(self.cluster, kept)
        for backup_id in sorted(committed - {e.backup_id for e in kept}):
            try:
                data = self.destination.get(manifest_path(backup_id))
                catalog = catalog.with_entry(catalog_entry(Manifest.from_bytes(data), data))
            except (NotFound, FormatError) as exc:
                log.warning(
                    "committed backup has no readable manifest; not listed",
                    extra={"destination": self.name, "backup": backup_id, "error": str(exc)},
                )
        return catalog

    def _stored_catalog(self) -> Catalog:
        try:
            catalog = Catalog.from_bytes(self.destination.get(CATALOG_NAME))
        except NotFound:
            return Catalog(self.cluster)
        except FormatError as exc:
            log.warning(
                "catalog unreadable; rebuilding it from the commit markers",
                extra={"destination": self.name, "error": str(exc)},
            )
            return Catalog(self.cluster)
        if catalog.cluster != self.cluster:
            raise FormatError(
                f"catalog on {self.name} is for cluster {catalog.cluster!r}, not {self.cluster!r}"
            )
        return catalog

    def save_catalog(self, catalog: Catalog) -> None:
        self.destination.put(CATALOG_NAME, catalog.to_bytes())

    def load_manifest(self, backup_id: str, *, expected_sha256: str | None = None) -> Manifest:
        try:
            data = self.destination.get(manifest_path(backup_id))
        except NotFound:
            raise UnknownBackup(f"backup {backup_id} has no manifest on {self.name}") from None
        if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
            raise FormatError(
                f"manifest of {backup_id} on {self.name} does not match the catalog checksum"
            )
        return Manifest.from_bytes(data)

    def committed_manifest(self, backup_id: str) -> Manifest:
        """The manifest of a backup listed in the catalog (else ``UnknownBackup``)."""
        entry = self.load_catalog().find(backup_id)
        if entry is None:
            raise UnknownBackup(f"backup {backup_id} is not in the catalog of {self.name}")
        return self.load_manifest(backup_id, expected_sha256=entry.manifest_sha256)

    def mark_committed(self, entry: CatalogEntry) -> None:
        """Write the commit marker: from now on the backup is listed (the catalog caches it)."""
        self.destination.put(commit_path(entry.backup_id), entry.finished_at.encode())

    def unmark_committed(self, backup_id: str) -> None:
        self.destination.delete(commit_path(backup_id))

    def add_to_catalog(self, entry: CatalogEntry, attempts: int = 5) -> None:
        """Add a committed backup to the stored catalog and read it back.

        The catalog is a read-modify-write object; two writers (two schedules finishing at
        once) could drop each other's entry, so the entry is re-added until it reads back.
        Losing the race is harmless anyway: readers heal the catalog from the markers.
        """
        for _ in range(attempts):
            self.save_catalog(self.load_catalog().with_entry(entry))
            if self._stored_catalog().find(entry.backup_id) is not None:
                return
        raise FormatError(f"catalog on {self.name} keeps losing entry {entry.backup_id}")

    def committed_ids(self) -> set[str]:
        """Backups with a commit marker (the truth the catalog caches)."""
        return {
            i.key.split("/")[1]
            for i in self.destination.list("backups/")
            if i.key.endswith("/committed")
        }

    def repair_catalog(self) -> tuple[Catalog, list[str], list[str]]:
        """Save the healed catalog if it differs; return it, the ids added and those dropped."""
        before = {e.backup_id for e in self._stored_catalog().entries}
        healed = self.load_catalog()
        after = {e.backup_id for e in healed.entries}
        try:
            unchanged = self.destination.get(CATALOG_NAME) == healed.to_bytes()
        except NotFound:
            unchanged = False
        if not unchanged:
            self.save_catalog(healed)
        return healed, sorted(after - before), sorted(before - after)

    def write_lock(self, backup_id: str, now: dt.datetime) -> None:
        body = {"backupId": backup_id, "createdAt": now.isoformat()}
        self.destination.put(lock_path(backup_id), canonical_json(body))

    def remove_lock(self, backup_id: str) -> None:
        self.destination.delete(lock_path(backup_id))

    def active_locks(self, now: dt.datetime, stale_after: dt.timedelta) -> list[str]:
        """Ids of backups that hold a lock younger than ``stale_after`` (killed runs go stale).

        A lock whose body cannot be read counts from the start time in its backup id, so a
        damaged lock still protects a running backup and still expires.
        """
        active = []
        for info in self.destination.list("locks/"):
            name = info.key.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                raw = json.loads(self.destination.get(info.key))
                backup_id = str(raw["backupId"])
                created = dt.datetime.fromisoformat(raw["createdAt"])
            except NotFound:
                continue  # removed since the listing: that backup has finished
            except (ValueError, KeyError, TypeError):
                backup_id, created = name, backup_started(name) or now
            if now - created < stale_after:
                active.append(backup_id)
        return active


def backup_started(backup_id: str) -> dt.datetime | None:
    """Backup ids start with their UTC start time (``20260101T020000Z-...``)."""
    try:
        return dt.datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def catalog_entry(manifest: Manifest, body: bytes) -> CatalogEntry:
    """The catalog line of a manifest (used at commit and when rebuilding the catalog)."""
    own = manifest.keys.get(manifest.backup_id)
    return CatalogEntry(
        backup_id=manifest.backup_id,
        type=manifest.type,
        parent_id=manifest.parent_id,
        schedule=manifest.schedule,
        started_at=manifest.started_at,
        finished_at=manifest.finished_at,
        plain_bytes=manifest.plain_bytes,
        stored_bytes=sum(
            r.stored_size for r in manifest.objects.values() if r.key == manifest.backup_id
        ),
        manifest_sha256=hashlib.sha256(body).hexdigest(),
        master_key_id=own.master_key_id if own else "",
    )


def unlock_keys(manifest: Manifest, keyring: crypto.Keyring) -> dict[str, bytes]:
    """Unwrap every data key a manifest names and check the manifest's MAC."""
    keys = {key_name: keyring.unwrap(wrapped) for key_name, wrapped in manifest.keys.items()}
    own = keys.get(manifest.backup_id)
    if own is None:
        raise FormatError(f"manifest of {manifest.backup_id} lacks its own data key")
    crypto.check_manifest_mac(own, canonical_json(manifest.unsigned_raw()), manifest.mac)
    return keys
