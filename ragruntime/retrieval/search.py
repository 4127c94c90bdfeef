"""The retrieval query plan: cache lookup, dense + BM25 candidates, fusion, paging.

``retrieve(runtime, request)`` is the plain-Python entry point used by the HTTP route (which
builds the request with ``request_from``) and the benchmarks. It only reads. Candidates are
the ``top_k`` best chunks of each dataset by dense similarity plus the ``top_k`` best by BM25,
from the process's query-side index (``runtime.index``, synced from Milvus by dataset version)
and restricted to the active generations the metadata database reports; they are fused by
``ragruntime.retrieval.hybrid`` as arrays, filtered by ``similarity_threshold`` and paged; only
the page's chunks are built.
A request that names no ``fusion`` gets RRF unless it sets ``vector_similarity_weight``, which
keeps RAGFlow's weighted meaning. RRF only orders: ``similarity_threshold`` is always a floor on
RAGFlow's weighted similarity (weight 0.3 unless given), so it filters by relevance in both modes
(a rank-based score says nothing about relevance: the top chunk always scores 1).
Each dataset is searched in its index snapshot at the dataset's current version; while a large
sync runs (``ragruntime.retrieval.sync``), in the newest complete snapshot (``index-stale``), or,
before the first one exists, in Milvus directly (``vector-store``,
``ragruntime.retrieval.direct``). Only answers from current snapshots are cached. The source
(the least fresh over the datasets, ``cache`` for a cache hit) is returned by
``retrieve_with_source`` and counted in ``ragflow_retrieval_source_total{source}``.
Every call is counted in ``ragflow_query_total{status}``:
``success``; ``rejected`` for bad input or unknown datasets; ``error`` when a store fails (for
example a dataset whose vector collection is unavailable).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ragruntime.errors import InvalidArgument, NotFound, RuntimeServiceError, StoreUnavailable
from ragruntime.models import Chunk
from ragruntime.retrieval.direct import store_candidates
from ragruntime.retrieval.hybrid import FUSIONS, highlight, order, rrf, term_similarity, weighted
from ragruntime.retrieval.index import Candidates
from ragruntime.runtime import Runtime
from ragruntime.store.cache import cache_key

MAX_TOP_K = 16384
# Where an answer came from, least fresh last (a request over several datasets reports the worst).
SOURCES = ("cache", "index", "index-stale", "vector-store")
DEFAULT_VECTOR_WEIGHT = 0.3  # RAGFlow's default, for weighted fusion without a weight


@dataclass(frozen=True)
class RetrievalRequest:
    question: str
    dataset_ids: list[str]
    document_ids: list[str] = field(default_factory=list)
    page: int = 1
    page_size: int = 30
    similarity_threshold: float = 0.2
    vector_similarity_weight: float | None = None  # None: not set by the client
    top_k: int = 1024
    highlight: bool = False
    fusion: str | None = None  # None: RRF, unless the client set vector_similarity_weight

    @property
    def resolved_fusion(self) -> str:
        """The fusion that applies: the named one, else weighted if a weight was set, else RRF."""
        if self.fusion:
            return self.fusion
        return "weighted" if self.vector_similarity_weight is not None else "rrf"

    @property
    def resolved_weight(self) -> float:
        if self.vector_similarity_weight is None:
            return DEFAULT_VECTOR_WEIGHT
        return self.vector_similarity_weight

    def validate(self) -> None:
        if not self.question or not self.question.strip():
            raise InvalidArgument("`question` is required.")
        if not self.dataset_ids:
            raise InvalidArgument("`dataset_ids` is required.")
        if self.page < 1 or self.page_size < 1:
            raise InvalidArgument("`page` and `page_size` must be positive.")
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InvalidArgument(f"`top_k` must be between 1 and {MAX_TOP_K}.")
        if not 0.0 <= self.resolved_weight <= 1.0:
            raise InvalidArgument("`vector_similarity_weight` must be between 0 and 1.")
        if self.fusion is not None and self.fusion not in FUSIONS:
            raise InvalidArgument("`fusion` must be 'weighted' or 'rrf'.")


def request_from(runtime: Runtime, fields: dict[str, Any]) -> RetrievalRequest:
    """The request a client's fields make; documents named without datasets imply theirs."""
    given = dict(fields)
    dataset_ids = given.pop("dataset_ids", [])
    document_ids = given.get("document_ids", [])
    if not dataset_ids and document_ids:
        dataset_ids = runtime.metadata.datasets_of_documents(document_ids)
    return RetrievalRequest(question=given.pop("question", ""), dataset_ids=dataset_ids, **given)


def retrieve(runtime: Runtime, request: RetrievalRequest) -> dict[str, Any]:
    """RAGFlow's ``data`` object: ``{"chunks": [...], "doc_aggs": [...], "total": N}``."""
    return retrieve_with_source(runtime, request)[0]


def retrieve_with_source(runtime: Runtime, request: RetrievalRequest) -> tuple[dict[str, Any], str]:
    """``retrieve``'s answer and where it came from (one of ``SOURCES``)."""
    started = time.perf_counter()
    status = "error"
    try:
        result, source = _retrieve(runtime, request)
        status = "success"
        runtime.metrics.retrieval_source.labels(source=source).inc()
        return result, source
    except (InvalidArgument, StoreUnavailable) as exc:
        status = "rejected" if isinstance(exc, InvalidArgument) else "error"
        raise
    except RuntimeServiceError as exc:
        status = "rejected" if exc.http_status < 500 and exc.code != 105 else "error"
        raise
    finally:
        metrics = runtime.metrics
        metrics.query_latency.observe(time.perf_counter() - started)
        metrics.query_total.labels(status=status, model=runtime.embedder.name).inc()


def _retrieve(runtime: Runtime, request: RetrievalRequest) -> tuple[dict[str, Any], str]:
    request.validate()
    versions = runtime.metadata.dataset_versions(request.dataset_ids)
    for dataset_id in request.dataset_ids:
        if dataset_id not in versions:
            raise NotFound(f"You don't own the dataset {dataset_id}.")
    key = cache_key(asdict(request), versions)
    cached = runtime.cache.get(key)
    if cached is not None:
        return json.loads(cached), "cache"
    # CPU-bound from here: as many at once as there are cores, the rest queue (no thrashing).
    with runtime.search_slots:
        result, source = _search(runtime, request, versions)
    if source == "index":  # a stale or provisional answer must not outlive the sync
        runtime.cache.set(key, json.dumps(result).encode())
    return result, source


def _candidates(
    runtime: Runtime,
    request: RetrievalRequest,
    versions: dict[str, int],
    generations: dict[str, list[int]],
) -> tuple[list[Candidates], str]:
    """Each dataset's candidates from its snapshot (or Milvus before it has one); the source."""
    query_vector = np.asarray(runtime.embedder.embed_query(request.question), dtype=np.float32)
    found: list[Candidates] = []
    source = "index"
    for dataset_id in request.dataset_ids:
        active = generations.get(dataset_id) or []
        if not active:
            continue
        lookup = runtime.index.lookup(dataset_id, versions[dataset_id])
        if lookup.index is None:
            source = "vector-store"
            found.append(
                store_candidates(
                    runtime.vectors,
                    dataset_id,
                    query_vector,
                    request.question,
                    active,
                    request.top_k,
                )
            )
            continue
        if not lookup.current and source == "index":
            source = "index-stale"
        found.append(lookup.index.search(query_vector, request.question, active, request.top_k))
    return [c for c in found if len(c)], source


def _search(
    runtime: Runtime, request: RetrievalRequest, versions: dict[str, int]
) -> tuple[dict[str, Any], str]:
    generations = runtime.metadata.searchable_generations(
        request.dataset_ids, request.document_ids or None
    )
    found, source = _candidates(runtime, request, versions, generations)
    if not found:
        return {"chunks": [], "doc_aggs": [], "total": 0}, source
    rows = np.concatenate([c.rows for c in found])
    origin = np.concatenate([np.full(len(c), n, dtype=np.int64) for n, c in enumerate(found)])
    vector_sim = np.concatenate([c.vector_similarity for c in found])
    # IDF over all candidates together, as RAGFlow does; analysed query terms are shared.
    term_sim = term_similarity(np.concatenate([c.term_presence for c in found]))
    # The threshold keeps RAGFlow's meaning in both modes: a floor on the weighted similarity.
    relevance = weighted(vector_sim, term_sim, request.resolved_weight)
    if request.resolved_fusion == "rrf":
        similarity = rrf(
            np.concatenate([c.dense_rank for c in found]),
            np.concatenate([c.text_rank for c in found]),
        )
    else:
        similarity = relevance
    gathered = [c.index.gather(c.rows) for c in found]
    ids = np.concatenate([g[0] for g in gathered])
    doc_ids = np.concatenate([g[1] for g in gathered])
    ranked = order(similarity, ids)
    ranked = ranked[relevance[ranked] >= request.similarity_threshold]
    start = (request.page - 1) * request.page_size
    page = ranked[start : start + request.page_size]
    chunks = [
        _chunk_json(
            found[origin[i]].index.chunk(int(rows[i])),
            float(similarity[i]),
            float(vector_sim[i]),
            float(term_sim[i]),
            request,
        )
        for i in page
    ]
    answer = {
        "chunks": chunks,
        "doc_aggs": _doc_aggs(found, rows[ranked], origin[ranked], doc_ids[ranked]),
        "total": len(ranked),
    }
    return answer, source


def _doc_aggs(
    found: list[Candidates], rows: np.ndarray, source: np.ndarray, doc_ids: np.ndarray
) -> list[dict[str, Any]]:
    """Kept chunks per document, most first (then by name)."""
    if len(doc_ids) == 0:
        return []
    names, first, counts = np.unique(doc_ids, return_index=True, return_counts=True)
    aggregates = [
        {
            "doc_id": str(doc_id),
            "doc_name": found[source[at]].index.document_name(int(rows[at])),
            "count": int(count),
        }
        for doc_id, at, count in zip(names, first, counts, strict=True)
    ]
    return sorted(aggregates, key=lambda a: (-a["count"], a["doc_name"]))


def _chunk_json(
    chunk: Chunk,
    similarity: float,
    vector_similarity: float,
    term_similarity: float,
    request: RetrievalRequest,
) -> dict[str, Any]:
    return {
        "id": chunk.id,
        "content": chunk.content,
        "content_ltks": chunk.content,
        "document_id": chunk.document_id,
        "document_keyword": chunk.document_name,
        "document_name": chunk.document_name,
        "dataset_id": chunk.dataset_id,
        "kb_id": chunk.dataset_id,
        "highlight": highlight(chunk.content, request.question) if request.highlight else "",
        "image_id": "",
        "important_keywords": chunk.important_keywords,
        "questions": chunk.questions,
        "positions": [],
        "doc_type": "",
        "similarity": round(similarity, 6),
        "vector_similarity": round(vector_similarity, 6),
        "term_similarity": round(term_similarity, 6),
    }
