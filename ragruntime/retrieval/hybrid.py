"""Pure, vectorised score fusion for hybrid retrieval (numpy arrays in, arrays out).

``weighted`` (RAGFlow's semantics, used when a request sets ``vector_similarity_weight``):
similarity = w * vector_similarity + (1 - w) * term_similarity, where vector similarity is the
cosine between query and chunk embeddings and term similarity is the IDF-weighted share of the
query's (analysed) terms found in the chunk, IDF over the candidate set (RAGFlow's token
similarity). ``rrf`` (the default when a request names neither a fusion nor a weight):
reciprocal rank fusion of the dense and BM25 rankings, sum of 1/(k + rank) over the top
``RRF_DEPTH`` of each list, scaled to [0, 1] by its maximum 2/(k + 1). ``RRF_K`` and
``RRF_DEPTH`` were chosen on the Cranfield dev queries only (docs/benchmarks.md).
No I/O: ``ragruntime.retrieval.search`` feeds candidate arrays in and applies threshold and
paging.
"""

from __future__ import annotations

import html

import numpy as np
import numpy.typing as npt

from ragruntime.retrieval.analyzer import WORD_RE, analyze

RRF_K = 20  # chosen on Cranfield dev (docs/benchmarks.md: the k x depth grid)
RRF_DEPTH = 100
FUSIONS = ("weighted", "rrf")

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


def term_similarity(presence: npt.NDArray[np.bool_]) -> Floats:
    """IDF-weighted share of the query terms each candidate contains, in [0, 1].

    ``presence`` is (candidates, distinct query terms); IDF is log(1 + (n + 1) / (1 + df)) with
    df counted over the candidates.
    """
    count, terms = presence.shape
    if terms == 0 or count == 0:
        return np.zeros(count, dtype=np.float32)
    frequency = presence.sum(axis=0)
    weights = np.log1p((count + 1) / (1.0 + frequency))
    return (presence @ weights / weights.sum()).astype(np.float32)


def rrf(dense_rank: Ints, text_rank: Ints, k: int = RRF_K, depth: int = RRF_DEPTH) -> Floats:
    """Reciprocal rank fusion of two 1-based rankings (0 = absent), scaled to [0, 1]."""
    score = np.zeros(len(dense_rank), dtype=np.float64)
    for ranks in (dense_rank, text_rank):
        counted = (ranks > 0) & (ranks <= depth)
        score[counted] += 1.0 / (k + ranks[counted])
    return (score / (2.0 / (k + 1))).astype(np.float32)


def weighted(vector_similarity: Floats, term_scores: Floats, vector_weight: float) -> Floats:
    """RAGFlow's weighted sum; the weight is clipped to [0, 1]."""
    weight = min(1.0, max(0.0, vector_weight))
    return (weight * vector_similarity + (1.0 - weight) * term_scores).astype(np.float32)


def order(similarity: Floats, keys: npt.NDArray[np.str_]) -> Ints:
    """Indices best first; ties broken by key, so paging is stable."""
    return np.lexsort((keys, -similarity)).astype(np.int64)


def highlight(text: str, query: str) -> str:
    """HTML-escaped ``text`` with the words sharing a query term's stem wrapped in <em>."""
    wanted = set(analyze(query))
    if not wanted:
        return html.escape(text)
    parts = []
    last = 0
    for match in WORD_RE.finditer(text):
        if set(analyze(match.group(0))) & wanted:
            parts.append(html.escape(text[last : match.start()]))
            parts.append(f"<em>{html.escape(match.group(0))}</em>")
            last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)
