"""Document use cases: upload (store bytes, add rows), list, download, update, delete, parse
(enqueue) and stop parsing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragruntime.errors import DataError, InvalidArgument, NotFound
from ragruntime.ingest.parsers import suffix_of
from ragruntime.models import RUN_STATUS_CODES, Document, NewDocument
from ragruntime.runtime import Runtime
from ragruntime.services.validation import FILE_NAME_MAX_BYTES, DocumentFields, validate
from ragruntime.store.files import Content
from ragruntime.store.metadata import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its name and its bytes, or a binary file to copy them from."""

    filename: str
    data: Content


def upload_documents(
    runtime: Runtime, dataset_id: str, uploads: Sequence[Upload]
) -> list[Document]:
    dataset = runtime.metadata.get_dataset(dataset_id)
    if not uploads:
        raise InvalidArgument("No file part!")
    new: list[NewDocument] = []
    names = [_file_name(upload.filename) for upload in uploads]
    try:
        for name, upload in zip(names, uploads, strict=True):
            document_id = new_id()
            key = f"{dataset.id}/{document_id}"
            size = runtime.files.save(key, upload.data)
            new.append(NewDocument(document_id, name, size, suffix_of(name), key))
        return runtime.metadata.add_documents(dataset, new)
    except BaseException:
        for stored in new:  # no orphan files when a later file or the rows fail
            runtime.files.delete(stored.file_key)
        raise


def _file_name(filename: str | None) -> str:
    """The base name of an uploaded file, checked like every stored name."""
    name = (filename or "").strip().replace("\\", "/").split("/")[-1]
    if not name:
        raise InvalidArgument("No file selected!")
    if len(name.encode("utf-8", "surrogatepass")) > FILE_NAME_MAX_BYTES:
        raise InvalidArgument("File name must be 255 bytes or less.")
    checked: DocumentFields = validate(DocumentFields, {"name": name})
    return checked.name or name


def list_documents(
    runtime: Runtime,
    dataset_id: str,
    *,
    run: Sequence[str],
    suffix: Sequence[str],
    **filters: Any,
) -> tuple[list[Document], int]:
    """A page of a dataset's documents and the total; ``run`` takes codes ("1") or names.

    ``filters``: page, page_size, orderby, desc, id, name, keywords, create_time_from/_to (see
    ``SqlMetadataStore.list_documents``). A document asked for by id must exist.
    """
    runtime.metadata.get_dataset(dataset_id)
    runs = [RUN_STATUS_CODES.get(r, r.upper()) for r in run]
    documents, total = runtime.metadata.list_documents(
        dataset_id, run=runs, suffix=list(suffix), **filters
    )
    if filters.get("id") and not documents:
        raise NotFound(f"You don't own the document {filters['id']}.")
    return documents, total


def download_document(
    runtime: Runtime, dataset_id: str, document_id: str
) -> tuple[Document, bytes]:
    """The document and its stored bytes."""
    runtime.metadata.get_dataset(dataset_id)
    document = runtime.metadata.get_document(dataset_id, document_id)
    return document, runtime.files.load(document.file_key)


def update_document(
    runtime: Runtime, dataset_id: str, document_id: str, fields: dict[str, Any]
) -> Document:
    """Rename, change the chunk method, parser settings or metadata of a document."""
    checked: DocumentFields = validate(DocumentFields, fields)
    values = checked.model_dump(exclude_unset=True, exclude={"parser_config"})
    if checked.parser_config is not None:
        values["parser_config"] = checked.parser_config.stored()
    runtime.metadata.get_dataset(dataset_id)
    return runtime.metadata.update_document(dataset_id, document_id, values)


def delete_documents(runtime: Runtime, dataset_id: str, ids: Sequence[str] | None) -> int:
    runtime.metadata.get_dataset(dataset_id)
    removed = runtime.metadata.delete_documents(dataset_id, ids)
    for document in removed:
        runtime.vectors.delete_document(dataset_id, document.id)
        runtime.files.delete(document.file_key)
    return len(removed)


def parse_documents(runtime: Runtime, dataset_id: str, document_ids: Sequence[str] | None) -> None:
    if not document_ids:
        raise InvalidArgument("`document_ids` is required")
    runtime.metadata.get_dataset(dataset_id)
    for document_id in document_ids:
        runtime.metadata.get_document(dataset_id, document_id)
    runtime.queue.enqueue(dataset_id, list(dict.fromkeys(document_ids)))


def stop_parsing(runtime: Runtime, dataset_id: str, document_ids: Sequence[str] | None) -> None:
    if not document_ids:
        raise InvalidArgument("`document_ids` is required")
    runtime.metadata.get_dataset(dataset_id)
    for document_id in document_ids:
        runtime.metadata.get_document(dataset_id, document_id)
    if runtime.queue.cancel(dataset_id, list(document_ids)) == 0:
        raise DataError("Can't stop parsing document with progress at 0 or 1")
