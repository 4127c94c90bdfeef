"""POST /api/v1/retrieval: hybrid search over datasets (RAGFlow's request and response)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from ragruntime.api.deps import RuntimeDep
from ragruntime.api.requests import Retrieval
from ragruntime.api.schemas import ok
from ragruntime.retrieval.search import RetrievalRequest, retrieve

router = APIRouter(tags=["retrieval"])


@router.post("/retrieval")
def retrieval(runtime: RuntimeDep, body: Annotated[Retrieval, Body()]) -> dict[str, Any]:
    given = body.given()
    dataset_ids = given.pop("dataset_ids", [])
    document_ids = given.get("document_ids", [])
    if not dataset_ids and document_ids:
        dataset_ids = runtime.metadata.datasets_of_documents(document_ids)
    request = RetrievalRequest(question=given.pop("question", ""), dataset_ids=dataset_ids, **given)
    return ok(retrieve(runtime, request))
