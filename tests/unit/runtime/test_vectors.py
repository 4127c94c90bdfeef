"""Milvus Lite vector store: only active generations are visible; dense and BM25 search work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusException

from ragruntime.errors import InvalidArgument, StoreUnavailable, failure_name
from ragruntime.models import Chunk
from ragruntime.store.vectors import MilvusVectorStore, _terms_json


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MilvusVectorStore]:
    vectors = MilvusVectorStore(str(tmp_path / "milvus.db"), "", dimension=4)
    yield vectors
    vectors.close()


def _chunk(chunk_id: str, document: str, generation: int, content: str, position: int) -> Chunk:
    return Chunk(
        chunk_id, "ds", document, generation, content, f"{document}.txt", position=position
    )


def _load(store: MilvusVectorStore) -> None:
    store.insert(
        "ds",
        [
            _chunk("a1", "docA", 1, "the quick brown fox", 0),
            _chunk("a2", "docA", 1, "sleepy dogs rest", 1),
            _chunk("a9", "docA", 9, "an unfinished run about foxes", 0),
            _chunk("b1", "docB", 2, "quick brown foxes everywhere", 0),
        ],
        [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0.7, 0.7, 0, 0]],
    )


def test_searches_see_only_the_given_generations(store: MilvusVectorStore) -> None:
    _load(store)
    dense = store.dense_search("ds", [1.0, 0.0, 0.0, 0.0], [1, 2], limit=10)
    assert [h.chunk.id for h in dense][:2] == ["a1", "b1"]
    assert "a9" not in {h.chunk.id for h in dense}
    assert dense[0].score == pytest.approx(1.0)
    text = store.text_search("ds", "quick fox", [1, 2], limit=10)
    assert {h.chunk.id for h in text} == {"a1", "b1"}
    assert store.dense_search("ds", [1.0, 0, 0, 0], [], limit=10) == []


def test_query_chunks_pages_in_position_order(store: MilvusVectorStore) -> None:
    # (The keyword filter is the chunk service's: tests/integration/runtime/robustness.)
    _load(store)
    page, total = store.query_chunks(
        "ds", [1], document_id="docA", chunk_id=None, offset=0, limit=1
    )
    assert total == 2 and [c.id for c in page] == ["a1"]
    found, total = store.query_chunks(
        "ds", [1], document_id="docA", chunk_id="a2", offset=0, limit=10
    )
    assert total == 1 and [c.id for c in found] == ["a2"]


def test_a_term_list_too_long_for_its_column_is_refused_not_cut() -> None:
    with pytest.raises(InvalidArgument, match="at most 8192"):
        _terms_json(["x" * 9000])
    assert json.loads(_terms_json(["😀" * 500])) == ["😀" * 500]  # ASCII escapes, still whole


def test_deleting_one_generation_keeps_the_others(store: MilvusVectorStore) -> None:
    _load(store)
    store.delete_document("ds", "docA", generation=9)
    remaining, _ = store.query_chunks(
        "ds", [1, 9], document_id="docA", chunk_id=None, offset=0, limit=10
    )
    assert {c.id for c in remaining} == {"a1", "a2"}
    store.drop_collection("ds")
    store.ensure_collection("ds")
    assert store.dense_search("ds", [1.0, 0, 0, 0], [1], limit=5) == []


def test_a_released_collection_is_loaded_again_before_searching(
    store: MilvusVectorStore, tmp_path: Path
) -> None:
    _load(store)
    store.client.release_collection("ragflow_ds_ds")  # what a Milvus Lite restart leaves
    reopened = MilvusVectorStore(str(tmp_path / "milvus.db"), "", dimension=4)
    hits = reopened.dense_search("ds", [1.0, 0.0, 0.0, 0.0], [1], limit=1)
    assert [h.chunk.id for h in hits] == ["a1"]


def test_fetch_generations_reads_whole_generations_with_their_vectors(
    store: MilvusVectorStore,
) -> None:
    _load(store)
    rows, vectors = store.fetch_generations("ds", [1, 2])
    assert [r["id"] for r in rows] == ["a1", "a2", "b1"]  # by document, then position
    assert vectors.shape == (3, 4) and vectors[0].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert "dense" not in rows[0] and rows[0]["content"] == "the quick brown fox"
    empty_rows, empty = store.fetch_generations("ds", [])
    assert empty_rows == [] and empty.shape == (0, 4)


def test_a_chunk_over_the_content_column_is_refused_and_a_long_name_fits_whole_chars(
    store: MilvusVectorStore,
) -> None:
    # 20,000 four-byte characters: under 65,535 characters, over 65,535 bytes.
    oversized = Chunk("big", "ds", "docZ", 1, "😀" * 20_000, "z.txt")
    with pytest.raises(InvalidArgument, match="80000 bytes as UTF-8"):
        store.insert("ds", [oversized], [[1.0, 0, 0, 0]])
    named = Chunk("n1", "ds", "docN", 1, "fits", "é" * 400 + ".txt")  # 804 bytes of name
    store.insert("ds", [named], [[1.0, 0, 0, 0]])
    page, _ = store.query_chunks("ds", [1], document_id="docN", chunk_id=None, offset=0, limit=1)
    assert page[0].document_name == "é" * 256


def test_generation_ids_are_those_of_one_generation_of_a_document(store: MilvusVectorStore) -> None:
    _load(store)
    assert store.generation_ids("ds", "docA", 1) == {"a1", "a2"}
    assert store.generation_ids("ds", "docA", 9) == {"a9"}
    assert store.generation_ids("never-created", "docA", 1) == set()


def test_milvus_errors_leave_the_store_as_store_unavailable(store: MilvusVectorStore) -> None:
    """Milvus refuses a dataset without a collection; callers see the runtime's error only."""
    with pytest.raises(StoreUnavailable, match=r"^vector store error: ") as failed:
        store.query_chunks("missing", [1], document_id=None, chunk_id=None, offset=0, limit=1)
    assert isinstance(failed.value.__cause__, MilvusException)
    assert failure_name(failed.value) == "MilvusException"
    with pytest.raises(StoreUnavailable, match=r"^vector search failed: "):
        store.dense_search("missing", [1.0, 0.0, 0.0, 0.0], [1], limit=1)
