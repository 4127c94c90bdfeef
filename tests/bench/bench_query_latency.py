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
from pathlib import Path

import numpy as np
import pytest

from ragruntime.retrieval.search import RetrievalRequest, retrieve
from ragruntime.runtime import Runtime
from tests.bench import baselines, cranfield, harness, runtime_driver, synthetic
from tests.fixtures.services import start_milvus_lite_server, start_runtime, stop_process

SIZES = (10_000, 100_000)
DOCUMENTS_PER_DATASET = 100
QUERIES = {10_000: 10, 100_000: 3}  # per size and row; see the module docstring
WARMUP = 1
CANDIDATES = 1024  # the request default top_k: candidates fetched per side
PAGE_SIZE = 30  # the request default page_size
API_KEY = "bench-key"
TIMEOUT_S = 2400  # the suite default (600 s) is far too short on a shared 2-core machine


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
    """Time the in-process measurements over ``questions`` (the first WARMUP only warm up)."""
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


def _http_row(
    client: harness.RuntimeClient, dataset_id: str, size: int, questions: Sequence[str]
) -> list[object]:
    """Time ``POST /api/v1/retrieval`` with a client's default request."""
    _timed(lambda i: client.retrieve(questions[i], [dataset_id]), WARMUP)
    durations = _timed(
        lambda i: client.retrieve(questions[WARMUP + i], [dataset_id]), len(questions) - WARMUP
    )
    return _row("HTTP POST /api/v1/retrieval (defaults)", size, durations)


HEADERS = ["measurement", "chunks", "p50 ms", "p95 ms", "mean ms", "n"]


@pytest.mark.timeout(TIMEOUT_S)
def test_query_latency_at_10k_and_100k_chunks(tmp_path: Path) -> None:
    directory = cranfield.cranfield_dir()
    sentences = synthetic.cranfield_sentences(cranfield.load_documents(directory))
    questions = iter(query.text for query in cranfield.load_queries(directory))
    data_dir = tmp_path / "runtime"
    # Milvus Lite as its own process (the runtime's http:// vector URI): the embedded file mode
    # locks the file to one process, and here the bench and the HTTP server both use it.
    milvus = start_milvus_lite_server(tmp_path)
    runtime = runtime_driver.open_bench_runtime(data_dir, vector_uri=milvus.uri)
    server = start_runtime(
        data_dir,
        role="api",
        api_key=API_KEY,
        extra_env={"RAGFLOW_LOG_LEVEL": "WARNING", "RAGFLOW_VECTOR_URI": milvus.uri},
    )
    client = harness.RuntimeClient(server.base_url, API_KEY, timeout_s=600.0)
    rows: list[list[object]] = []
    try:
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
            insert_s = time.perf_counter() - started
            # Distinct questions per size and phase, so the result cache never answers.
            count = QUERIES[size] + WARMUP
            in_process = [next(questions) for _ in range(count)]
            over_http = [next(questions) for _ in range(count)]
            size_rows = _in_process_rows(runtime, dataset_id, corpus, in_process)
            size_rows.append(_http_row(client, dataset_id, size, over_http))
            rows += size_rows
            # Printed per size, so a slow 100k run still leaves the 10k figures behind.
            harness.print_report(
                f"Query latency at {size} chunks (sequential, one client)",
                {
                    "corpus": f"{size} chunks over {DOCUMENTS_PER_DATASET} documents, "
                    f"inserted through VectorStore.insert in {insert_s:.0f} s",
                    "chunks": "2-6 recombined Cranfield sentences; random unit vectors "
                    f"of dimension {runtime.embedder.dimension} (seeded)",
                    "model": f"{runtime.settings.embedding_model} (query embedding on CPU)",
                    "request": f"defaults: top_k={CANDIDATES}, page_size={PAGE_SIZE}, "
                    "similarity_threshold=0.2, vector_similarity_weight=0.3 (weighted)",
                    "queries": f"{QUERIES[size]} distinct Cranfield questions per row, "
                    f"after {WARMUP} warm-up",
                    "vector store": "Milvus Lite server process on 127.0.0.1 "
                    "(RAGFLOW_VECTOR_URI=http://), AUTOINDEX/COSINE dense, BM25 sparse",
                    "HTTP server": "ragruntime serve --role api (uvicorn, separate process)",
                },
                HEADERS,
                size_rows,
            )
    finally:
        client.close()
        server.stop()
        runtime.close()
        stop_process(milvus.process)
    assert len(rows) == len(SIZES) * 7
