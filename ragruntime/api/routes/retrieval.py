"""POST /api/v1/retrieval: hybrid search over datasets (RAGFlow's request and response)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ragruntime.api.deps import JsonBody, RuntimeDep
from ragruntime.api.schemas import ok
from ragruntime.errors import InvalidArgument
from ragruntime.retrieval.search import RetrievalRequest, retrieve

router = APIRouter(tags=["retrieval"])


def _number(body: dict[str, Any], key: str, default: float | None, kind: type) -> Any:
    value = body.get(key)
    if value is None:
        return default
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"`{key}` must be a number") from exc


@router.post("/retrieval")
def retrieval(runtime: RuntimeDep, body: JsonBody) -> dict[str, Any]:
    dataset_ids = body.get("dataset_ids") or []
    document_ids = body.get("document_ids") or []
    if not isinstance(dataset_ids, list) or not isinstance(document_ids, list):
        raise InvalidArgument("`dataset_ids` and `document_ids` must be lists")
    if not dataset_ids and document_ids:
        dataset_ids = runtime.metadata.datasets_of_documents(document_ids)
    request = RetrievalRequest(
        question=str(body.get("question") or ""),
        dataset_ids=[str(d) for d in dataset_ids],
        document_ids=[str(d) for d in document_ids],
        page=_number(body, "page", 1, int),
        page_size=_number(body, "page_size", 30, int),
        similarity_threshold=_number(body, "similarity_threshold", 0.2, float),
        vector_similarity_weight=_number(body, "vector_similarity_weight", None, float),
        top_k=_number(body, "top_k", 1024, int),
        keyword=bool(body.get("keyword") or False),
        highlight=bool(body.get("highlight") or False),
        fusion=str(body["fusion"]) if body.get("fusion") else None,
    )
    return ok(retrieve(runtime, request))
