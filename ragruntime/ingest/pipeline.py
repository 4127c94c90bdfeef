"""One ingestion task: read the file, parse, chunk, embed, write chunks, flip visibility.

Chunks are written to Milvus under the task's fresh ``generation``; nothing is searchable until
``TaskQueue.complete`` flips the document's active generation in one transaction, so a document
is searchable whole or not at all, and a retried task (new generation) never doubles chunks.
``checkpoint`` is called between steps: it raises ``TaskLost`` when the lease is gone
(cancelled, taken over) and ``ShutdownRequested`` when the worker must stop. Called by
``ragruntime.ingest.worker``; never imports FastAPI.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ragruntime.errors import NotFound, ParseError
from ragruntime.ingest.chunking import count_tokens
from ragruntime.ingest.sandbox import budget_of, parse_and_chunk
from ragruntime.models import Chunk, Task
from ragruntime.runtime import Runtime

log = logging.getLogger(__name__)

Checkpoint = Callable[[float, str], None]


@dataclass(frozen=True)
class Outcome:
    status: str  # "done" | "failed" | "lost"
    chunk_count: int = 0
    error: str = ""


def chunk_id(document_id: str, generation: int, position: int) -> str:
    """Deterministic per (document, generation, position): a replayed insert overwrites."""
    return uuid.uuid5(uuid.NAMESPACE_OID, f"{document_id}:{generation}:{position}").hex


def build_chunks(task: Task, document_name: str, texts: list[str]) -> list[Chunk]:
    now = time.time()
    return [
        Chunk(
            id=chunk_id(task.document_id, task.generation, position),
            dataset_id=task.dataset_id,
            document_id=task.document_id,
            generation=task.generation,
            content=text,
            document_name=document_name,
            position=position,
            created_at=now,
        )
        for position, text in enumerate(texts)
    ]


def run_task(runtime: Runtime, task: Task, worker_id: str, checkpoint: Checkpoint) -> Outcome:
    """Process ``task``; permanent problems mark the document FAIL, the rest propagate."""
    try:
        document = runtime.metadata.get_document(task.dataset_id, task.document_id)
        data = runtime.files.load(document.file_key)
    except NotFound as exc:
        runtime.queue.fail(task, worker_id, exc.message)
        return Outcome("failed", error=exc.message)
    checkpoint(0.05, "Start to parse.")
    try:
        texts = parse_and_chunk(
            document.name,
            data,
            document.parser_config,
            budget_of(runtime.settings),
            lambda: checkpoint(0.05, "Parsing..."),
        )
    except ParseError as exc:
        runtime.queue.fail(task, worker_id, str(exc))
        return Outcome("failed", error=str(exc))
    checkpoint(0.2, f"Finish parsing: {len(texts)} chunks.")
    chunks = build_chunks(task, document.name, texts)
    runtime.vectors.ensure_collection(task.dataset_id)
    batch = max(1, runtime.embedder.batch_size)
    try:
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            vectors = runtime.embedder.embed([c.content for c in part])
            runtime.vectors.insert(task.dataset_id, part, vectors)
            runtime.metrics.chunks_embedded.inc(len(part))
            done = start + len(part)
            checkpoint(0.2 + 0.75 * done / len(chunks), f"Embedding: {done}/{len(chunks)} chunks.")
        tokens = sum(count_tokens(t) for t in texts)
        message = f"Done: {len(chunks)} chunks, {tokens} tokens."
        completion = runtime.queue.complete(task, worker_id, len(chunks), tokens, message)
    except BaseException:
        _discard(runtime, task, task.generation)
        raise
    if completion is None:
        _discard(runtime, task, task.generation)
        return Outcome("lost")
    if completion.previous_generation is not None:
        _discard(runtime, task, completion.previous_generation)
    return Outcome("done", chunk_count=len(chunks))


def _discard(runtime: Runtime, task: Task, generation: int) -> None:
    """Best-effort removal of invisible chunks (a crash leaves them invisible anyway)."""
    try:
        runtime.vectors.delete_document(task.dataset_id, task.document_id, generation)
    except Exception:
        log.warning("could not remove chunks of generation", extra={"document": task.document_id})
