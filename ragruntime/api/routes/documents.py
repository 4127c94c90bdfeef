"""/api/v1/datasets/{id}/documents (upload, list, update, download, delete) and parse/stop."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ragruntime.api.deps import JsonBody, RuntimeDep
from ragruntime.api.schemas import document_json, ok
from ragruntime.errors import InvalidArgument, NotFound, PayloadTooLarge
from ragruntime.models import RUN_STATUS_CODES
from ragruntime.services import documents as service

router = APIRouter(prefix="/datasets/{dataset_id}", tags=["documents"])


@router.post("/documents")
async def upload_documents(dataset_id: str, request: Request, runtime: RuntimeDep) -> Any:
    limit = runtime.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Upload of {declared} bytes exceeds the limit of {limit} bytes")
    await run_in_threadpool(runtime.metadata.get_dataset, dataset_id)
    form = await request.form(max_files=1000)
    uploads: list[service.Upload] = []
    total = 0
    try:
        for value in form.getlist("file"):
            if not isinstance(value, UploadFile):
                continue
            data = await value.read()
            total += len(data)
            if total > limit:
                raise PayloadTooLarge(f"Upload exceeds the limit of {limit} bytes")
            uploads.append(service.Upload(value.filename or "", data))
    finally:
        await form.close()  # removes the spooled temporary files
    if not uploads:
        raise InvalidArgument("No file part!")
    documents = await run_in_threadpool(service.upload_documents, runtime, dataset_id, uploads)
    return ok([document_json(d) for d in documents])


@router.get("/documents")
def list_documents(
    dataset_id: str,
    request: Request,
    runtime: RuntimeDep,
    page: int = 1,
    page_size: int = 30,
    orderby: str = "create_time",
    desc: str = "true",
    id: str | None = None,
    name: str | None = None,
    keywords: str | None = None,
    create_time_from: int = 0,
    create_time_to: int = 0,
) -> dict[str, Any]:
    runtime.metadata.get_dataset(dataset_id)
    runs = [RUN_STATUS_CODES.get(r, r.upper()) for r in request.query_params.getlist("run")]
    documents, total = runtime.metadata.list_documents(
        dataset_id,
        page=page,
        page_size=page_size,
        orderby=orderby,
        desc=desc.lower() != "false",
        id=id,
        name=name,
        keywords=keywords,
        run=runs,
        suffix=request.query_params.getlist("suffix"),
        create_time_from=create_time_from,
        create_time_to=create_time_to,
    )
    if id and not documents:
        raise NotFound(f"You don't own the document {id}.")
    return ok({"docs": [document_json(d) for d in documents], "total": total})


@router.put("/documents/{document_id}")
def update_document(
    dataset_id: str, document_id: str, runtime: RuntimeDep, body: JsonBody
) -> dict[str, Any]:
    runtime.metadata.get_dataset(dataset_id)
    if "meta_fields" in body and not isinstance(body["meta_fields"], dict):
        raise InvalidArgument("meta_fields must be a dictionary")
    return ok(document_json(runtime.metadata.update_document(dataset_id, document_id, body)))


@router.get("/documents/{document_id}")
def download_document(dataset_id: str, document_id: str, runtime: RuntimeDep) -> Response:
    runtime.metadata.get_dataset(dataset_id)
    document = runtime.metadata.get_document(dataset_id, document_id)
    data = runtime.files.load(document.file_key)
    disposition = f"attachment; filename*=UTF-8''{quote(document.name)}"
    return Response(
        data, media_type="application/octet-stream", headers={"Content-Disposition": disposition}
    )


@router.delete("/documents")
def delete_documents(dataset_id: str, runtime: RuntimeDep, body: JsonBody) -> dict[str, Any]:
    ids = body.get("ids")
    if ids is not None and not isinstance(ids, list):
        raise InvalidArgument("`ids` must be a list")
    service.delete_documents(runtime, dataset_id, ids)
    return ok()


@router.post("/chunks")
def parse_documents(dataset_id: str, runtime: RuntimeDep, body: JsonBody) -> dict[str, Any]:
    service.parse_documents(runtime, dataset_id, body.get("document_ids"))
    return ok()


@router.delete("/chunks")
def stop_parsing(dataset_id: str, runtime: RuntimeDep, body: JsonBody) -> dict[str, Any]:
    service.stop_parsing(runtime, dataset_id, body.get("document_ids"))
    return ok()
