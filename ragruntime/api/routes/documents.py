"""/api/v1/datasets/{id}/documents (upload, list, update, download, delete) and parse/stop."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ragruntime.api.deps import RuntimeDep
from ragruntime.api.params import (
    DatasetId,
    DocumentId,
    IdQuery,
    OrderBy,
    Page,
    PageSize,
    TextQuery,
    TimeMs,
    short_text,
)
from ragruntime.api.requests import DeleteDocuments, DocumentIds, UpdateDocument
from ragruntime.api.schemas import document_json, ok
from ragruntime.api.uploads import OPENAPI_MULTIPART, received_files
from ragruntime.errors import InvalidArgument
from ragruntime.services import datasets
from ragruntime.services import documents as service

router = APIRouter(prefix="/datasets/{dataset_id}", tags=["documents"])

RunFilter = short_text(16)
SuffixFilter = short_text(16)


@router.post("/documents", openapi_extra=OPENAPI_MULTIPART)
async def upload_documents(
    dataset_id: DatasetId, request: Request, runtime: RuntimeDep
) -> dict[str, Any]:
    """Multipart ``file`` parts, streamed to disk (see ``ragruntime.api.uploads``)."""
    await run_in_threadpool(datasets.get_dataset, runtime, dataset_id)  # before reading the body
    async with received_files(request, runtime.settings.max_upload_bytes) as uploads:
        if not uploads:
            raise InvalidArgument("No file part!")
        documents = await run_in_threadpool(service.upload_documents, runtime, dataset_id, uploads)
    return ok([document_json(d) for d in documents])


@router.get("/documents")
def list_documents(
    dataset_id: DatasetId,
    runtime: RuntimeDep,
    page: Page = 1,
    page_size: PageSize = 30,
    orderby: OrderBy = "create_time",
    desc: bool = True,
    id: IdQuery = None,
    name: TextQuery = None,
    keywords: TextQuery = None,
    create_time_from: TimeMs = 0,
    create_time_to: TimeMs = 0,
    run: Annotated[list[RunFilter] | None, Query()] = None,
    suffix: Annotated[list[SuffixFilter] | None, Query()] = None,
) -> dict[str, Any]:
    documents, total = service.list_documents(
        runtime,
        dataset_id,
        run=run or [],
        suffix=suffix or [],
        page=page,
        page_size=page_size,
        orderby=orderby,
        desc=desc,
        id=id,
        name=name,
        keywords=keywords,
        create_time_from=create_time_from,
        create_time_to=create_time_to,
    )
    return ok({"docs": [document_json(d) for d in documents], "total": total})


@router.put("/documents/{document_id}")
def update_document(
    dataset_id: DatasetId,
    document_id: DocumentId,
    runtime: RuntimeDep,
    body: Annotated[UpdateDocument, Body()],
) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True, exclude={"parser_config"})
    if body.parser_config is not None:
        fields["parser_config"] = body.parser_config.stored()
    return ok(document_json(service.update_document(runtime, dataset_id, document_id, fields)))


@router.get("/documents/{document_id}")
def download_document(
    dataset_id: DatasetId, document_id: DocumentId, runtime: RuntimeDep
) -> Response:
    document, data = service.download_document(runtime, dataset_id, document_id)
    disposition = f"attachment; filename*=UTF-8''{quote(document.name)}"
    return Response(
        data, media_type="application/octet-stream", headers={"Content-Disposition": disposition}
    )


@router.delete("/documents")
def delete_documents(
    dataset_id: DatasetId,
    runtime: RuntimeDep,
    body: Annotated[DeleteDocuments, Body()] = DeleteDocuments(),  # noqa: B008 - a constant
) -> dict[str, Any]:
    service.delete_documents(runtime, dataset_id, body.ids)
    return ok()


@router.post("/chunks")
def parse_documents(
    dataset_id: DatasetId, runtime: RuntimeDep, body: Annotated[DocumentIds, Body()]
) -> dict[str, Any]:
    service.parse_documents(runtime, dataset_id, body.document_ids)
    return ok()


@router.delete("/chunks")
def stop_parsing(
    dataset_id: DatasetId, runtime: RuntimeDep, body: Annotated[DocumentIds, Body()]
) -> dict[str, Any]:
    service.stop_parsing(runtime, dataset_id, body.document_ids)
    return ok()
