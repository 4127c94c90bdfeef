"""The baselines the benchmarks measure the runtime against, computed in the same run.

- ``Bm25Baseline``: the bm25s library (Lucene BM25 variant, k1=1.5, b=0.75, English stop
  words, no stemming), i.e. what a user gets from a few lines of an off-the-shelf package.
- ``cosine_top_k``: brute-force numpy cosine similarity over an in-memory matrix, the exact
  answer any vector index approximates at best, and the floor for "retrieval alone" latency.

Used by bench_retrieval_quality.py and bench_query_latency.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
import numpy.typing as npt

BM25_K1 = 1.5
BM25_B = 0.75
BM25_METHOD = "lucene"
BM25_STOPWORDS = "en"

FloatMatrix = npt.NDArray[np.float32]


class Bm25Baseline:
    """An in-memory bm25s index over ``texts``; answers with the matching ``ids``."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        self._ids = list(ids)
        self._retriever = bm25s.BM25(method=BM25_METHOD, k1=BM25_K1, b=BM25_B)
        corpus_tokens = bm25s.tokenize(
            list(texts), stopwords=BM25_STOPWORDS, show_progress=False, return_ids=False
        )
        self._retriever.index(corpus_tokens, show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> list[list[str]]:
        """Top-k ids per query, best first (fewer when fewer documents share a term)."""
        query_tokens = bm25s.tokenize(
            list(queries), stopwords=BM25_STOPWORDS, show_progress=False, return_ids=False
        )
        k = min(k, len(self._ids))
        indices, scores = self._retriever.retrieve(query_tokens, k=k, show_progress=False)
        return [
            [self._ids[index] for index, score in zip(row, row_scores, strict=True) if score > 0]
            for row, row_scores in zip(indices, scores, strict=True)
        ]


def normalise_rows(matrix: npt.ArrayLike) -> FloatMatrix:
    """Unit-length float32 rows (zero rows stay zero)."""
    array = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, np.float32(1e-12))


def cosine_top_k(
    corpus_unit: FloatMatrix, queries: npt.ArrayLike, k: int
) -> tuple[npt.NDArray[np.int64], FloatMatrix]:
    """Exact top-k rows of ``corpus_unit`` (already unit rows) by cosine, per query row.

    Returns ``(indices, scores)``, each of shape (queries, k), best first.
    """
    query_unit = normalise_rows(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
    scores = query_unit @ corpus_unit.T
    k = min(k, corpus_unit.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)
