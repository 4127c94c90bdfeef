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
from ragruntime.ingest.worker import Worker
from ragruntime.models import Chunk, Document
from ragruntime.runtime import Runtime, open_runtime
from ragruntime.services import datasets, documents

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
MAX_CHUNKS_PER_QUERY = 16384


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
        keywords=None,
        offset=0,
        limit=MAX_CHUNKS_PER_QUERY,
    )
    if total != len(chunks):
        raise RuntimeError(f"dataset has {total} chunks, more than one query returns")
    return chunks
