"""Ingestion throughput end to end against the model's bare ``encode`` on the same texts.

Run: ``python -m pytest tests/bench/bench_ingestion.py -s`` (or ``make bench``).

The real app (``ragruntime serve --role all``: API and ingestion worker in one process, uvicorn
on 127.0.0.1) receives ``DOCUMENTS`` Cranfield abstracts as ``.txt`` uploads; the clock runs
from the first upload request until every document reports ``run == DONE`` (upload -> parse ->
chunk -> embed -> index in Milvus Lite -> visible). The chunk texts the runtime produced are
then read back over HTTP, the server is stopped, and the same model (``Embedder.load``, the
runtime's loader) encodes exactly those texts with ``SentenceTransformer.encode`` at the same
batch size, twice: in batches of ``BATCH_SIZE`` (the model's best case) and one call per
document (how the pipeline batches: one task = one document). The ratio of end-to-end to bare
throughput is the pipeline's overhead.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from pathlib import Path

import pytest

from ragruntime.ingest.embedding import Embedder
from tests.bench import cranfield, harness
from tests.fixtures.services import start_runtime

DOCUMENTS = 300  # a seeded sample of the 1,400 abstracts keeps the run to a few minutes
SAMPLE_SEED = 7
UPLOAD_BATCH = 100
BATCH_SIZE = 64  # RAGFLOW_EMBEDDING_BATCH_SIZE default, set explicitly on both sides
MODEL = "all-MiniLM-L6-v2"
API_KEY = "bench-key"
TIMEOUT_S = 1800  # the suite default (600 s) is too short on a shared 2-core machine


def _encode_seconds(embedder: Embedder, batches: list[list[str]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        embedder.embed(batch)
    return time.perf_counter() - started


@pytest.mark.timeout(TIMEOUT_S)
def test_ingestion_throughput_against_bare_encode(tmp_path: Path) -> None:
    corpus = cranfield.load_documents(cranfield.cranfield_dir())
    sample = random.Random(SAMPLE_SEED).sample(corpus, DOCUMENTS)
    files = [(f"cran-{int(doc.doc_id):04d}.txt", doc.text.encode()) for doc in sample]
    server = start_runtime(
        tmp_path / "runtime",
        role="all",
        api_key=API_KEY,
        extra_env={
            "RAGFLOW_LOG_LEVEL": "WARNING",
            "RAGFLOW_EMBEDDING_MODEL": MODEL,
            "RAGFLOW_EMBEDDING_BATCH_SIZE": str(BATCH_SIZE),
        },
    )
    client = harness.RuntimeClient(server.base_url, API_KEY)
    try:
        dataset_id = client.create_dataset("ingestion-bench")
        started = time.perf_counter()
        uploaded: list[dict] = []
        for start in range(0, len(files), UPLOAD_BATCH):
            uploaded += client.upload_documents(dataset_id, files[start : start + UPLOAD_BATCH])
        client.start_parsing(dataset_id, [document["id"] for document in uploaded])
        parsed = client.wait_until_parsed(dataset_id, len(files), poll_s=0.2)
        end_to_end_s = time.perf_counter() - started
        chunks_by_document: dict[str, list[str]] = defaultdict(list)
        for document in parsed:
            for chunk in client.list_chunks(dataset_id, document["id"]):
                chunks_by_document[document["id"]].append(chunk["content"])
    finally:
        client.close()
        server.stop()

    texts = [text for document_texts in chunks_by_document.values() for text in document_texts]
    chunk_count = sum(document["chunk_count"] for document in parsed)
    assert len(texts) == chunk_count > 0
    embedder = Embedder.load(MODEL, "cpu", BATCH_SIZE)
    embedder.embed(texts[:BATCH_SIZE])  # warm-up, as the runtime's readiness check does
    batched_s = _encode_seconds(
        embedder, [texts[i : i + BATCH_SIZE] for i in range(0, len(texts), BATCH_SIZE)]
    )
    per_document_s = _encode_seconds(embedder, list(chunks_by_document.values()))

    end_to_end_rate = chunk_count / end_to_end_s
    batched_rate = len(texts) / batched_s
    harness.print_report(
        "Ingestion throughput",
        {
            "documents": f"{DOCUMENTS} Cranfield abstracts (seeded sample, seed {SAMPLE_SEED}), "
            f"{sum(len(content) for _name, content in files)} bytes, {chunk_count} chunks",
            "pipeline": "HTTP upload (batches of 100) -> parse -> chunk (default parser_config) "
            "-> embed -> Milvus Lite -> DONE; one worker thread (RAGFLOW_WORKER_THREADS=1)",
            "model": f"{MODEL} on CPU, batch size {BATCH_SIZE} on both sides",
        },
        ["measurement", "seconds", "chunks/s", "vs bare encode"],
        [
            ["end to end through the runtime", end_to_end_s, end_to_end_rate,
             end_to_end_rate / batched_rate],
            ["bare encode, batches of 64 (baseline)", batched_s, batched_rate, 1.0],
            ["bare encode, one call per document", per_document_s, len(texts) / per_document_s,
             (len(texts) / per_document_s) / batched_rate],
        ],
    )  # fmt: skip
    assert end_to_end_rate > 0
