"""A backup repository on one destination: catalog, manifests, locks, and manifest authentication.

Shared by the engine, verify, restore, prune and the CLI's ``list``, so the on-storage layout
(``format``) is interpreted in one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from ragruntime.backup import crypto
from ragruntime.backup.destinations.base import Destination, NotFound
from ragruntime.backup.format import (
    CATALOG_NAME,
    Catalog,
    FormatError,
    Manifest,
    canonical_json,
    lock_path,
    manifest_path,
)


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
        try:
            catalog = Catalog.from_bytes(self.destination.get(CATALOG_NAME))
        except NotFound:
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

    def write_lock(self, backup_id: str, now: dt.datetime) -> None:
        body = {"backupId": backup_id, "createdAt": now.isoformat()}
        self.destination.put(lock_path(backup_id), canonical_json(body))

    def remove_lock(self, backup_id: str) -> None:
        self.destination.delete(lock_path(backup_id))

    def active_locks(self, now: dt.datetime, stale_after: dt.timedelta) -> list[str]:
        """Ids of backups that hold a lock younger than ``stale_after`` (killed runs go stale)."""
        active = []
        for info in self.destination.list("locks/"):
            try:
                raw = json.loads(self.destination.get(info.key))
                created = dt.datetime.fromisoformat(raw["createdAt"])
            except (NotFound, ValueError, KeyError, TypeError):
                continue
            if now - created < stale_after:
                active.append(str(raw["backupId"]))
        return active


def unlock_keys(manifest: Manifest, keyring: crypto.Keyring) -> dict[str, bytes]:
    """Unwrap every data key a manifest names and check the manifest's MAC."""
    keys = {key_name: keyring.unwrap(wrapped) for key_name, wrapped in manifest.keys.items()}
    own = keys.get(manifest.backup_id)
    if own is None:
        raise FormatError(f"manifest of {manifest.backup_id} lacks its own data key")
    crypto.check_manifest_mac(own, canonical_json(manifest.unsigned_raw()), manifest.mac)
    return keys
