"""POST /api/v1/retrieval: hybrid search over datasets (RAGFlow's request and response)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from ragruntime.api.deps import RuntimeDep
from ragruntime.api.requests import Retrieval
from ragruntime.api.schemas import ok
from ragruntime.retrieval.search import request_from, retrieve_with_source

router = APIRouter(tags=["retrieval"])
SOURCE_HEADER = "X-Ragflow-Retrieval-Source"  # index, index-stale, vector-store or cache


@router.post("/retrieval")
def retrieval(
    runtime: RuntimeDep, body: Annotated[Retrieval, Body()], response: Response
) -> dict[str, Any]:
    data, source = retrieve_with_source(runtime, request_from(runtime, body.given()))
    response.headers[SOURCE_HEADER] = source
    return ok(data)
