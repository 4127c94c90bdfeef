"""Query latency at 10k and 100k chunks: HTTP end to end, the retrieval parts, numpy baseline.

Run: ``python -m pytest tests/bench/bench_query_latency.py -s`` (or ``make bench``).

Per size, a dataset gets synthetic chunks (tests/bench/synthetic.py: recombined Cranfield
sentences, random unit 384-d vectors) written through the runtime's stores. Then, with
distinct Cranfield questions (so the result cache never answers):

1. in-process, the plain-Python API: ``retrieve()`` (what the route calls: query embedding,
   Milvus dense + BM25 candidates, fusion), the query embedding alone, and the Milvus dense
   search alone with a precomputed query vector; against brute-force numpy cosine over the same
   vectors in memory (the baseline);
2. over HTTP: the real app (``ragruntime serve --role api``, uvicorn on 127.0.0.1, a separate
   process) answering ``POST /api/v1/retrieval`` with a client's default request.

Requests are sequential (one client); p50/p95 over ``QUERIES[size]`` questions after
``WARMUP``. Milvus Lite 3.x is a pure-Python engine whose searches take seconds at 100k chunks on
a shared 2-core machine, so the 100k rows use few queries (their p95 is close to the maximum).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ragruntime.retrieval.search import RetrievalRequest, retrieve
from ragruntime.runtime import Runtime
from tests.bench import baselines, cranfield, harness, runtime_driver, synthetic
from tests.fixtures.services import start_milvus_lite_server, start_runtime, stop_process

SIZES = (10_000, 100_000)
DOCUMENTS_PER_DATASET = 100
QUERIES = {10_000: 10, 100_000: 4}  # per size and row; see the module docstring
WARMUP = 1
CANDIDATES = 1024  # the request default top_k: candidates fetched per side
PAGE_SIZE = 30  # the request default page_size
API_KEY = "bench-key"
TIMEOUT_S = 1800  # the suite default (600 s) is too short on a shared 2-core machine


def _timed(action: Callable[[int], object], count: int) -> list[float]:
    durations = []
    for index in range(count):
        started = time.perf_counter()
        action(index)
        durations.append(time.perf_counter() - started)
    return durations


def _row(name: str, size: int, durations: Sequence[float]) -> list[object]:
    summary = harness.summarise_latencies(durations)
    return [name, size, summary.p50_ms, summary.p95_ms, summary.mean_ms, summary.samples]


def _in_process_rows(
    runtime: Runtime,
    dataset_id: str,
    corpus: synthetic.SyntheticCorpus,
    questions: Sequence[str],
) -> list[list[object]]:
    size = len(corpus.chunk_ids)
    warm, measured = questions[:WARMUP], questions[WARMUP:]
    query_vectors = np.asarray(runtime.embedder.embed(list(measured)), dtype=np.float32)
    generations = runtime.metadata.searchable_generations([dataset_id], None)[dataset_id]

    def full(index: int, texts: Sequence[str] = measured) -> object:
        request = RetrievalRequest(question=texts[index], dataset_ids=[dataset_id])
        return retrieve(runtime, request)

    def dense(index: int, limit: int) -> object:
        vector = query_vectors[index].tolist()
        return runtime.vectors.dense_search(dataset_id, vector, generations, limit)

    def numpy_cosine(index: int, limit: int) -> object:
        return baselines.cosine_top_k(corpus.vectors, query_vectors[index], limit)

    _timed(lambda index: full(index, warm), len(warm))
    count = len(measured)
    return [
        _row("retrieve() in-process (embed + dense + BM25 + fusion)", size, _timed(full, count)),
        _row(
            "  query embedding alone (MiniLM, 1 text)",
            size,
            _timed(lambda i: runtime.embedder.embed_query(measured[i]), count),
        ),
        _row(
            f"  Milvus Lite dense search alone, top {CANDIDATES}",
            size,
            _timed(lambda i: dense(i, CANDIDATES), count),
        ),
        _row(
            f"  Milvus Lite dense search alone, top {PAGE_SIZE}",
            size,
            _timed(lambda i: dense(i, PAGE_SIZE), count),
        ),
        _row(
            f"baseline numpy brute-force cosine, top {CANDIDATES}",
            size,
            _timed(lambda i: numpy_cosine(i, CANDIDATES), count),
        ),
        _row(
            f"baseline numpy brute-force cosine, top {PAGE_SIZE}",
            size,
            _timed(lambda i: numpy_cosine(i, PAGE_SIZE), count),
        ),
    ]


def _http_rows(
    data_dir: Path,
    vector_uri: str,
    datasets: dict[int, str],
    questions: dict[int, Sequence[str]],
) -> list[list[object]]:
    server = start_runtime(
        data_dir,
        role="api",
        api_key=API_KEY,
        extra_env={"RAGFLOW_LOG_LEVEL": "WARNING", "RAGFLOW_VECTOR_URI": vector_uri},
    )
    client = harness.RuntimeClient(server.base_url, API_KEY)
    rows = []
    try:
        for size, dataset_id in datasets.items():
            texts = questions[size]
            _timed(lambda i, d=dataset_id, t=texts: client.retrieve(t[i], [d]), WARMUP)
            durations = _timed(
                lambda i, d=dataset_id, t=texts: client.retrieve(t[WARMUP + i], [d]),
                len(texts) - WARMUP,
            )
            rows.append(_row("HTTP POST /api/v1/retrieval (defaults)", size, durations))
    finally:
        client.close()
        server.stop()
    return rows


@pytest.mark.timeout(TIMEOUT_S)
def test_query_latency_at_10k_and_100k_chunks(tmp_path: Path) -> None:
    data_dir = tmp_path / "runtime"
    # Milvus Lite as its own process (the runtime's http:// vector URI): the embedded file mode
    # locks the file to one process, and here the bench and the HTTP server both use it.
    milvus = start_milvus_lite_server(tmp_path)
    try:
        prepared = _prepare_and_time_in_process(data_dir, milvus.uri)
        rows = prepared.rows + _http_rows(
            data_dir, milvus.uri, prepared.datasets, prepared.http_questions
        )
    finally:
        stop_process(milvus.process)

    harness.print_report(
        "Query latency (sequential, one client)",
        {
            "corpora": ", ".join(
                f"{size} chunks over {DOCUMENTS_PER_DATASET} documents "
                f"(inserted in {prepared.insert_seconds[size]:.0f} s)"
                for size in SIZES
            ),
            "chunks": "2-6 recombined Cranfield sentences; random unit 384-d vectors (seeded)",
            "model": f"{prepared.model} (query embedding on CPU)",
            "request": f"defaults: top_k={CANDIDATES}, page_size={PAGE_SIZE}, "
            "similarity_threshold=0.2, vector_similarity_weight=0.3 (weighted fusion)",
            "queries": ", ".join(f"{n} at {size}" for size, n in QUERIES.items())
            + f" distinct Cranfield questions per row, after {WARMUP} warm-up",
            "vector store": "Milvus Lite server process on 127.0.0.1 (RAGFLOW_VECTOR_URI=http://),"
            " AUTOINDEX/COSINE dense, BM25 sparse",
        },
        ["measurement", "chunks", "p50 ms", "p95 ms", "mean ms", "n"],
        sorted(rows, key=lambda row: int(str(row[1]))),
    )
    assert len(rows) == len(SIZES) * 7


@dataclass(frozen=True)
class Prepared:
    """The in-process phase's rows, the datasets it filled and the questions left for HTTP."""

    rows: list[list[object]]
    datasets: dict[int, str]
    http_questions: dict[int, Sequence[str]]
    insert_seconds: dict[int, float]
    model: str


def _prepare_and_time_in_process(data_dir: Path, vector_uri: str) -> Prepared:
    """Insert each corpus through the runtime's stores, then time the in-process measurements."""
    directory = cranfield.cranfield_dir()
    sentences = synthetic.cranfield_sentences(cranfield.load_documents(directory))
    all_questions = [query.text for query in cranfield.load_queries(directory)]
    runtime = runtime_driver.open_bench_runtime(data_dir, vector_uri=vector_uri)
    prepared = Prepared([], {}, {}, {}, runtime.settings.embedding_model)
    try:
        cursor = 0
        for size in SIZES:
            dataset_id = runtime_driver.create_dataset(runtime, f"synthetic-{size}")
            started = time.perf_counter()
            corpus = synthetic.insert_synthetic_chunks(
                runtime,
                dataset_id,
                synthetic.synthetic_texts(sentences, size, seed=size),
                synthetic.random_unit_vectors(size, runtime.embedder.dimension, seed=size),
                DOCUMENTS_PER_DATASET,
            )
            prepared.insert_seconds[size] = time.perf_counter() - started
            prepared.datasets[size] = dataset_id
            # Distinct questions per size and phase, so the result cache never answers.
            per_phase = QUERIES[size] + WARMUP
            chosen = all_questions[cursor : cursor + 2 * per_phase]
            cursor += 2 * per_phase
            prepared.rows.extend(_in_process_rows(runtime, dataset_id, corpus, chosen[:per_phase]))
            prepared.http_questions[size] = chosen[per_phase:]
    finally:
        runtime.close()
    return prepared
