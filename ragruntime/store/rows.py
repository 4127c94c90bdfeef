"""Row -> model converters for the metadata tables (used by ``ragruntime.store.metadata``)."""

from __future__ import annotations

from typing import Any

from ragruntime.models import Dataset, Document, RunStatus


def _lenient_int(value: Any) -> int:
    """Values written before the API validated them (e.g. pagerank "abc") read as 0."""
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _object(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def dataset_from_row(row: Any) -> Dataset:
    return Dataset(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        avatar=row["avatar"],
        embedding_model=row["embedding_model"],
        permission=row["permission"],
        chunk_method=row["chunk_method"],
        parser_config=_object(row["parser_config"]),
        created_at_ms=int(row["created_at_ms"]),
        updated_at_ms=int(row["updated_at_ms"]),
        version=int(row["version"]),
        pagerank=_lenient_int(row["pagerank"]),
        document_count=int(row["document_count"] or 0),
        chunk_count=int(row["chunk_count"] or 0),
        token_num=int(row["token_num"] or 0),
    )


def document_from_row(row: Any) -> Document:
    return Document(
        id=row["id"],
        dataset_id=row["dataset_id"],
        name=row["name"],
        size=int(row["size"]),
        suffix=row["suffix"],
        file_key=row["file_key"],
        run=RunStatus(row["run"]),
        progress=float(row["progress"]),
        progress_msg=row["progress_msg"] or "",
        chunk_count=int(row["chunk_count"]),
        token_count=int(row["token_count"]),
        active_generation=row["active_generation"],
        process_begin_at_ms=row["process_begin_at_ms"],
        process_duration=float(row["process_duration"] or 0.0),
        created_at_ms=int(row["created_at_ms"]),
        updated_at_ms=int(row["updated_at_ms"]),
        chunk_method=row["chunk_method"],
        parser_config=_object(row["parser_config"]),
        meta_fields=_object(row["meta_fields"]),
    )
