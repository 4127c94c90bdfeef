"""Document use cases: upload (store bytes, add rows), list, delete, parse (enqueue), stop."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ragruntime.errors import DataError, InvalidArgument
from ragruntime.ingest.parsers import suffix_of
from ragruntime.models import Document, NewDocument
from ragruntime.runtime import Runtime
from ragruntime.store.metadata import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def upload_documents(
    runtime: Runtime, dataset_id: str, uploads: Sequence[Upload]
) -> list[Document]:
    dataset = runtime.metadata.get_dataset(dataset_id)
    if not uploads:
        raise InvalidArgument("No file part!")
    new: list[NewDocument] = []
    for upload in uploads:
        name = (upload.filename or "").strip().replace("\\", "/").split("/")[-1]
        if not name:
            raise InvalidArgument("No file selected!")
        if len(name.encode()) > 255:
            raise InvalidArgument("File name must be 255 bytes or less.")
        document_id = new_id()
        key = f"{dataset.id}/{document_id}"
        runtime.files.save(key, upload.data)
        new.append(NewDocument(document_id, name, len(upload.data), suffix_of(name), key))
    return runtime.metadata.add_documents(dataset, new)


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
