"""/api/v1/datasets/{ds}/documents/{doc}/chunks: list, add, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ragruntime.api.deps import JsonBody, RuntimeDep
from ragruntime.api.schemas import chunk_json, document_json, ok
from ragruntime.errors import InvalidArgument
from ragruntime.services import chunks as service

router = APIRouter(prefix="/datasets/{dataset_id}/documents/{document_id}", tags=["chunks"])


@router.get("/chunks")
def list_chunks(
    dataset_id: str,
    document_id: str,
    runtime: RuntimeDep,
    keywords: str | None = None,
    page: int = 1,
    page_size: int = 1024,
    id: str | None = None,
) -> dict[str, Any]:
    if page < 1 or page_size < 1:
        raise InvalidArgument("`page` and `page_size` must be positive")
    document, chunks, total = service.list_chunks(
        runtime, dataset_id, document_id, keywords=keywords, chunk_id=id, page=page,
        page_size=page_size,
    )  # fmt: skip
    return ok(
        {"chunks": [chunk_json(c) for c in chunks], "doc": document_json(document), "total": total}
    )


@router.post("/chunks")
def add_chunk(
    dataset_id: str, document_id: str, runtime: RuntimeDep, body: JsonBody
) -> dict[str, Any]:
    keywords = body.get("important_keywords") or []
    questions = body.get("questions") or []
    if not isinstance(keywords, list) or not isinstance(questions, list):
        raise InvalidArgument("`important_keywords` and `questions` must be lists")
    content = body.get("content")
    if not isinstance(content, str):
        raise InvalidArgument("`content` is required")
    chunk = service.add_chunk(
        runtime, dataset_id, document_id, content, [str(k) for k in keywords],
        [str(q) for q in questions],
    )  # fmt: skip
    return ok({"chunk": chunk_json(chunk)})


@router.delete("/chunks")
def delete_chunks(
    dataset_id: str, document_id: str, runtime: RuntimeDep, body: JsonBody
) -> dict[str, Any]:
    chunk_ids = body.get("chunk_ids")
    if chunk_ids is not None and not isinstance(chunk_ids, list):
        raise InvalidArgument("`chunk_ids` must be a list")
    service.delete_chunks(runtime, dataset_id, document_id, chunk_ids)
    return ok()


@router.put("/chunks/{chunk_id}")
def update_chunk(
    dataset_id: str, document_id: str, chunk_id: str, runtime: RuntimeDep, body: JsonBody
) -> dict[str, Any]:
    for key in ("important_keywords", "questions"):
        if key in body and not isinstance(body[key], list):
            raise InvalidArgument(f"`{key}` should be a list")
    service.update_chunk(runtime, dataset_id, document_id, chunk_id, body)
    return ok()
