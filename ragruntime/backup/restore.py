"""Restore a backup into an empty target (the runtime's stores, or a scratch copy for tests).

Called by ``ragruntime backup restore``, by ``verify`` (restore test) and by the restore Job that
bootstraps a RagFlowCluster from a backup. The target is a ``RestoreSink``: ``sink`` provides
the runtime's, tests use a dict sink. Without a chosen destination, ``restore_from_any`` tries
each in turn; a failed attempt empties the target again before the next one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from ragruntime.backup import crypto
from ragruntime.backup.destinations.base import DestinationError
from ragruntime.backup.format import Entry, FormatError, Manifest, ObjectRef
from ragruntime.backup.objects import IntegrityError, read_entry
from ragruntime.backup.repository import Repository, UnknownBackup, unlock_keys

log = logging.getLogger(__name__)

RESTORE_PREFETCH = 4  # objects downloaded ahead while one is decrypted (4 x 4 MiB in memory)


class TargetNotEmpty(Exception):
    """The restore target already holds data; pass ``force`` to overwrite it."""


class CountMismatch(Exception):
    """The target holds other record counts than the manifest after a restore."""


class RestoreFailed(LookupError):
    """No destination could restore the backup; the message says why for each."""


# what makes one copy unusable (and the next destination worth trying)
COPY_FAILURES: tuple[type[Exception], ...] = (
    DestinationError,
    UnknownBackup,
    FormatError,
    IntegrityError,
    crypto.CryptoError,
    CountMismatch,
)


class RestoreSink(Protocol):
    def prepare(self, force: bool) -> None:
        """Check the target is empty (else ``TargetNotEmpty`` unless ``force``), make it ready."""
        ...

    def write(self, entry: Entry, chunks: Iterator[bytes]) -> None: ...

    def finish(self, manifest: Manifest) -> Mapping[str, int]:
        """Complete the restore; return the records per component now in the target."""
        ...

    def discard(self) -> None:
        """Remove whatever this sink wrote (a failed restore leaves no half-restored target)."""
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
    """Stream every entry into ``sink``; on any failure after ``prepare`` the sink is emptied."""
    sink.prepare(force)

    def fetch(ref: ObjectRef) -> bytes:
        return repo.destination.get(ref.path)

    try:
        for entry in manifest.entries:
            sink.write(entry, read_entry(entry, fetch, keys, depth=RESTORE_PREFETCH))
        counts = sink.finish(manifest)
        missing = {c: n for c, n in manifest.counts.items() if c in counts and counts[c] != n}
        if missing:
            raise CountMismatch(
                "restored record counts differ from the manifest: "
                + ", ".join(f"{c} {counts[c]} != {n}" for c, n in sorted(missing.items()))
            )
    except BaseException:
        sink.discard()
        raise
    return counts


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


@dataclasses.dataclass(frozen=True)
class RestoreOutcome:
    manifest: Manifest
    counts: Mapping[str, int]
    destination: str
    skipped: tuple[tuple[str, str], ...]  # (destination, why its copy was not used)


def restore_from_any(
    repos: Sequence[Repository],
    backup_id: str | None,
    keyring: crypto.Keyring,
    sink: RestoreSink,
    *,
    force: bool = False,
) -> RestoreOutcome:
    """Try each destination in turn until one restores completely.

    A copy that is missing, damaged, unreadable with the keyring or restores the wrong counts
    is skipped (its partial restore discarded) and the next destination tried. ``latest``
    means the newest backup of each destination. A non-empty target stops at once.
    """
    skipped: list[tuple[str, str]] = []
    for repo in repos:
        try:
            manifest, counts = restore_backup(repo, backup_id, keyring, sink, force=force)
        except COPY_FAILURES as exc:
            skipped.append((repo.name, str(exc) or type(exc).__name__))
            log.warning(
                "restore from this destination failed; trying the next",
                extra={"destination": repo.name, "error": str(exc)},
            )
            continue
        return RestoreOutcome(manifest, counts, repo.name, tuple(skipped))
    what = backup_id or "latest"
    reasons = "; ".join(f"{name}: {why}" for name, why in skipped)
    raise RestoreFailed(f"no destination could restore backup {what}: {reasons}")
