"""POST /api/v1/retrieval: hybrid search over datasets (RAGFlow's request and response)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from ragruntime.api.deps import RuntimeDep
from ragruntime.api.requests import Retrieval
from ragruntime.api.schemas import ok
from ragruntime.retrieval.search import RetrievalRequest, retrieve_with_source

router = APIRouter(tags=["retrieval"])
SOURCE_HEADER = "X-Ragflow-Retrieval-Source"  # index, index-stale, vector-store or cache


@router.post("/retrieval")
def retrieval(
    runtime: RuntimeDep, body: Annotated[Retrieval, Body()], response: Response
) -> dict[str, Any]:
    given = body.given()
    dataset_ids = given.pop("dataset_ids", [])
    document_ids = given.get("document_ids", [])
    if not dataset_ids and document_ids:
        dataset_ids = runtime.metadata.datasets_of_documents(document_ids)
    request = RetrievalRequest(question=given.pop("question", ""), dataset_ids=dataset_ids, **given)
    data, source = retrieve_with_source(runtime, request)
    response.headers[SOURCE_HEADER] = source
    return ok(data)
