"""RAGFlow's JSON shapes: envelope helpers and dataset/document/chunk serialisers.

Field names follow RAGFlow's HTTP API reference and what ragflow-sdk 0.22 reads (e.g. ``run``
as ``UNSTART/RUNNING/CANCEL/DONE/FAIL``, ``progress`` 0..1, -1 on failure).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from ragruntime.ingest.parsers import document_type
from ragruntime.models import Chunk, Dataset, Document

OWNER = "ragruntime"


def ok(data: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": 0}
    if data is not None:
        body["data"] = data
    body.update(extra)
    return body


def _date(ms: int | None) -> str | None:
    if ms is None:
        return None
    return format_datetime(datetime.fromtimestamp(ms / 1000, tz=UTC), usegmt=True)


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "avatar": dataset.avatar,
        "description": dataset.description,
        "embedding_model": dataset.embedding_model,
        "permission": dataset.permission,
        "chunk_method": dataset.chunk_method,
        "parser_config": dataset.parser_config,
        "pagerank": dataset.pagerank,
        "chunk_count": dataset.chunk_count,
        "document_count": dataset.document_count,
        "token_num": dataset.token_num,
        "language": "English",
        "status": "1",
        "similarity_threshold": 0.2,
        "vector_similarity_weight": 0.3,
        "tenant_id": OWNER,
        "created_by": OWNER,
        "create_time": dataset.created_at_ms,
        "create_date": _date(dataset.created_at_ms),
        "update_time": dataset.updated_at_ms,
        "update_date": _date(dataset.updated_at_ms),
    }


def document_json(document: Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "name": document.name,
        "location": document.name,
        "dataset_id": document.dataset_id,
        "knowledgebase_id": document.dataset_id,
        "chunk_method": document.chunk_method,
        "parser_config": document.parser_config,
        "run": document.run.value,
        "progress": document.progress,
        "progress_msg": document.progress_msg,
        "chunk_count": document.chunk_count,
        "token_count": document.token_count,
        "size": document.size,
        "type": document_type(document.name),
        "suffix": document.suffix,
        "source_type": "local",
        "status": "1",
        "thumbnail": None,
        "meta_fields": document.meta_fields,
        "created_by": OWNER,
        "process_begin_at": _date(document.process_begin_at_ms),
        "process_duration": document.process_duration,
        "create_time": document.created_at_ms,
        "create_date": _date(document.created_at_ms),
        "update_time": document.updated_at_ms,
        "update_date": _date(document.updated_at_ms),
    }


def chunk_json(chunk: Chunk) -> dict[str, Any]:
    created = datetime.fromtimestamp(chunk.created_at, tz=UTC)
    return {
        "id": chunk.id,
        "content": chunk.content,
        "document_id": chunk.document_id,
        "docnm_kwd": chunk.document_name,
        "document_name": chunk.document_name,
        "dataset_id": chunk.dataset_id,
        "important_keywords": chunk.important_keywords,
        "questions": chunk.questions,
        "available": chunk.available,
        "image_id": "",
        "positions": [],
        "create_time": created.strftime("%Y-%m-%d %H:%M:%S"),
        "create_timestamp": chunk.created_at,
    }
