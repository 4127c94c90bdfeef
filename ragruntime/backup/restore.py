"""Restore a backup into an empty target (the runtime's stores, or a scratch copy for tests).

Called by ``ragruntime backup restore``, by ``verify`` (restore test) and by the restore Job that
bootstraps a RagFlowCluster from a backup. The target is a ``RestoreSink``: ``snapshot`` provides
the runtime's, tests use a directory sink.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from ragruntime.backup import crypto
from ragruntime.backup.format import Entry, Manifest, ObjectRef
from ragruntime.backup.objects import read_entry
from ragruntime.backup.repository import Repository, UnknownBackup, unlock_keys

RESTORE_PREFETCH = 4  # objects downloaded ahead while one is decrypted (4 x 4 MiB in memory)


class TargetNotEmpty(Exception):
    """The restore target already holds data; pass ``force`` to overwrite it."""


class RestoreSink(Protocol):
    def prepare(self, force: bool) -> None:
        """Check the target is empty (else ``TargetNotEmpty`` unless ``force``), make it ready."""
        ...

    def write(self, entry: Entry, chunks: Iterator[bytes]) -> None: ...

    def finish(self, manifest: Manifest) -> Mapping[str, int]:
        """Complete the restore; return the records per component now in the target."""
        ...


def resolve_backup_id(repo: Repository, backup_id: str | None) -> str:
    """``None`` or ``latest`` → the newest committed backup."""
    if backup_id and backup_id != "latest":
        return backup_id
    latest = repo.load_catalog().latest()
    if latest is None:
        raise UnknownBackup(f"no backups in the catalog of {repo.name}")
    return latest.backup_id


def restore_manifest(
    repo: Repository,
    manifest: Manifest,
    keys: Mapping[str, bytes],
    sink: RestoreSink,
    *,
    force: bool,
) -> Mapping[str, int]:
    sink.prepare(force)

    def fetch(ref: ObjectRef) -> bytes:
        return repo.destination.get(ref.path)

    for entry in manifest.entries:
        sink.write(entry, read_entry(entry, fetch, keys, depth=RESTORE_PREFETCH))
    return sink.finish(manifest)


def restore_backup(
    repo: Repository,
    backup_id: str | None,
    keyring: crypto.Keyring,
    sink: RestoreSink,
    *,
    force: bool = False,
) -> tuple[Manifest, Mapping[str, int]]:
    """Authenticate the manifest, then stream every entry into ``sink``."""
    manifest = repo.committed_manifest(resolve_backup_id(repo, backup_id))
    keys = unlock_keys(manifest, keyring)
    return manifest, restore_manifest(repo, manifest, keys, sink, force=force)
