"""The retrieval query plan: cache lookup, dense + BM25 candidates from Milvus, fusion, paging.

``retrieve(runtime, request)`` is the plain-Python entry point used by the HTTP route and the
benchmarks. It only reads. Candidates are the ``top_k`` best chunks of each dataset by dense
similarity plus the ``top_k`` best by BM25, restricted to the active generations the metadata
database reports; they are fused by ``ragruntime.retrieval.hybrid``, filtered by
``similarity_threshold`` and paged. Every call is counted in ``ragflow_query_total{status}``:
``success``; ``rejected`` for bad input or unknown datasets; ``error`` when a store fails (for
example a dataset whose vector collection is unavailable).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pymilvus import MilvusException

from ragruntime.errors import InvalidArgument, NotFound, RuntimeServiceError, StoreUnavailable
from ragruntime.models import Chunk
from ragruntime.retrieval.hybrid import Candidate, fuse, highlight
from ragruntime.runtime import Runtime
from ragruntime.store.cache import cache_key

MAX_TOP_K = 16384


@dataclass(frozen=True)
class RetrievalRequest:
    question: str
    dataset_ids: list[str]
    document_ids: list[str] = field(default_factory=list)
    page: int = 1
    page_size: int = 30
    similarity_threshold: float = 0.2
    vector_similarity_weight: float = 0.3
    top_k: int = 1024
    keyword: bool = False
    highlight: bool = False
    fusion: str = "weighted"

    def validate(self) -> None:
        if not self.question or not self.question.strip():
            raise InvalidArgument("`question` is required.")
        if not self.dataset_ids:
            raise InvalidArgument("`dataset_ids` is required.")
        if self.page < 1 or self.page_size < 1:
            raise InvalidArgument("`page` and `page_size` must be positive.")
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InvalidArgument(f"`top_k` must be between 1 and {MAX_TOP_K}.")
        if not 0.0 <= self.vector_similarity_weight <= 1.0:
            raise InvalidArgument("`vector_similarity_weight` must be between 0 and 1.")
        if self.fusion not in ("weighted", "rrf"):
            raise InvalidArgument("`fusion` must be 'weighted' or 'rrf'.")


def retrieve(runtime: Runtime, request: RetrievalRequest) -> dict[str, Any]:
    """RAGFlow's ``data`` object: ``{"chunks": [...], "doc_aggs": [...], "total": N}``."""
    started = time.perf_counter()
    status = "error"
    try:
        result = _retrieve(runtime, request)
        status = "success"
        return result
    except (InvalidArgument, StoreUnavailable) as exc:
        status = "rejected" if isinstance(exc, InvalidArgument) else "error"
        raise
    except RuntimeServiceError as exc:
        status = "rejected" if exc.http_status < 500 and exc.code != 105 else "error"
        raise
    except MilvusException as exc:
        raise StoreUnavailable(f"vector search failed: {exc.message}") from exc
    finally:
        metrics = runtime.metrics
        metrics.query_latency.observe(time.perf_counter() - started)
        metrics.query_total.labels(status=status, model=runtime.embedder.name).inc()


def _retrieve(runtime: Runtime, request: RetrievalRequest) -> dict[str, Any]:
    request.validate()
    versions = runtime.metadata.dataset_versions(request.dataset_ids)
    for dataset_id in request.dataset_ids:
        if dataset_id not in versions:
            raise NotFound(f"You don't own the dataset {dataset_id}.")
    key = cache_key(asdict(request), versions)
    cached = runtime.cache.get(key)
    if cached is not None:
        return json.loads(cached)  # type: ignore[no-any-return]
    result = _search(runtime, request)
    runtime.cache.set(key, json.dumps(result).encode())
    return result


def _search(runtime: Runtime, request: RetrievalRequest) -> dict[str, Any]:
    generations = runtime.metadata.searchable_generations(
        request.dataset_ids, request.document_ids or None
    )
    query_vector = runtime.embedder.embed_query(request.question)
    chunks: dict[str, Chunk] = {}
    candidates: list[Candidate] = []
    for dataset_id in request.dataset_ids:
        active = generations.get(dataset_id) or []
        if not active:
            continue
        dense = runtime.vectors.dense_search(dataset_id, query_vector, active, request.top_k)
        text = runtime.vectors.text_search(dataset_id, request.question, active, request.top_k)
        vector_sim = {hit.chunk.id: hit.score for hit in dense}
        dense_rank = {hit.chunk.id: rank for rank, hit in enumerate(dense, start=1)}
        text_rank = {hit.chunk.id: rank for rank, hit in enumerate(text, start=1)}
        missing = [hit.chunk.id for hit in text if hit.chunk.id not in vector_sim]
        for chunk_id, vector in runtime.vectors.vectors_of(dataset_id, missing).items():
            vector_sim[chunk_id] = sum(a * b for a, b in zip(vector, query_vector, strict=True))
        for hit in [*dense, *text]:
            if hit.chunk.id in chunks:
                continue
            chunks[hit.chunk.id] = hit.chunk
            candidates.append(
                Candidate(
                    key=hit.chunk.id,
                    text=hit.chunk.content,
                    vector_similarity=float(vector_sim.get(hit.chunk.id, 0.0)),
                    dense_rank=dense_rank.get(hit.chunk.id),
                    text_rank=text_rank.get(hit.chunk.id),
                )
            )
    fused = fuse(request.question, candidates, request.vector_similarity_weight, request.fusion)
    kept = [f for f in fused if f.similarity >= request.similarity_threshold]
    start = (request.page - 1) * request.page_size
    page = kept[start : start + request.page_size]
    aggregates: dict[str, dict[str, Any]] = {}
    for item in kept:
        chunk = chunks[item.key]
        entry = aggregates.setdefault(
            chunk.document_id,
            {"doc_id": chunk.document_id, "doc_name": chunk.document_name, "count": 0},
        )
        entry["count"] += 1
    return {
        "chunks": [_chunk_json(chunks[f.key], f, request) for f in page],
        "doc_aggs": sorted(aggregates.values(), key=lambda a: (-a["count"], a["doc_name"])),
        "total": len(kept),
    }


def _chunk_json(chunk: Chunk, scores: Any, request: RetrievalRequest) -> dict[str, Any]:
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
        "similarity": round(scores.similarity, 6),
        "vector_similarity": round(scores.vector_similarity, 6),
        "term_similarity": round(scores.term_similarity, 6),
    }
