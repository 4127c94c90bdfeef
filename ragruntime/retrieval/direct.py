"""Candidates straight from the vector store, for a dataset whose query-side index isn't built yet.

A fresh process (nothing persisted) or a bulk load would otherwise make the first request wait
for the whole index sync (``ragruntime.retrieval.sync``). Until the sync completes, requests on
such a dataset are answered from Milvus, the system of record: its dense top ``top_k`` (cosine)
and its BM25 top ``top_k`` (Milvus' own analyzer: lower case, no stemming), both restricted to
the active generations and available chunks, exactly as the index restricts them. The union of
the hits, with their stored vectors, becomes a small ``DatasetIndex`` of its own, so the fusion,
payloads and paging downstream are the same code as for the index; only the two rankings come
from Milvus (hence possibly a slightly different order than the index gives once built).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ragruntime.retrieval.analyzer import analyze
from ragruntime.retrieval.index import Candidates, DatasetIndex, Floats, Ints, Segment
from ragruntime.store.vectors import MilvusVectorStore, VectorHit


def store_candidates(
    store: MilvusVectorStore,
    dataset_id: str,
    query_vector: Floats,
    question: str,
    generations: Sequence[int],
    top_k: int,
) -> Candidates:
    """Dense + BM25 candidates of ``dataset_id`` from Milvus, as the index's ``search`` gives."""
    dense = store.dense_search(dataset_id, query_vector.tolist(), generations, top_k)
    text = store.text_search(dataset_id, question, generations, top_k)
    hits: dict[str, VectorHit] = {}
    for hit in [*dense, *text]:
        hits.setdefault(hit.chunk.id, hit)
    ids = sorted(hits)
    stored = store.vectors_of(dataset_id, ids)
    ids = [i for i in ids if i in stored]  # deleted between the searches and this read
    terms = list(dict.fromkeys(analyze(question)))
    if not ids:
        return Candidates.empty(DatasetIndex(dataset_id, len(query_vector)), len(terms))
    rows = [_row(hits[i]) for i in ids]
    vectors = np.asarray([stored[i] for i in ids], dtype=np.float32).reshape(
        len(ids), len(query_vector)
    )
    segment = Segment.build("direct", rows, vectors, len(query_vector))
    index = DatasetIndex.create(
        dataset_id, len(query_vector), 0, [segment], [np.ones(len(ids), dtype=bool)], {}
    )
    where = {chunk_id: number for number, chunk_id in enumerate(ids)}
    presence = np.zeros((len(ids), len(terms)), dtype=bool)
    for column, per_segment in enumerate(index.term_postings(terms)):
        for posting_rows, _ in per_segment:
            presence[posting_rows, column] = True
    everything = np.arange(len(ids), dtype=np.int64)
    return Candidates(
        index,
        everything,
        index.cosines(query_vector, everything),
        _ranks(where, dense, len(ids)),
        _ranks(where, text, len(ids)),
        presence,
    )


def _ranks(where: dict[str, int], ranked: Sequence[VectorHit], size: int) -> Ints:
    """1-based rank of each candidate in ``ranked`` (0 when absent)."""
    ranks = np.zeros(size, dtype=np.int64)
    for rank, hit in enumerate(ranked, start=1):
        number = where.get(hit.chunk.id)
        if number is not None and ranks[number] == 0:
            ranks[number] = rank
    return ranks


def _row(hit: VectorHit) -> dict[str, Any]:
    """The Milvus row shape ``Segment.build`` reads, from a search hit's chunk."""
    chunk = hit.chunk
    return {
        "id": chunk.id,
        "document_id": chunk.document_id,
        "generation": chunk.generation,
        "document_name": chunk.document_name,
        "content": chunk.content,
        "important_keywords": list(chunk.important_keywords),
        "questions": list(chunk.questions),
        "available": chunk.available,
        "position": chunk.position,
        "created_at": chunk.created_at,
    }
