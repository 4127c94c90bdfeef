"""Keeps each API process's query-side index in step with the system of record, by dataset version.

Milvus (``MilvusVectorStore``) stays the source of truth for chunks; the metadata database says
which generation of each document is searchable and bumps ``datasets.version`` with every change
that can alter retrieval. Each dataset's snapshot (a ``DatasetIndex``) is brought up to date by a
**background sync** of its own (one thread per dataset while there is work, at most
``BACKGROUND_SYNCS`` of them fetching at once unless a request waits on one):

1. the documents' signatures -- ``(active_generation, updated_at_ms, chunk_count,
   token_count)``, which change whenever a generation is activated or a chunk is added, edited,
   toggled or deleted -- are read from the metadata database, and only the documents whose
   signature changed are fetched from Milvus (``fetch_generations``, a Strong read: a completed
   generation is whole). Their rows form one new segment; their older rows and those of
   documents no longer searchable are marked dead. The new snapshot replaces the old one in one
   assignment, so a search sees a document's rows all or none.
2. the snapshot is persisted under ``<data_dir>/index/<dataset_id>/`` (segments written once,
   then ``manifest.json`` naming them, atomically), so a restarted process loads it and fetches
   only what changed since.

A sync starts when a request sees a newer dataset version than its snapshot, when the watcher
(``watch``: every few seconds, and at once on startup) sees one, and is retried with backoff when
it fails (logged, counted through ``on_sync``). ``lookup(dataset_id, version)`` is what a request
calls: a snapshot at that version is returned as is (no I/O); otherwise, when the rows still to
fetch are few (``inline_rows``: a completed document or a chunk edit), the request waits for the
sync, so a client that uploads and then queries sees its document; when they are many (a bulk
load, a fresh process), it gets the newest *complete* snapshot at once, marked not current, or
none at all (the caller then asks Milvus directly), and the sync goes on in the background.
``snapshot`` always waits (tests, benchmarks, tools).

Searches additionally filter by the generations the metadata database reports at query time
(``DatasetIndex.visible``), so rows of a superseded or unfinished generation are never served,
whatever the state of the index.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from ragruntime.errors import StoreUnavailable, failure_name
from ragruntime.retrieval.index import Bools, DatasetIndex, Segment
from ragruntime.store.schema import datasets, documents

log = logging.getLogger(__name__)

MAX_SEGMENTS = 8
MAX_DEAD_SHARE = 0.25
LARGE_SEGMENT_ROWS = 20_000
MANIFEST = "manifest.json"
INLINE_SYNC_ROWS = 2_000  # a request waits for a sync fetching at most this many rows
BACKGROUND_SYNCS = 2  # syncs fetching at once that no request waits for
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between failed attempts; the last repeats
WATCH_SECONDS = 5.0
Signature = tuple[int, ...]
SyncListener = Callable[[str, float], None]  # (result: "success" | "error", seconds)


class RowSource(Protocol):
    """What the index reads from the system of record (``MilvusVectorStore`` implements it)."""

    def fetch_generations(
        self, dataset_id: str, generations: Sequence[int]
    ) -> tuple[list[dict[str, Any]], npt.NDArray[np.float32]]: ...


def document_signatures(engine: sa.Engine, dataset_id: str) -> dict[str, Signature]:
    """Per searchable document of the dataset: what changes whenever its chunks change."""
    query = sa.select(
        documents.c.id,
        documents.c.active_generation,
        documents.c.updated_at_ms,
        documents.c.chunk_count,
        documents.c.token_count,
    ).where(documents.c.dataset_id == dataset_id, documents.c.active_generation.is_not(None))
    with engine.connect() as conn:
        return {
            str(row[0]): (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
            for row in conn.execute(query)
        }


@dataclass(frozen=True, eq=False)
class Lookup:
    """What a request searches: the newest complete snapshot (or none yet) and whether it is
    synced to the version the request asked for."""

    index: DatasetIndex | None
    current: bool


class _DatasetSync:
    """One dataset's sync state; every field is guarded by the manager's condition."""

    def __init__(self) -> None:
        self.target = 0  # the highest version asked for
        self.running = False  # a thread is working on it
        self.urgent = False  # a request waits: skip the backoff and the background slots
        self.attempts = 0
        self.failures = 0  # consecutive
        self.last_error: BaseException | None = None
        self.dropped = False
        self.work = threading.Lock()  # held while a sync computes and persists
        self.wake = threading.Event()


def dataset_versions(engine: sa.Engine) -> dict[str, int]:
    """Every dataset's version (the watcher's one query)."""
    with engine.connect() as conn:
        return {
            str(r[0]): int(r[1]) for r in conn.execute(sa.select(datasets.c.id, datasets.c.version))
        }


class IndexManager:
    """Snapshots per dataset for one process; thread-safe, one sync at a time per dataset."""

    def __init__(
        self,
        engine: sa.Engine,
        source: RowSource,
        dimension: int,
        directory: Path | None,
        *,
        inline_rows: int = INLINE_SYNC_ROWS,
        on_sync: SyncListener | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.dimension = dimension
        self.directory = directory
        self.inline_rows = inline_rows
        self.on_sync = on_sync
        self._indexes: dict[str, DatasetIndex] = {}
        self._syncs: dict[str, _DatasetSync] = {}
        self._changed = threading.Condition()
        self._slots = threading.BoundedSemaphore(BACKGROUND_SYNCS)
        self._stopping = threading.Event()
        self._threads: set[threading.Thread] = set()

    # -- what requests call ---------------------------------------------------------------
    def lookup(self, dataset_id: str, version: int) -> Lookup:
        """The snapshot to search for ``version``; waits only for a small sync (see module)."""
        current = self._indexes.get(dataset_id)
        if current is not None and current.version >= version:
            return Lookup(current, True)
        wait = self._rows_to_fetch(dataset_id, current) <= self.inline_rows
        state = self._request(dataset_id, version, urgent=wait)
        if wait:
            return Lookup(self._wait(dataset_id, state, version), True)
        newest = self._indexes.get(dataset_id)
        if newest is not None and newest.version >= version:
            return Lookup(newest, True)
        # A snapshot holding no document yet (e.g. synced when the dataset was created) would
        # answer nothing during a bulk load: Milvus answers then, as before any snapshot.
        return Lookup(newest if newest is not None and newest.documents else None, False)

    def snapshot(self, dataset_id: str, version: int) -> DatasetIndex:
        """A snapshot synced at least to ``version``, waiting for the sync however long."""
        current = self._indexes.get(dataset_id)
        if current is not None and current.version >= version:
            return current
        return self._wait(dataset_id, self._request(dataset_id, version, urgent=True), version)

    def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Start syncing every known dataset now, then whenever its version moves."""
        thread = threading.Thread(
            target=self._watch, args=(interval,), name="index-watch", daemon=True
        )
        with self._changed:
            self._threads.add(thread)
        thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the watcher and the syncs; waits up to ``timeout`` for a running attempt."""
        self._stopping.set()
        with self._changed:
            for state in self._syncs.values():
                state.wake.set()
            self._changed.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def install(self, index: DatasetIndex) -> None:
        """Adopt a snapshot built outside a sync (benchmarks, tools): persisted exactly as a
        sync persists one, then served. ``index.documents`` must hold the documents' current
        signatures, or the next sync refetches them."""
        with self._changed:
            state = self._syncs.setdefault(index.dataset_id, _DatasetSync())
        with state.work:
            self._persist(index, index.segments)
            self._indexes[index.dataset_id] = index.warm()

    def forget(self, dataset_id: str) -> None:
        """Drop a dataset's snapshot (memory only; the next query loads or rebuilds it)."""
        self._indexes.pop(dataset_id, None)

    def drop(self, dataset_id: str) -> None:
        """A deleted dataset: its snapshot and its persisted files go (waits for a running sync)."""
        with self._changed:
            state = self._syncs.setdefault(dataset_id, _DatasetSync())
            state.dropped = True
            state.wake.set()
            self._changed.notify_all()
        with state.work:
            self._indexes.pop(dataset_id, None)
            directory = self._dataset_dir(dataset_id)
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
        with self._changed:
            if self._syncs.get(dataset_id) is state:
                del self._syncs[dataset_id]
            self._changed.notify_all()

    # -- scheduling -----------------------------------------------------------------------
    def _rows_to_fetch(self, dataset_id: str, current: DatasetIndex | None) -> int:
        """Rows a sync from ``current`` would fetch now (chunk counts of changed documents)."""
        known = current.documents if current is not None else {}
        wanted = document_signatures(self.engine, dataset_id)
        return sum(s[2] for d, s in wanted.items() if known.get(d) != s)

    def _request(self, dataset_id: str, version: int, *, urgent: bool) -> _DatasetSync:
        """Ask for ``version``: raise the target and start the dataset's thread if idle."""
        with self._changed:
            state = self._syncs.get(dataset_id)
            if state is None or state.dropped:
                state = self._syncs[dataset_id] = _DatasetSync()
            state.target = max(state.target, version)
            if urgent:
                state.urgent = True
                state.wake.set()
            if not state.running and not self._stopping.is_set():
                state.running = True
                thread = threading.Thread(
                    target=self._run, args=(dataset_id, state), name="index-sync", daemon=True
                )
                self._threads.add(thread)
                thread.start()
        return state

    def _wait(self, dataset_id: str, state: _DatasetSync, version: int) -> DatasetIndex:
        """Block until a snapshot reaches ``version``; an attempt failing meanwhile raises."""
        with self._changed:
            seen = state.attempts
            while True:
                current = self._indexes.get(dataset_id)
                if current is not None and current.version >= version:
                    return current
                if state.attempts > seen and state.last_error is not None:
                    raise StoreUnavailable(
                        "the query index could not be synced with the vector store "
                        f"({failure_name(state.last_error)}); the sync is retried"
                    ) from state.last_error
                if state.dropped or not state.running or self._stopping.is_set():
                    raise StoreUnavailable("the dataset's query index is not available")
                self._changed.wait()

    def _run(self, dataset_id: str, state: _DatasetSync) -> None:
        """The dataset's sync thread: attempts until the snapshot reaches the target."""
        try:
            while not self._stopping.is_set():
                with self._changed:
                    current = self._indexes.get(dataset_id)
                    target = state.target
                    if state.dropped or (current is not None and current.version >= target):
                        return
                self._attempt(dataset_id, state, target)
                with self._changed:
                    failures, urgent = state.failures, state.urgent
                if failures and not urgent:
                    delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1]
                    state.wake.wait(delay)
                    state.wake.clear()
                    if not self._dataset_exists(dataset_id):
                        return
        finally:
            with self._changed:
                state.running = False
                self._threads.discard(threading.current_thread())
                self._changed.notify_all()

    def _attempt(self, dataset_id: str, state: _DatasetSync, target: int) -> None:
        """One sync to ``target`` (a request waiting on it skips the background slots)."""
        state.wake.clear()  # requests from here on wait for this attempt's outcome
        slot = False
        while not state.urgent:
            if self._stopping.is_set():
                return
            if self._slots.acquire(timeout=0.2):
                slot = True
                break
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            with state.work:
                if state.dropped:
                    return
                current = self._indexes.get(dataset_id)
                if current is None:
                    # A persisted snapshot is a starting point only: its signatures are compared.
                    current = self._load(dataset_id) or DatasetIndex(dataset_id, self.dimension)
                synced, written = self._sync(current, target)
                synced.warm()
                if not state.dropped:
                    self._persist(synced, written)
                    self._indexes[dataset_id] = synced
        except Exception as exc:  # any failure: surfaced (log, metric, waiting requests), retried
            error = exc
            log.warning(
                "query index sync failed; retrying",
                extra={"dataset": dataset_id, "error": failure_name(exc)},
            )
        finally:
            if slot:
                self._slots.release()
        seconds = time.perf_counter() - started
        with self._changed:
            state.attempts += 1
            state.last_error = error
            state.failures = state.failures + 1 if error is not None else 0
            state.urgent = False
            self._changed.notify_all()
        if self.on_sync is not None:
            self.on_sync("error" if error is not None else "success", seconds)

    def _dataset_exists(self, dataset_id: str) -> bool:
        try:
            return dataset_id in dataset_versions(self.engine)
        except Exception:  # the database blips: keep retrying
            return True

    def _watch(self, interval: float) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    versions = dataset_versions(self.engine)
                except Exception as exc:
                    log.warning(
                        "index watcher cannot read versions", extra={"error": failure_name(exc)}
                    )
                    versions = {}
                for dataset_id, version in versions.items():
                    current = self._indexes.get(dataset_id)
                    if current is None or current.version < version:
                        self._request(dataset_id, version, urgent=False)
                self._stopping.wait(interval)
        finally:
            with self._changed:
                self._threads.discard(threading.current_thread())

    # -- sync -----------------------------------------------------------------------------
    def _sync(self, current: DatasetIndex, version: int) -> tuple[DatasetIndex, list[Segment]]:
        dataset_id = current.dataset_id
        wanted = document_signatures(self.engine, dataset_id)
        changed = [d for d, signature in wanted.items() if current.documents.get(d) != signature]
        gone = [d for d in current.documents if d not in wanted or d in changed]
        segments, alive = list(current.segments), [a.copy() for a in current.alive]
        if gone:
            dropped = set(gone)
            for number, segment in enumerate(segments):
                dead = np.asarray([d in dropped for d in segment.doc_ids], dtype=bool)
                if dead.any():
                    alive[number] &= ~dead[segment.row_doc]
        fresh: Segment | None = None
        if changed:
            rows, vectors = self.source.fetch_generations(
                dataset_id, sorted({wanted[d][0] for d in changed})
            )
            fresh = Segment.build(_segment_name(), rows, vectors, self.dimension)
            segments.append(fresh)
            alive.append(np.ones(fresh.size, dtype=bool))
        documents_now = {d: s for d, s in current.documents.items() if d not in gone}
        documents_now.update({d: wanted[d] for d in changed})
        written: list[Segment] = [fresh] if fresh is not None else []
        chosen = _to_compact(segments, alive)
        if len(chosen) > 1:
            merged = Segment.merge(_segment_name(), [(segments[i], alive[i]) for i in chosen])
            segments = [s for i, s in enumerate(segments) if i not in chosen] + [merged]
            alive = [a for i, a in enumerate(alive) if i not in chosen]
            alive.append(np.ones(merged.size, dtype=bool))
            written = [merged]
        synced = DatasetIndex.create(
            dataset_id, self.dimension, version, segments, alive, documents_now
        )
        log.info(
            "query index synced",
            extra={
                "dataset": dataset_id,
                "version": version,
                "fetched_documents": len(changed),
                "dropped_documents": len(gone),
                "rows": synced.rows,
                "segments": len(segments),
            },
        )
        return synced, written

    # -- persistence ----------------------------------------------------------------------
    def _dataset_dir(self, dataset_id: str) -> Path | None:
        return None if self.directory is None else self.directory / dataset_id

    def _persist(self, index: DatasetIndex, written: Sequence[Segment]) -> None:
        directory = self._dataset_dir(index.dataset_id)
        if directory is None:
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for segment in written:
                segment.save(directory)
            manifest = {
                "version": index.version,
                "dimension": index.dimension,
                "segments": [
                    {"name": s.name, "dead": np.flatnonzero(~a).tolist()}
                    for s, a in zip(index.segments, index.alive, strict=True)
                ],
                "documents": {d: list(s) for d, s in index.documents.items()},
            }
            partial = directory / f"{MANIFEST}.{uuid.uuid4().hex}.tmp"
            partial.write_text(json.dumps(manifest), encoding="utf-8")
            partial.replace(directory / MANIFEST)
            keep = {s.name for s in index.segments}
            for path in directory.glob("seg-*"):
                if path.name.split(".")[0] not in keep:
                    path.unlink(missing_ok=True)
        except OSError:
            log.warning("query index not persisted", extra={"dataset": index.dataset_id})

    def _load(self, dataset_id: str) -> DatasetIndex | None:
        directory = self._dataset_dir(dataset_id)
        if directory is None or not (directory / MANIFEST).is_file():
            return None
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
            if int(manifest["dimension"]) != self.dimension:
                return None
            segments, alive = [], []
            for entry in manifest["segments"]:
                segment = Segment.load(directory, entry["name"])
                mask = np.ones(segment.size, dtype=bool)
                mask[np.asarray(entry["dead"], dtype=np.int64)] = False
                segments.append(segment)
                alive.append(mask)
            signatures: Mapping[str, Signature] = {
                d: tuple(int(x) for x in s) for d, s in manifest["documents"].items()
            }
        except (OSError, ValueError, KeyError, IndexError):
            log.warning("persisted query index unreadable; rebuilding", exc_info=True)
            return None
        return DatasetIndex.create(
            dataset_id, self.dimension, int(manifest["version"]), segments, alive, signatures
        )


def _segment_name() -> str:
    return f"seg-{uuid.uuid4().hex}"


def _to_compact(segments: Sequence[Segment], alive: Sequence[Bools]) -> list[int]:
    """Which segments to merge: all when dead rows pile up, else the small ones when too many.

    Large segments are only rewritten for dead rows, so a stream of small updates (one
    document per completed task) never copies a large segment.
    """
    total = sum(s.size for s in segments)
    dead = total - sum(int(a.sum()) for a in alive)
    if total > 0 and dead / total > MAX_DEAD_SHARE:
        return list(range(len(segments)))
    if len(segments) > MAX_SEGMENTS:
        return [i for i, s in enumerate(segments) if s.size < LARGE_SEGMENT_ROWS]
    return []
