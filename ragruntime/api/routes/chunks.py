"""/api/v1/datasets/{ds}/documents/{doc}/chunks: list, add, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from ragruntime.api.deps import RuntimeDep
from ragruntime.api.params import ChunkId, DatasetId, DocumentId, IdQuery, Page, PageSize, TextQuery
from ragruntime.api.requests import AddChunk, DeleteChunks, UpdateChunk
from ragruntime.api.schemas import chunk_json, document_json, ok
from ragruntime.errors import InvalidArgument
from ragruntime.services import chunks as service

router = APIRouter(prefix="/datasets/{dataset_id}/documents/{document_id}", tags=["chunks"])


@router.get("/chunks")
def list_chunks(
    dataset_id: DatasetId,
    document_id: DocumentId,
    runtime: RuntimeDep,
    keywords: TextQuery = None,
    page: Page = 1,
    page_size: PageSize = 1024,
    id: IdQuery = None,
) -> dict[str, Any]:
    document, chunks, total = service.list_chunks(
        runtime, dataset_id, document_id, keywords=keywords, chunk_id=id, page=page,
        page_size=page_size,
    )  # fmt: skip
    return ok(
        {"chunks": [chunk_json(c) for c in chunks], "doc": document_json(document), "total": total}
    )


@router.post("/chunks")
def add_chunk(
    dataset_id: DatasetId,
    document_id: DocumentId,
    runtime: RuntimeDep,
    body: Annotated[AddChunk, Body()],
) -> dict[str, Any]:
    if body.content is None:
        raise InvalidArgument("`content` is required")
    chunk = service.add_chunk(
        runtime, dataset_id, document_id, body.content, body.important_keywords or [],
        body.questions or [],
    )  # fmt: skip
    return ok({"chunk": chunk_json(chunk)})


@router.delete("/chunks")
def delete_chunks(
    dataset_id: DatasetId,
    document_id: DocumentId,
    runtime: RuntimeDep,
    body: Annotated[DeleteChunks, Body()] = DeleteChunks(),  # noqa: B008 - a constant
) -> dict[str, Any]:
    service.delete_chunks(runtime, dataset_id, document_id, body.chunk_ids)
    return ok()


@router.put("/chunks/{chunk_id}")
def update_chunk(
    dataset_id: DatasetId,
    document_id: DocumentId,
    chunk_id: ChunkId,
    runtime: RuntimeDep,
    body: Annotated[UpdateChunk, Body()],
) -> dict[str, Any]:
    service.update_chunk(
        runtime, dataset_id, document_id, chunk_id, body.model_dump(exclude_none=True)
    )
    return ok()
