"""Drives the runtime in-process through its Python API, for the benchmarks.

``open_runtime`` + ``ragruntime.services`` + the ingestion ``Worker`` + ``retrieve``: the same
calls the HTTP routes and the worker process make, without a server in between. Used by
bench_retrieval_quality.py (ingest Cranfield, query every mode) and bench_query_latency.py
(prepare a dataset, insert synthetic chunks, time the retrieval function).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ragruntime.config import Settings
from ragruntime.ingest.chunking import ChunkingConfig, chunk_sections, count_tokens
from ragruntime.ingest.parsers import parse_document
from ragruntime.ingest.pipeline import chunk_id
from ragruntime.ingest.worker import Worker
from ragruntime.models import Chunk, Document
from ragruntime.runtime import Runtime, open_runtime
from ragruntime.services import datasets, documents
from ragruntime.store.queue import new_generation

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
MAX_CHUNKS_PER_QUERY = 16384
INDEX_BATCH = 256


def bench_settings(data_dir: Path, **overrides: object) -> Settings:
    """Embedded-mode settings in ``data_dir``; RAGFLOW_* variables of the caller do not leak in."""
    fields: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": "",
        "vector_uri": "",
        "cache_url": "",
        "api_key": "bench-key",
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(**fields)  # type: ignore[arg-type]


def open_bench_runtime(data_dir: Path, **overrides: object) -> Runtime:
    """A runtime over fresh embedded stores in ``data_dir``, model loaded."""
    return open_runtime(bench_settings(data_dir, **overrides))


@dataclass(frozen=True)
class IngestResult:
    """Documents after parsing, how many chunks they made, and the wall time it took."""

    documents: list[Document]
    chunk_count: int
    seconds: float


def ingest_files(
    runtime: Runtime, dataset_id: str, files: Sequence[tuple[str, bytes]]
) -> IngestResult:
    """Upload, queue and process every file with the runtime's worker; fail on any failure."""
    started = time.perf_counter()
    uploaded = documents.upload_documents(
        runtime, dataset_id, [documents.Upload(name, data) for name, data in files]
    )
    documents.parse_documents(runtime, dataset_id, [document.id for document in uploaded])
    worker = Worker(runtime)
    while (outcome := worker.run_once()) is not None:
        if outcome.status != "done":
            raise RuntimeError(f"ingestion task ended {outcome.status}: {outcome.error}")
    seconds = time.perf_counter() - started
    parsed, _total = runtime.metadata.list_documents(
        dataset_id, page=1, page_size=len(uploaded) + 1
    )
    not_done = [document.name for document in parsed if document.run != "DONE"]
    if not_done or len(parsed) != len(uploaded):
        raise RuntimeError(f"{len(not_done)} documents not DONE, e.g. {not_done[:3]}")
    return IngestResult(parsed, sum(document.chunk_count for document in parsed), seconds)


def index_files_batched(
    runtime: Runtime, dataset_id: str, files: Sequence[tuple[str, bytes]]
) -> IngestResult:
    """Upload, then parse, chunk, embed and index with the runtime's own functions, batched.

    The same parser (``parse_document``), chunker (``chunk_sections`` with the dataset's
    parser_config), embedder and ``MilvusVectorStore.insert`` as the worker's ``run_task``, and one
    fresh generation per document made active as a finished task makes it; only the embedding
    is batched across documents (``INDEX_BATCH`` texts per call) instead of one call per
    document, which makes indexing a 1,400-document collection several times faster on a small
    machine. The per-document worker path is what bench_ingestion.py measures.
    """
    started = time.perf_counter()
    uploaded = documents.upload_documents(
        runtime, dataset_id, [documents.Upload(name, data) for name, data in files]
    )
    pending: list[Chunk] = []
    for document, (name, data) in zip(uploaded, files, strict=True):
        config = ChunkingConfig.from_parser_config(document.parser_config)
        texts = chunk_sections(parse_document(name, data), config)
        generation = runtime.metadata.ensure_generation(dataset_id, document.id, new_generation())
        pending += [
            Chunk(
                id=chunk_id(document.id, generation, position),
                dataset_id=dataset_id,
                document_id=document.id,
                generation=generation,
                content=text,
                document_name=document.name,
                position=position,
                created_at=time.time(),
            )
            for position, text in enumerate(texts)
        ]
        runtime.metadata.adjust_chunk_count(
            dataset_id, document.id, len(texts), sum(count_tokens(text) for text in texts)
        )
    for start in range(0, len(pending), INDEX_BATCH):
        batch = pending[start : start + INDEX_BATCH]
        runtime.vectors.insert(
            dataset_id, batch, runtime.embedder.embed([chunk.content for chunk in batch])
        )
    return IngestResult(uploaded, len(pending), time.perf_counter() - started)


def create_dataset(runtime: Runtime, name: str) -> str:
    """A dataset with the runtime's default parser configuration; returns its id."""
    return datasets.create_dataset(runtime, {"name": name}).id


def searchable_chunks(runtime: Runtime, dataset_id: str) -> list[Chunk]:
    """Every chunk retrieval can currently see in ``dataset_id`` (at most 16,384)."""
    generations = runtime.metadata.searchable_generations([dataset_id], None).get(dataset_id, [])
    chunks, total = runtime.vectors.query_chunks(
        dataset_id,
        generations,
        document_id=None,
        chunk_id=None,
        offset=0,
        limit=MAX_CHUNKS_PER_QUERY,
    )
    if total != len(chunks):
        raise RuntimeError(f"dataset has {total} chunks, more than one query returns")
    return chunks
