"""Keeps each API process's query-side index in step with the system of record, by dataset version.

Milvus (``MilvusVectorStore``) stays the source of truth for chunks; the metadata database says
which generation of each document is searchable and bumps ``datasets.version`` with every change
that can alter retrieval. ``IndexManager.snapshot(dataset_id, version)`` returns a
``DatasetIndex`` synced at least to ``version``:

1. a snapshot already at that version is returned as is (the common case: no I/O at all);
2. otherwise the documents' signatures -- ``(active_generation, updated_at_ms, chunk_count,
   token_count)``, which change whenever a generation is activated or a chunk is added, edited,
   toggled or deleted -- are read from the metadata database, and only the documents whose
   signature changed are fetched from Milvus (``fetch_generations``, a Strong read: a completed
   generation is whole). Their rows form one new segment; their older rows and those of
   documents no longer searchable are marked dead. The new snapshot replaces the old one in one
   assignment, so a search sees a document's rows all or none.
3. the snapshot is persisted under ``<data_dir>/index/<dataset_id>/`` (segments written once,
   then ``manifest.json`` naming them, atomically), so a restarted process loads it and fetches
   only what changed since.

Searches additionally filter by the generations the metadata database reports at query time
(``DatasetIndex.visible``), so rows of a superseded or unfinished generation are never served,
whatever the state of the index.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from ragruntime.retrieval.index import Bools, DatasetIndex, Segment
from ragruntime.store.schema import documents

log = logging.getLogger(__name__)

MAX_SEGMENTS = 8
MAX_DEAD_SHARE = 0.25
LARGE_SEGMENT_ROWS = 20_000
MANIFEST = "manifest.json"
Signature = tuple[int, ...]


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


class IndexManager:
    """Snapshots per dataset for one process; thread-safe, one sync at a time per dataset."""

    def __init__(
        self, engine: sa.Engine, source: RowSource, dimension: int, directory: Path | None
    ) -> None:
        self.engine = engine
        self.source = source
        self.dimension = dimension
        self.directory = directory
        self._indexes: dict[str, DatasetIndex] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def snapshot(self, dataset_id: str, version: int) -> DatasetIndex:
        current = self._indexes.get(dataset_id)
        if current is not None and current.version >= version:
            return current
        with self._guard:
            lock = self._locks.setdefault(dataset_id, threading.Lock())
        with lock:
            current = self._indexes.get(dataset_id)
            if current is None:
                # A persisted snapshot is a starting point only: its signatures are compared.
                loaded = self._load(dataset_id) or DatasetIndex(dataset_id, self.dimension)
                current = self._sync(loaded, version)
            elif current.version < version:
                current = self._sync(current, version)
            self._indexes[dataset_id] = current
        return current

    def forget(self, dataset_id: str) -> None:
        """Drop a dataset's snapshot (memory only; the next query loads or rebuilds it)."""
        self._indexes.pop(dataset_id, None)

    def drop(self, dataset_id: str) -> None:
        """A deleted dataset: its snapshot and its persisted files go (waits for a running sync)."""
        with self._guard:
            lock = self._locks.setdefault(dataset_id, threading.Lock())
        with lock:
            self._indexes.pop(dataset_id, None)
            directory = self._dataset_dir(dataset_id)
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
        with self._guard:
            self._locks.pop(dataset_id, None)

    # -- sync -----------------------------------------------------------------------------
    def _sync(self, current: DatasetIndex, version: int) -> DatasetIndex:
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
        written = [fresh] if fresh is not None else []
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
        self._persist(synced, written)
        return synced

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
