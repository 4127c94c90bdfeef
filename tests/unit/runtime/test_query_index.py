"""The query-side index: incremental sync by dataset version, persistence, visibility, compaction.

The metadata database is a real SQLite store; the system of record is a fake ``RowSource`` that
records which generations were fetched (Milvus itself is covered by test_vectors.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from ragruntime.errors import StoreUnavailable
from ragruntime.models import NewDocument
from ragruntime.retrieval import prefilter, sync
from ragruntime.retrieval.index import DatasetIndex, Segment
from ragruntime.retrieval.sync import IndexManager
from ragruntime.store.metadata import SqlMetadataStore, bump_dataset_version
from ragruntime.store.schema import documents

DIM = 4


class FakeSource:
    """Rows per generation, like Milvus after the worker's inserts; logs every fetch.

    ``gate`` holds fetches until set (a long sync); ``failures`` makes that many fetches raise."""

    def __init__(self) -> None:
        self.rows: dict[int, list[tuple[dict[str, Any], list[float]]]] = {}
        self.fetched: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.failures = 0

    def put(self, document: str, generation: int, texts: Sequence[str], axis: int = 0) -> None:
        entries = []
        for position, text in enumerate(texts):
            vector = [0.0] * DIM
            vector[(axis + position) % DIM] = 1.0
            row = {
                "id": f"{document}-{generation}-{position}",
                "document_id": document,
                "generation": generation,
                "content": text,
                "document_name": f"{document}.txt",
                "important_keywords": "[]",
                "questions": "[]",
                "available": True,
                "position": position,
                "created_at": 1.0,
            }
            entries.append((row, vector))
        self.rows[generation] = entries

    def fetch_generations(
        self, dataset_id: str, generations: Sequence[int]
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        self.entered.set()
        assert self.gate.wait(30), "test gate never opened"
        if self.failures:
            self.failures -= 1
            raise ConnectionError("vector store unreachable")
        self.fetched.append(sorted(generations))
        entries = [e for g in generations for e in self.rows.get(g, [])]
        rows = [dict(e[0]) for e in entries]
        return rows, np.asarray([e[1] for e in entries], dtype=np.float32).reshape(-1, DIM)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.meta = SqlMetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}")
        self.dataset = self.meta.create_dataset(name="ds", fields={"embedding_model": "m"})
        self.source = FakeSource()
        self.index_dir = tmp_path / "index"

    def manager(self, **options: Any) -> IndexManager:
        return IndexManager(self.meta.engine, self.source, DIM, self.index_dir, **options)

    def add(self, document: str) -> None:
        new = NewDocument(document, f"{document}.txt", 1, "txt", document)
        self.meta.add_documents(self.dataset, [new])

    def activate(self, document: str, generation: int, texts: Sequence[str]) -> None:
        """What a finished task does: chunks written first, then the generation flipped."""
        self.source.put(document, generation, texts)
        with self.meta.engine.begin() as conn:
            conn.execute(
                documents.update()
                .where(documents.c.id == document)
                .values(active_generation=generation, chunk_count=len(texts))
            )
            bump_dataset_version(conn, self.dataset.id)

    def version(self) -> int:
        return self.meta.dataset_versions([self.dataset.id])[self.dataset.id]

    def generations(self) -> list[int]:
        return self.meta.searchable_generations([self.dataset.id], None)[self.dataset.id]

    def search(self, index: DatasetIndex, text: str, top_k: int = 10) -> list[str]:
        query = np.asarray([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
        found = index.search(query, text, self.generations(), top_k)
        ids, _ = index.gather(found.rows)
        return sorted(str(i) for i in ids)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_version_bump_fetches_only_the_documents_that_changed(world: World) -> None:
    world.add("a")
    world.add("b")
    world.activate("a", 11, ["wing flutter", "boundary layer"])
    manager = world.manager()
    first = manager.snapshot(world.dataset.id, world.version())
    assert world.source.fetched == [[11]]
    assert manager.snapshot(world.dataset.id, world.version()) is first  # same version: no I/O
    world.activate("b", 22, ["shock waves"])
    second = manager.snapshot(world.dataset.id, world.version())
    assert world.source.fetched == [[11], [22]]
    assert len(second.segments) == 2 and second.live_rows == 3
    assert world.search(second, "shock wave") == [
        "a-11-0",
        "a-11-1",
        "b-22-0",
    ]  # dense top-k sees all three; BM25 adds nothing new


def test_a_reparsed_document_replaces_its_rows_and_old_rows_are_never_served(
    world: World,
) -> None:
    world.add("a")
    world.activate("a", 1, ["old text about flutter"])
    manager = world.manager()
    old = manager.snapshot(world.dataset.id, world.version())
    world.source.put("a", 2, ["new text about flutter", "second new chunk"])  # task running
    # While the new generation is being written, the active one is still 1: only it is served.
    assert world.search(old, "flutter") == ["a-1-0"]
    world.activate("a", 2, ["new text about flutter", "second new chunk"])
    new = manager.snapshot(world.dataset.id, world.version())
    assert world.search(new, "flutter") == ["a-2-0", "a-2-1"]
    # A stale snapshot never serves the superseded generation either: visibility is checked
    # against the generations the metadata database reports at query time.
    assert world.search(old, "flutter") == []


def test_a_half_written_generation_is_not_fetched_before_it_is_activated(world: World) -> None:
    world.add("a")
    world.add("b")
    world.activate("a", 1, ["alpha"])
    world.source.put("b", 5, ["beta half"])  # written, not yet activated
    manager = world.manager()
    index = manager.snapshot(world.dataset.id, world.version())
    assert world.source.fetched == [[1]]
    assert index.documents.keys() == {"a"}
    assert world.search(index, "beta") == ["a-1-0"]


def test_manual_chunk_edits_in_the_active_generation_are_picked_up(world: World) -> None:
    world.add("a")
    world.activate("a", 7, ["first chunk"])
    manager = world.manager()
    manager.snapshot(world.dataset.id, world.version())
    world.source.put("a", 7, ["first chunk", "added by hand about zebras"])
    world.meta.adjust_chunk_count(world.dataset.id, "a", 1, 5)  # what add_chunk does
    index = manager.snapshot(world.dataset.id, world.version())
    assert world.source.fetched == [[7], [7]]
    assert index.live_rows == 2  # the first fetch's row is dead, not doubled
    query = np.asarray([0.0, 1.0, 0.0, 0.0], dtype=np.float32)
    found = index.search(query, "zebras", world.generations(), top_k=1)
    ids, _ = index.gather(found.rows)
    assert "a-7-1" in set(ids)


def test_deleted_documents_drop_out_and_compaction_keeps_only_live_rows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "MAX_SEGMENTS", 2)
    manager = world.manager()
    for number in range(4):
        name = f"d{number}"
        world.add(name)
        world.activate(name, 100 + number, [f"text number {number}", "shared words"])
        manager.snapshot(world.dataset.id, world.version())
    world.meta.delete_documents(world.dataset.id, ["d0"])
    index = manager.snapshot(world.dataset.id, world.version())
    assert len(index.segments) <= 2
    assert index.documents.keys() == {"d1", "d2", "d3"}
    assert world.search(index, "shared") == sorted(
        f"d{n}-{100 + n}-{p}" for n in (1, 2, 3) for p in (0, 1)
    )
    # BM25 after compaction equals BM25 of a fresh build over the same live rows.
    rebuilt = world.manager()
    rebuilt.directory = None
    fresh = rebuilt.snapshot(world.dataset.id, world.version())
    terms = ["share", "number"]
    assert sorted(index.bm25_scores(index.term_postings(terms))[index.live]) == pytest.approx(
        sorted(fresh.bm25_scores(fresh.term_postings(terms)))
    )


def test_a_restarted_process_loads_the_persisted_index_and_fetches_only_changes(
    world: World,
) -> None:
    world.add("a")
    world.add("b")
    world.activate("a", 1, ["persisted rows about flutter"])
    world.manager().snapshot(world.dataset.id, world.version())
    manifest = json.loads((world.index_dir / world.dataset.id / "manifest.json").read_text())
    assert manifest["version"] == world.version()
    world.activate("b", 2, ["arrived while the process was down"])
    world.source.fetched.clear()
    restarted = world.manager()
    index = restarted.snapshot(world.dataset.id, world.version())
    assert world.source.fetched == [[2]]  # "a" came from disk
    assert world.search(index, "flutter") == ["a-1-0", "b-2-0"]
    segment = index.segments[0]
    reloaded = Segment.load(world.index_dir / world.dataset.id, segment.name)
    assert reloaded.ids == segment.ids
    assert (reloaded.terms != segment.terms).nnz == 0


def test_dropping_a_dataset_removes_its_snapshot_and_its_files(world: World) -> None:
    world.add("a")
    world.activate("a", 1, ["rows of a dataset about to be deleted"])
    manager = world.manager()
    manager.snapshot(world.dataset.id, world.version())
    assert (world.index_dir / world.dataset.id / "manifest.json").exists()
    manager.drop(world.dataset.id)
    assert not (world.index_dir / world.dataset.id).exists()
    world.source.fetched.clear()
    manager.snapshot(world.dataset.id, world.version())  # nothing cached: fetched again
    assert world.source.fetched == [[1]]


def test_an_unreadable_persisted_index_is_rebuilt(world: World) -> None:
    world.add("a")
    world.activate("a", 1, ["alpha"])
    world.manager().snapshot(world.dataset.id, world.version())
    (world.index_dir / world.dataset.id / "manifest.json").write_text("{not json")
    world.source.fetched.clear()
    index = world.manager().snapshot(world.dataset.id, world.version())
    assert world.source.fetched == [[1]] and index.live_rows == 1


def test_signatures_come_from_the_metadata_database(world: World) -> None:
    world.add("a")
    world.add("b")
    world.activate("a", 3, ["x"])
    signatures = sync.document_signatures(world.meta.engine, world.dataset.id)
    assert set(signatures) == {"a"} and signatures["a"][0] == 3
    with world.meta.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(documents)).scalar() == 2


# -- background sync: requests never wait for a large sync --------------------------------------


def _eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_request_during_a_large_sync_gets_the_last_complete_snapshot_never_half_a_document(
    world: World,
) -> None:
    world.add("a")
    world.add("b")
    world.activate("a", 1, ["flutter of a wing"])
    manager = world.manager(inline_rows=3)
    old = manager.snapshot(world.dataset.id, world.version())
    world.source.gate.clear()
    world.source.entered.clear()
    world.activate("b", 2, [f"flutter number {n}" for n in range(6)])  # 6 rows > 3: background
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:  # what concurrent requests see while the sync runs and is swapped in
        while not stop.is_set():
            index = manager.lookup(world.dataset.id, world.version()).index
            assert index is not None
            seen.append(sum(1 for i in world.search(index, "flutter") if i.startswith("b-")))

    started = time.monotonic()
    lookup = manager.lookup(world.dataset.id, world.version())
    assert time.monotonic() - started < 5 and world.source.entered.wait(10)
    assert lookup.index is old and not lookup.current
    assert world.search(lookup.index, "flutter") == ["a-1-0"]  # b is active but not in it
    poller = threading.Thread(target=poll)
    poller.start()
    world.source.gate.set()
    new = manager.snapshot(world.dataset.id, world.version())
    _eventually(lambda: len(seen) > 0 and seen[-1] == 6)
    stop.set()
    poller.join()
    assert set(seen) <= {0, 6}  # all of b's rows or none, never part of them
    assert len(world.search(new, "flutter")) == 7
    final = manager.lookup(world.dataset.id, world.version())
    assert final.index is new and final.current


def test_without_any_snapshot_a_large_sync_leaves_the_request_to_the_vector_store(
    world: World,
) -> None:
    world.add("a")
    world.activate("a", 1, ["one", "two", "three"])
    manager = world.manager(inline_rows=2)
    world.source.gate.clear()
    lookup = manager.lookup(world.dataset.id, world.version())
    assert lookup.index is None and not lookup.current
    world.source.gate.set()
    assert manager.snapshot(world.dataset.id, world.version()).live_rows == 3


def test_a_snapshot_of_no_document_is_not_served_during_a_bulk_load(world: World) -> None:
    manager = world.manager(inline_rows=2)
    assert manager.snapshot(world.dataset.id, world.version()).live_rows == 0  # created empty
    world.add("a")
    world.source.gate.clear()
    world.activate("a", 1, ["one", "two", "three"])
    lookup = manager.lookup(world.dataset.id, world.version())
    assert lookup.index is None and not lookup.current  # the caller asks Milvus instead
    world.source.gate.set()


def test_a_small_change_is_waited_for_so_an_uploaded_document_is_visible_at_once(
    world: World,
) -> None:
    world.add("a")
    world.add("b")
    world.activate("a", 1, ["alpha"])
    manager = world.manager(inline_rows=3)
    manager.snapshot(world.dataset.id, world.version())
    world.activate("b", 2, ["beta", "gamma"])
    lookup = manager.lookup(world.dataset.id, world.version())
    assert lookup.current and lookup.index is not None
    assert world.search(lookup.index, "beta") == ["a-1-0", "b-2-0", "b-2-1"]


def test_a_failing_sync_is_surfaced_and_retried_until_it_succeeds(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sync, "RETRY_DELAYS", (0.01,))
    results: list[str] = []
    done = threading.Event()

    def record(result: str, seconds: float) -> None:
        results.append(result)
        if result == "success":
            done.set()

    world.add("a")
    world.activate("a", 1, ["alpha"])
    world.source.failures = 3
    manager = world.manager(on_sync=record)
    with pytest.raises(StoreUnavailable, match="could not be synced"):
        manager.lookup(world.dataset.id, world.version())  # the request waited: it sees why
    assert done.wait(20)  # retried in the background without any request
    assert results == ["error", "error", "error", "success"]
    assert "query index sync failed; retrying" in caplog.text
    assert manager.lookup(world.dataset.id, world.version()).current
    # A large sync failing never fails requests: they keep the last complete snapshot.
    done.clear()
    world.add("b")
    world.activate("b", 2, ["b0", "b1", "b2", "b3"])
    world.source.failures = 1
    manager.inline_rows = 1
    lookup = manager.lookup(world.dataset.id, world.version())
    assert lookup.index is not None and not lookup.current
    assert done.wait(20) and results[-2:] == ["error", "success"]


def test_the_watcher_syncs_every_dataset_on_start_and_on_version_bumps(world: World) -> None:
    synced = threading.Semaphore(0)
    world.add("a")
    world.activate("a", 1, ["alpha"])
    manager = world.manager(on_sync=lambda result, seconds: synced.release())
    manager.watch(interval=0.05)
    try:
        assert synced.acquire(timeout=20)
        assert world.source.fetched == [[1]]
        world.add("b")
        world.activate("b", 2, ["beta"])
        assert synced.acquire(timeout=20)
        _eventually(lambda: world.source.fetched == [[1], [2]])
        assert manager.lookup(world.dataset.id, world.version()).current  # no I/O left
    finally:
        manager.close()


def test_dropping_a_dataset_during_its_sync_leaves_no_snapshot_and_no_files(world: World) -> None:
    world.add("a")
    world.add("b")
    world.activate("a", 1, ["alpha"])
    manager = world.manager(inline_rows=1)
    manager.snapshot(world.dataset.id, world.version())
    folder = world.index_dir / world.dataset.id
    assert (folder / "manifest.json").exists()
    world.source.gate.clear()
    world.source.entered.clear()
    world.activate("b", 2, ["beta", "gamma"])
    assert not manager.lookup(world.dataset.id, world.version()).current
    assert world.source.entered.wait(10)
    dropping = threading.Thread(target=manager.drop, args=(world.dataset.id,))
    dropping.start()
    world.source.gate.set()
    dropping.join(20)
    assert not dropping.is_alive() and world.source.fetched == [[1], [2]]
    assert not folder.exists()  # the finished sync was neither persisted nor published


# -- the int8 pre-filter of large segments ------------------------------------------------------


def test_large_segments_prefilter_in_int8_and_rescore_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prefilter, "MIN_ROWS", 1000)
    monkeypatch.setattr(prefilter, "MIN_CANDIDATES", 200)
    generator = np.random.default_rng(5)
    dimension, size = 64, 6000
    vectors = generator.standard_normal((size, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        {"id": f"r{i}", "document_id": f"d{i % 7}", "generation": 1, "content": "x"}
        for i in range(size)
    ]
    segment = Segment.build("big", rows, vectors, dimension)
    assert segment.quantized is not None
    mask = np.ones(size, dtype=bool)
    mask[::3] = False  # hidden rows are never candidates
    for _ in range(10):
        query = generator.standard_normal(dimension).astype(np.float32)
        query /= np.linalg.norm(query)
        found, cosines = segment.dense_top(query, mask, 100)
        exact = vectors @ query
        truth = np.flatnonzero(mask)[np.argsort(-exact[mask])[:100]]
        assert mask[found].all()
        assert np.allclose(cosines, exact[found], atol=1e-6)  # re-scored in float32
        assert len(set(found.tolist()) & set(truth.tolist())) >= 99
    small = Segment.build("small", rows[:500], vectors[:500], dimension)
    assert small.quantized is None
