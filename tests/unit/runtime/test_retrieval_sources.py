"""Where a retrieval is answered from: the index, its last complete snapshot, or Milvus directly.

A real runtime over embedded SQLite + Milvus Lite, with a stand-in embedder (4-d vectors, so no
model is loaded): until a dataset's first index snapshot exists a request is answered from
Milvus (``vector-store``), then from the index; while a large sync runs, from the last complete
snapshot (``index-stale``) and such answers are never cached.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragruntime.config import Settings
from ragruntime.models import Chunk
from ragruntime.retrieval.direct import store_candidates
from ragruntime.retrieval.index import DatasetIndex, Segment
from ragruntime.retrieval.search import RetrievalRequest, retrieve_with_source
from ragruntime.runtime import Runtime, open_runtime
from ragruntime.services import datasets, documents
from ragruntime.store.queue import new_generation
from ragruntime.store.vectors import MilvusVectorStore

AXES = {"wing": [1.0, 0.0, 0.0, 0.0], "flutter": [0.0, 1.0, 0.0, 0.0]}


class AxisEmbedder:
    """Embeds a question onto the axis of its first known word (deterministic, no model)."""

    name, dimension, batch_size = "all-MiniLM-L6-v2", 4, 64

    def embed_query(self, text: str) -> list[float]:
        word = next((w for w in text.lower().split() if w in AXES), "wing")
        return AXES[word]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path, api_key="k", index_inline_sync_rows=0)
    opened = open_runtime(settings, embedder=AxisEmbedder())  # type: ignore[arg-type]
    yield opened
    opened.close()


def _add_document(
    runtime: Runtime, dataset_id: str, name: str, texts: Sequence[str], vectors: list[list[float]]
) -> None:
    """What a finished ingestion task leaves: chunks written, then the generation active."""
    (document,) = documents.upload_documents(runtime, dataset_id, [documents.Upload(name, b"x")])
    generation = new_generation()
    chunks = [
        Chunk(f"{name}-{n}", dataset_id, document.id, generation, text, name, position=n)
        for n, text in enumerate(texts)
    ]
    runtime.vectors.insert(dataset_id, chunks, vectors)
    runtime.metadata.ensure_generation(dataset_id, document.id, generation)
    runtime.metadata.adjust_chunk_count(dataset_id, document.id, len(texts), len(texts))


def test_milvus_answers_before_the_first_snapshot_then_the_index_and_stale_is_not_cached(
    runtime: Runtime,
) -> None:
    dataset_id = datasets.create_dataset(runtime, {"name": "sources"}).id
    _add_document(
        runtime,
        dataset_id,
        "a.txt",
        ["wing flutter at high speed", "boundary layer of a wing", "unrelated"],
        [[1.0, 0.0, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]],
    )
    request = RetrievalRequest(
        question="wing flutter", dataset_ids=[dataset_id], similarity_threshold=0.0
    )
    # inline_rows=0: every sync runs in the background; the snapshot doesn't exist yet (unless
    # the background sync was quicker, in which case the answer must be the same).
    direct, source = retrieve_with_source(runtime, request)
    assert source in ("vector-store", "index")
    version = runtime.metadata.dataset_versions([dataset_id])[dataset_id]
    runtime.index.snapshot(dataset_id, version)
    indexed, source = retrieve_with_source(runtime, request)
    assert source == "index"
    assert [c["id"] for c in direct["chunks"]] == [c["id"] for c in indexed["chunks"]]
    assert direct["chunks"][0]["similarity"] == pytest.approx(indexed["chunks"][0]["similarity"])
    assert retrieve_with_source(runtime, request)[1] == "cache"

    runtime.index.close()  # stops the background: the next sync waits until a request needs it
    _add_document(runtime, dataset_id, "b.txt", ["flutter of b"], [[0.0, 1.0, 0.0, 0.0]])
    stale, source = retrieve_with_source(runtime, request)
    assert source == "index-stale"
    assert "b.txt-0" not in {c["id"] for c in stale["chunks"]}
    assert retrieve_with_source(runtime, request)[1] == "index-stale"  # not answered from cache


def test_candidates_from_milvus_match_the_index_on_the_same_rows(tmp_path: Path) -> None:
    store = MilvusVectorStore(str(tmp_path / "milvus.db"), "", dimension=4)
    try:
        chunks = [
            Chunk("a1", "ds", "docA", 1, "quick brown fox", "a.txt", position=0),
            Chunk("a2", "ds", "docA", 1, "sleepy dogs rest", "a.txt", position=1),
            Chunk("a9", "ds", "docA", 9, "an unfinished quick run", "a.txt", position=0),
            Chunk("b1", "ds", "docB", 2, "quick brown bears", "b.txt", position=0),
            Chunk("b2", "ds", "docB", 2, "quick but hidden", "b.txt", available=False),
        ]
        vectors = [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0.6, 0.8, 0, 0], [1, 0, 0, 0]]
        store.insert("ds", chunks, vectors)
        query = np.asarray([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
        direct = store_candidates(store, "ds", query, "quick brown", [1, 2], top_k=10)
        rows, stored = store.fetch_generations("ds", [1, 2])
        segment = Segment.build("ref", rows, stored, 4)
        index = DatasetIndex.create("ds", 4, 1, [segment], [np.ones(len(rows), bool)], {})
        reference = index.search(query, "quick brown", [1, 2], top_k=10)

        def by_id(found: object) -> dict[str, tuple[float, int, bool]]:
            ids, _ = found.index.gather(found.rows)  # type: ignore[attr-defined]
            return {
                str(i): (round(float(s), 5), int(d), bool(t > 0))
                for i, s, d, t in zip(
                    ids,
                    found.vector_similarity,  # type: ignore[attr-defined]
                    found.dense_rank,  # type: ignore[attr-defined]
                    found.text_rank,  # type: ignore[attr-defined]
                    strict=True,
                )
            }

        assert by_id(direct) == by_id(reference)
        assert set(by_id(direct)) == {"a1", "a2", "b1"}  # never a9 (inactive) nor b2 (hidden)
        assert direct.term_presence.sum() == reference.term_presence.sum()
    finally:
        store.close()
