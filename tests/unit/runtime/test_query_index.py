"""The query-side index: incremental sync by dataset version, persistence, visibility, compaction.

The metadata database is a real SQLite store; the system of record is a fake ``RowSource`` that
records which generations were fetched (Milvus itself is covered by test_vectors.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from ragruntime.models import NewDocument
from ragruntime.retrieval import sync
from ragruntime.retrieval.index import DatasetIndex, Segment
from ragruntime.retrieval.sync import IndexManager
from ragruntime.store.metadata import SqlMetadataStore, bump_dataset_version
from ragruntime.store.schema import documents

DIM = 4


class FakeSource:
    """Rows per generation, like Milvus after the worker's inserts; logs every fetch."""

    def __init__(self) -> None:
        self.rows: dict[int, list[tuple[dict[str, Any], list[float]]]] = {}
        self.fetched: list[list[int]] = []

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

    def manager(self) -> IndexManager:
        return IndexManager(self.meta.engine, self.source, DIM, self.index_dir)

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
    live = np.concatenate(index.alive)
    terms = ["share", "number"]
    assert sorted(index.bm25_scores(index.term_postings(terms), live)[live]) == pytest.approx(
        sorted(fresh.bm25_scores(fresh.term_postings(terms), np.concatenate(fresh.alive)))
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
