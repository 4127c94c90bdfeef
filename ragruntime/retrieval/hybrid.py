"""Pure score fusion for hybrid retrieval, with RAGFlow's semantics.

``weighted`` (RAGFlow's default): similarity = w * vector_similarity + (1 - w) * term_similarity,
where w is ``vector_similarity_weight``, vector similarity is the cosine between query and chunk
embeddings and term similarity is the IDF-weighted share of the query's terms found in the chunk
(RAGFlow's token similarity; IDF over the candidate set). ``rrf``: reciprocal rank fusion of the
dense and BM25 rankings, 1/(k + rank) summed and scaled to [0, 1] by its maximum 2/(k + 1).
No I/O: ``ragruntime.retrieval.search`` feeds candidates in and applies threshold and paging.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

WORD_RE = re.compile(r"[A-Za-z0-9_]+|[\u4e00-\u9fff]")
STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have",
        "how", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or", "that", "the",
        "their", "there", "these", "this", "to", "was", "what", "when", "where", "which", "who",
        "why", "will", "with", "you",
    }
)  # fmt: skip
RRF_K = 60


def terms(text: str) -> list[str]:
    """Lower-cased word terms without stopwords (falls back to all words if only stopwords)."""
    words = [w.lower() for w in WORD_RE.findall(text)]
    kept = [w for w in words if w not in STOPWORDS]
    return kept or words


@dataclass(frozen=True)
class Candidate:
    key: str
    text: str
    vector_similarity: float
    dense_rank: int | None  # 1-based rank in the dense result list
    text_rank: int | None  # 1-based rank in the BM25 result list


@dataclass(frozen=True)
class Fused:
    key: str
    similarity: float
    vector_similarity: float
    term_similarity: float


def term_similarities(query: str, texts: Sequence[str]) -> list[float]:
    """IDF-weighted coverage of the query's distinct terms in each text, in [0, 1]."""
    query_terms = list(dict.fromkeys(terms(query)))
    if not query_terms or not texts:
        return [0.0 for _ in texts]
    text_terms = [set(terms(t)) for t in texts]
    n = len(texts)
    weights = {
        t: math.log(1.0 + (n + 1) / (1 + sum(1 for s in text_terms if t in s))) for t in query_terms
    }
    total = sum(weights.values())
    return [sum(weights[t] for t in query_terms if t in s) / total for s in text_terms]


def fuse(
    query: str, candidates: Sequence[Candidate], vector_weight: float, method: str = "weighted"
) -> list[Fused]:
    """Score candidates; the result is sorted best first (ties by key, for stable paging)."""
    vector_weight = min(1.0, max(0.0, vector_weight))
    term_scores = term_similarities(query, [c.text for c in candidates])
    fused = []
    for candidate, term_score in zip(candidates, term_scores, strict=True):
        if method == "rrf":
            score = sum(1.0 / (RRF_K + r) for r in (candidate.dense_rank, candidate.text_rank) if r)
            similarity = score / (2.0 / (RRF_K + 1))
        else:
            similarity = (
                vector_weight * candidate.vector_similarity + (1.0 - vector_weight) * term_score
            )
        fused.append(Fused(candidate.key, similarity, candidate.vector_similarity, term_score))
    fused.sort(key=lambda f: (-f.similarity, f.key))
    return fused


def highlight(text: str, query: str) -> str:
    """HTML-escaped ``text`` with the query's terms wrapped in <em>...</em>."""
    wanted = set(terms(query))
    if not wanted:
        return html.escape(text)
    parts = []
    last = 0
    for match in WORD_RE.finditer(text):
        if match.group(0).lower() in wanted:
            parts.append(html.escape(text[last : match.start()]))
            parts.append(f"<em>{html.escape(match.group(0))}</em>")
            last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)
