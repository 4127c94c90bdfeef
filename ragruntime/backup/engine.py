"""Backup orchestration: one snapshot, encrypted once, written to every destination in parallel.

Called by ``ragruntime backup run`` (``cli``) and by tests/benchmarks with in-process sources.
Order per destination follows restic: data objects, then a check that the destination's listing
shows every one of them (``presence``), then the manifest and the commit marker, then the
catalog (a cache of the markers), so a crash at any point leaves every listed backup complete.
A backup succeeds when at least ``min_successful`` destinations hold all of it; otherwise the
markers written are withdrawn and it is listed nowhere.
Memory is bounded by ``max_in_flight`` sealed objects, whatever the backup's size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Protocol

from ragruntime.backup import crypto, presence
from ragruntime.backup.destinations.base import Destination, DestinationError
from ragruntime.backup.format import (
    Entry,
    FormatError,
    Manifest,
    ObjectRef,
    canonical_json,
    manifest_path,
)
from ragruntime.backup.objects import DEFAULT_OBJECT_SIZE, ObjectWriter, SealedObject, read_pieces
from ragruntime.backup.repository import Repository, catalog_entry, unlock_keys

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SourceEntry:
    """One stream of a snapshot; ``open`` returns a context manager over a binary file."""

    component: str
    path: str
    open: Callable[[], contextlib.AbstractContextManager[BinaryIO]]
    records: int = 0


class Snapshot(Protocol):
    """A consistent, already-captured view of the runtime's state (see ``snapshot``)."""

    def entries(self) -> Iterator[SourceEntry]: ...

    def counts(self) -> Mapping[str, int]: ...


@dataclasses.dataclass(frozen=True)
class BackupOptions:
    cluster: str
    schedule: str = "on-demand"
    type: str = "full"  # full | incremental
    min_successful: int = 1
    object_size: int = DEFAULT_OBJECT_SIZE
    chunk_size: int = crypto.DEFAULT_CHUNK_SIZE
    max_in_flight: int = 6
    uploads_per_destination: int = 4


@dataclasses.dataclass
class DestinationResult:
    name: str
    state: str = "pending"  # succeeded | failed
    error: str = ""
    objects: int = 0
    bytes: int = 0

    def fail(self, error: str) -> None:
        if self.state != "failed":
            self.state, self.error = "failed", error[:300]

    def to_raw(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state,
            "error": self.error,
            "objects": self.objects,
            "bytes": self.bytes,
        }


@dataclasses.dataclass
class BackupResult:
    backup_id: str
    type: str
    schedule: str
    parent_id: str | None
    started_at: str
    finished_at: str = ""
    succeeded: bool = False
    error: str = ""
    plain_bytes: int = 0
    stored_bytes: int = 0
    counts: Mapping[str, int] = dataclasses.field(default_factory=dict)
    destinations: list[DestinationResult] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Compact JSON-able summary (fits a Pod termination message, 4 KiB)."""
        return {
            "id": self.backup_id,
            "type": self.type,
            "schedule": self.schedule,
            "parentId": self.parent_id,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "succeeded": self.succeeded,
            "error": self.error[:300],
            "bytes": self.plain_bytes,
            "storedBytes": self.stored_bytes,
            "counts": dict(self.counts),
            "destinations": [d.to_raw() for d in self.destinations],
        }


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_backup_id(now: dt.datetime) -> str:
    """Sortable, unique: ``20260101T020000Z-3f9a1c``."""
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _iso(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Fanout:
    """Uploads each sealed object to every live destination, bounded in flight."""

    def __init__(
        self,
        repos: Sequence[Repository],
        results: Mapping[str, DestinationResult],
        options: BackupOptions,
    ) -> None:
        self.repos = repos
        self.results = results
        self.slots = threading.BoundedSemaphore(options.max_in_flight)
        self.pools = {
            r.name: ThreadPoolExecutor(
                options.uploads_per_destination, thread_name_prefix=f"upload-{r.name}"
            )
            for r in repos
        }
        self.lock = threading.Lock()

    def store(self, sealed: SealedObject) -> None:
        live = [r for r in self.repos if self.results[r.name].state != "failed"]
        if not live:
            return
        self.slots.acquire()
        remaining = [len(live)]

        def upload(repo: Repository) -> None:
            try:
                if self.results[repo.name].state != "failed":
                    repo.destination.put(sealed.ref.path, sealed.data)
                    with self.lock:
                        self.results[repo.name].objects += 1
                        self.results[repo.name].bytes += len(sealed.data)
            except DestinationError as exc:
                with self.lock:
                    self.results[repo.name].fail(f"upload of object {sealed.ref.name}: {exc}")
            finally:
                with self.lock:
                    remaining[0] -= 1
                    done = remaining[0] == 0
                if done:
                    self.slots.release()

        for repo in live:
            self.pools[repo.name].submit(upload, repo)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=True)


def _good_on(destination: Destination, refs: list[ObjectRef]) -> set[str]:
    return presence.good_objects(destination, refs, presence.listing(destination))


def _choose_parent(
    repos: Sequence[Repository], keyring: crypto.Keyring
) -> tuple[Manifest | None, dict[str, ObjectRef]]:
    """Newest backup committed on every live destination, and those of its objects that every
    one of them holds with the right size and checksum (anything else is uploaded again)."""
    catalogs = [r.load_catalog() for r in repos]
    common = set.intersection(*({e.backup_id for e in c.entries} for c in catalogs))
    candidates = [e for e in catalogs[0].entries if e.backup_id in common]
    if not candidates:
        return None, {}
    newest = max(candidates, key=lambda e: (e.started_at, e.backup_id))
    parent = repos[0].load_manifest(newest.backup_id, expected_sha256=newest.manifest_sha256)
    unlock_keys(parent, keyring)  # the parent must be readable with today's keyring
    refs = list(parent.objects.values())
    good = set.intersection(*(_good_on(r.destination, refs) for r in repos))
    if len(good) < len(refs):
        log.warning(
            "parent objects missing or damaged; uploading them again",
            extra={"parent": parent.backup_id, "bad": len(refs) - len(good)},
        )
    return parent, {ref.name: ref for ref in refs if ref.path in good}


def run_backup(
    snapshot: Snapshot,
    destinations: Sequence[Destination],
    keyring: crypto.Keyring,
    options: BackupOptions,
    clock: Callable[[], dt.datetime] = utcnow,
) -> BackupResult:
    """Back up ``snapshot`` to all ``destinations``; never raises for a destination failure."""
    if not destinations:
        raise ValueError("at least one destination is required")
    if not 1 <= options.min_successful <= len(destinations):
        raise ValueError("min_successful must be between 1 and the number of destinations")
    started = clock()
    backup_id = new_backup_id(started)
    result = BackupResult(backup_id, options.type, options.schedule, None, _iso(started))
    result.destinations = [DestinationResult(d.name) for d in destinations]
    by_name = {r.name: r for r in result.destinations}
    repos = [Repository(d, options.cluster) for d in destinations]
    live = []
    for repo in repos:
        try:
            repo.write_lock(backup_id, started)
            live.append(repo)
        except DestinationError as exc:
            by_name[repo.name].fail(f"destination unreachable: {exc}")
    t0 = time.monotonic()
    try:
        _write(snapshot, live, by_name, keyring, options, result, clock)
    finally:
        for repo in live:
            with contextlib.suppress(DestinationError):
                repo.remove_lock(backup_id)
    result.finished_at = _iso(clock())
    log.info(
        "backup finished",
        extra={"backup": result.summary(), "seconds": round(time.monotonic() - t0, 3)},
    )
    return result


def _write(
    snapshot: Snapshot,
    live: list[Repository],
    by_name: dict[str, DestinationResult],
    keyring: crypto.Keyring,
    options: BackupOptions,
    result: BackupResult,
    clock: Callable[[], dt.datetime],
) -> None:
    parent: Manifest | None = None
    reusable: dict[str, ObjectRef] = {}
    if options.type == "incremental" and live:
        try:
            parent, reusable = _choose_parent(live, keyring)
        except (DestinationError, crypto.CryptoError, ValueError) as exc:
            log.warning("no usable parent, taking a full backup", extra={"error": str(exc)})
            parent, reusable = None, {}
    if parent is None:
        result.type = "full"
    else:
        result.parent_id = parent.backup_id
    data_key = crypto.new_data_key()
    writer = ObjectWriter(
        backup_id=result.backup_id,
        data_key=data_key,
        name_key=keyring.object_name_key(),
        reusable=reusable,
        chunk_size=options.chunk_size,
    )
    entries = _upload_entries(snapshot, writer, _Fanout(live, by_name, options), options)
    keys = {result.backup_id: keyring.wrap(data_key)}
    if parent is not None:
        keys.update({k: parent.keys[k] for k in writer.reused_keys})
    manifest = Manifest(
        backup_id=result.backup_id,
        cluster=options.cluster,
        type=result.type,
        parent_id=result.parent_id,
        schedule=options.schedule,
        started_at=result.started_at,
        finished_at=_iso(clock()),
        entries=tuple(entries),
        keys=keys,
        counts=dict(snapshot.counts()),
        chunk_size=options.chunk_size,
    )
    unsigned = canonical_json(manifest.unsigned_raw())
    manifest = dataclasses.replace(manifest, mac=crypto.manifest_mac(data_key, unsigned))
    result.plain_bytes = manifest.plain_bytes
    result.stored_bytes = sum(
        r.stored_size for r in manifest.objects.values() if r.key == result.backup_id
    )
    result.counts = manifest.counts
    _commit(manifest, live, by_name, keyring, options, result)


def _upload_entries(
    snapshot: Snapshot, writer: ObjectWriter, fanout: _Fanout, options: BackupOptions
) -> list[Entry]:
    entries: list[Entry] = []
    try:
        for source in snapshot.entries():
            with source.open() as stream:
                entry = writer.write_entry(
                    component=source.component,
                    path=source.path,
                    pieces=read_pieces(stream, options.object_size),
                    store=fanout.store,
                    records=source.records,
                )
            entries.append(entry)
    finally:
        fanout.close()
    return entries


def _confirm_objects(
    manifest: Manifest,
    live: list[Repository],
    by_name: dict[str, DestinationResult],
) -> list[Repository]:
    """Destinations that hold every object of the manifest, as their listings show.

    Missing or damaged objects are copied from another destination holding them intact;
    a destination that still lacks one fails (it is not committed).
    """
    refs = list(manifest.objects.values())
    ready = []
    for repo in live:
        if by_name[repo.name].state == "failed":
            continue
        try:
            missing = presence.missing_objects(refs, presence.listing(repo.destination))
            if missing:
                sources = [r.destination for r in live if r is not repo]
                unrepaired = presence.repair(repo.destination, missing, sources)
                unrepaired += [
                    ref
                    for ref in missing
                    if ref not in unrepaired
                    and presence.matches(ref, repo.destination.stat(ref.path)) is False
                ]
                if unrepaired:
                    by_name[repo.name].fail(
                        f"{len(unrepaired)} of {len(refs)} objects missing or damaged after "
                        f"upload (first: {unrepaired[0].name}); no intact copy to restore them"
                    )
                    continue
            ready.append(repo)
        except DestinationError as exc:
            by_name[repo.name].fail(f"checking the uploaded objects: {exc}")
    return ready


def _commit(
    manifest: Manifest,
    live: list[Repository],
    by_name: dict[str, DestinationResult],
    keyring: crypto.Keyring,
    options: BackupOptions,
    result: BackupResult,
) -> None:
    """Confirm objects, then manifest and commit marker to every destination that has them
    all; if too few do, the markers written are removed again, so a failed backup is listed
    nowhere. Catalogs (a cache of the markers) are updated last."""
    body = manifest.to_bytes()
    entry = catalog_entry(manifest, body)
    marked = []
    for repo in _confirm_objects(manifest, live, by_name):
        try:
            repo.destination.put(manifest_path(result.backup_id), body)
            repo.mark_committed(entry)
            marked.append(repo)
        except DestinationError as exc:
            by_name[repo.name].fail(f"manifest upload: {exc}")
    if len(marked) < options.min_successful:
        for repo in marked:
            try:
                repo.unmark_committed(result.backup_id)
            except DestinationError as exc:
                by_name[repo.name].fail(f"could not withdraw the commit marker: {exc}")
        result.error = (
            f"only {len(marked)} of {len(by_name)} destinations took the backup; "
            f"{options.min_successful} required; nothing committed"
        )
        for destination in by_name.values():
            destination.fail("not committed: too few destinations succeeded")
        return
    for repo in marked:
        by_name[repo.name].state = "succeeded"
        try:
            repo.add_to_catalog(entry)
        except (DestinationError, FormatError) as exc:
            log.warning(
                "catalog not updated; it is rebuilt from the commit marker when read",
                extra={"destination": repo.name, "error": str(exc)},
            )
    result.succeeded = True
