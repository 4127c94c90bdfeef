"""Chunk use cases: list a document's searchable chunks, add (embedded now), update, delete.

Manually added chunks join the document's active generation, so they are searchable at once
and are replaced, like every other chunk, when the document is parsed again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ragruntime.errors import InvalidArgument, NotFound
from ragruntime.ingest.chunking import count_tokens
from ragruntime.models import Chunk, Document
from ragruntime.runtime import Runtime
from ragruntime.services.validation import ChunkFields, validate
from ragruntime.store.queue import new_generation

MAX_LISTED_CHUNKS = 16384  # what one query returns from the vector store


def _or(value: list[str] | None, default: list[str]) -> list[str]:
    return list(default) if value is None else list(value)


def _active_chunks(
    runtime: Runtime,
    document: Document,
    *,
    chunk_id: str | None = None,
    limit: int = MAX_LISTED_CHUNKS,
) -> list[Chunk]:
    """The document's searchable chunks (its active generation's) in position order, from the
    first: all of them up to ``limit``, or only ``chunk_id``."""
    if document.active_generation is None:
        return []
    chunks, _ = runtime.vectors.query_chunks(
        document.dataset_id,
        [document.active_generation],
        document_id=document.id,
        chunk_id=chunk_id,
        offset=0,
        limit=limit,
    )
    return chunks


def list_chunks(
    runtime: Runtime,
    dataset_id: str,
    document_id: str,
    *,
    keywords: str | None,
    chunk_id: str | None,
    page: int,
    page_size: int,
) -> tuple[Document, list[Chunk], int]:
    runtime.metadata.get_dataset(dataset_id)
    document = runtime.metadata.get_document(dataset_id, document_id)
    if document.active_generation is None:
        return document, [], 0
    offset = (max(page, 1) - 1) * page_size
    if not keywords:
        chunks, total = runtime.vectors.query_chunks(
            dataset_id,
            [document.active_generation],
            document_id=document_id,
            chunk_id=chunk_id or None,
            offset=offset,
            limit=page_size,
        )
        return document, chunks, total
    # The keyword filter is a plain case-insensitive substring match done here, so that no
    # character of user input ('%', quotes, newlines) ever reaches a store's query language.
    every = _active_chunks(runtime, document, chunk_id=chunk_id or None)
    needle = keywords.casefold()
    matching = [c for c in every if needle in c.content.casefold()]
    return document, matching[offset : offset + page_size], len(matching)


def add_chunk(
    runtime: Runtime,
    dataset_id: str,
    document_id: str,
    content: str,
    important_keywords: list[str],
    questions: list[str],
) -> Chunk:
    checked: ChunkFields = validate(
        ChunkFields,
        {"content": content, "important_keywords": important_keywords, "questions": questions},
    )
    if checked.content is None:
        raise InvalidArgument("`content` is required")
    runtime.metadata.get_dataset(dataset_id)
    document = runtime.metadata.get_document(dataset_id, document_id)
    generation = runtime.metadata.ensure_generation(dataset_id, document_id, new_generation())
    chunk = Chunk(
        id=uuid.uuid4().hex,
        dataset_id=dataset_id,
        document_id=document_id,
        generation=generation,
        content=content,
        document_name=document.name,
        important_keywords=list(checked.important_keywords or []),
        questions=list(checked.questions or []),
        position=10**9 + int(time.time()),
        created_at=time.time(),
    )
    embedded_text = "\n".join([content, *chunk.questions, *chunk.important_keywords])
    vector = runtime.embedder.embed([embedded_text])[0]
    runtime.vectors.insert(dataset_id, [chunk], [vector])
    runtime.metadata.adjust_chunk_count(dataset_id, document_id, 1, count_tokens(content))
    return chunk


def delete_chunks(
    runtime: Runtime, dataset_id: str, document_id: str, chunk_ids: Sequence[str] | None
) -> int:
    runtime.metadata.get_dataset(dataset_id)
    document = runtime.metadata.get_document(dataset_id, document_id)
    if document.active_generation is None:
        if chunk_ids:
            raise NotFound(f"rm_chunk deleted chunks 0, expect {len(chunk_ids)}")
        return 0
    by_id = {c.id: c for c in _active_chunks(runtime, document)}
    targets = list(by_id) if chunk_ids is None else list(dict.fromkeys(chunk_ids))
    missing = [c for c in targets if c not in by_id]
    if missing:
        raise NotFound(
            f"rm_chunk deleted chunks {len(targets) - len(missing)}, expect {len(targets)}"
        )
    runtime.vectors.delete_ids(dataset_id, targets)
    tokens = sum(count_tokens(by_id[c].content) for c in targets)
    runtime.metadata.adjust_chunk_count(dataset_id, document_id, -len(targets), -tokens)
    return len(targets)


def update_chunk(
    runtime: Runtime, dataset_id: str, document_id: str, chunk_id: str, fields: dict[str, Any]
) -> Chunk:
    """Change content, keywords, questions or availability; re-embedded when the text changes."""
    checked: ChunkFields = validate(ChunkFields, fields)
    runtime.metadata.get_dataset(dataset_id)
    document = runtime.metadata.get_document(dataset_id, document_id)
    found = _active_chunks(runtime, document, chunk_id=chunk_id, limit=1)
    if not found:
        raise NotFound(f"Can't find this chunk {chunk_id}")
    old = found[0]
    new = replace(
        old,
        content=old.content if checked.content is None else checked.content,
        important_keywords=_or(checked.important_keywords, old.important_keywords),
        questions=_or(checked.questions, old.questions),
        available=old.available if checked.available is None else checked.available,
    )
    text = "\n".join([new.content, *new.questions, *new.important_keywords])
    runtime.vectors.insert(dataset_id, [new], [runtime.embedder.embed([text])[0]], replace=True)
    token_delta = count_tokens(new.content) - count_tokens(old.content)
    runtime.metadata.adjust_chunk_count(dataset_id, document_id, 0, token_delta)
    return new
