"""Query latency at 10k and 100k chunks: HTTP with 1/16/50 clients, the parts, the baselines.

Run: ``python -m pytest tests/bench/bench_query_latency.py -s`` (or ``make bench``);
``BENCH_SIZES=10000,100000,1000000`` adds 1M chunks (in-process only: Milvus Lite would need
hours to take a million rows here).

Per size, a dataset gets synthetic chunks (tests/bench/synthetic.py: recombined Cranfield
sentences, random unit 384-d vectors) written to Milvus through the runtime's stores. Then:

1. over HTTP: the real app (``ragruntime serve --role api``, a separate process, Milvus Lite
   as its own server process) answers ``POST /api/v1/retrieval`` with a client's default
   request (RRF hybrid, query embedding included) from 1, 16 and 50 concurrent clients, each
   question distinct so neither the result cache nor the query-embedding cache answers. The
   first request after loading pays the index sync (fetch from Milvus + analysis), reported
   on its own; RSS of the server process after the run.
2. in-process, on the same index (``runtime.index``): the dense top-1024 and BM25 top-1024
   parts alone, with a precomputed query vector, against the baselines: brute-force numpy
   cosine over the same vectors and bm25s over the same texts.

p50/p95/p99 over every request of a row; requests/s is requests / wall time of the row.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psutil
import pytest

from ragruntime.retrieval.analyzer import analyze
from ragruntime.retrieval.index import DatasetIndex, Segment
from ragruntime.runtime import Runtime
from tests.bench import baselines, cranfield, harness, runtime_driver, synthetic
from tests.fixtures.services import start_milvus_lite_server, start_runtime, stop_process

SIZES = tuple(int(s) for s in os.environ.get("BENCH_SIZES", "10000,100000").split(","))
HTTP_MAX = 100_000  # larger sizes are measured in-process only
DOCUMENTS_PER_DATASET = 100
CLIENTS = (1, 16, 50)
REQUESTS_PER_ROW = 100  # per concurrency level (at least 2 per client)
PARTS_QUERIES = 30
CANDIDATES = 1024  # the request default top_k
API_KEY = "bench-key"
TIMEOUT_S = 3600


def _percentiles(seconds: Sequence[float]) -> tuple[float, float, float]:
    values = np.asarray(seconds) * 1000
    return tuple(float(np.percentile(values, p)) for p in (50, 95, 99))  # type: ignore[return-value]


def _row(name: str, size: int, clients: int, seconds: Sequence[float], wall: float) -> list:
    p50, p95, p99 = _percentiles(seconds)
    return [name, size, clients, p50, p95, p99, len(seconds) / wall, len(seconds)]


def _concurrent(action: Callable[[int], object], clients: int, total: int) -> tuple[list, float]:
    """Run ``action(i)`` for i < total from ``clients`` threads; per-call seconds, wall."""
    durations: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            action(index)
            elapsed = time.perf_counter() - started
            with lock:
                durations.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return durations, time.perf_counter() - started


def _questions(base: Sequence[str], count: int, tag: str) -> list[str]:
    """Distinct questions: Cranfield questions, numbered when reused."""
    return [f"{base[i % len(base)]} ({tag}{i})" for i in range(count)]


def _parts_rows(
    index: DatasetIndex,
    generations: Sequence[int],
    vectors: np.ndarray,
    texts: Sequence[str],
    query_vectors: np.ndarray,
    questions: Sequence[str],
) -> list[list]:
    size = index.rows
    visible = index.visible(generations)
    bm25 = baselines.Bm25Baseline([str(i) for i in range(len(texts))], texts)
    live = np.concatenate(index.alive)
    timings: dict[str, list[float]] = {k: [] for k in ("dense", "bm25", "numpy", "bm25s")}
    for vector, question in zip(query_vectors, questions, strict=True):
        for name, action in (
            ("dense", lambda v=vector: index.dense_top(v, visible, CANDIDATES)),
            ("bm25", lambda q=question: index.bm25_scores(index.term_postings(analyze(q)), live)),
            ("numpy", lambda v=vector: baselines.cosine_top_k(vectors, v, CANDIDATES)),
            ("bm25s", lambda q=question: bm25.search([q], CANDIDATES)),
        ):
            started = time.perf_counter()
            action()
            timings[name].append(time.perf_counter() - started)
    labels = {
        "dense": f"  index dense top {CANDIDATES} (exact, numpy)",
        "bm25": "  index BM25 scores (stemmed, scipy postings)",
        "numpy": f"baseline numpy brute-force cosine top {CANDIDATES}",
        "bm25s": f"baseline bm25s top {CANDIDATES}",
    }
    return [_row(labels[name], size, 1, seconds, sum(seconds)) for name, seconds in timings.items()]


def _in_memory_index(texts: Sequence[str], vectors: np.ndarray) -> tuple[DatasetIndex, list[int]]:
    """The same index the runtime builds, straight from rows (sizes Milvus Lite can't take)."""
    rows = [
        {
            "id": f"syn{i:09d}",
            "document_id": f"doc{i % DOCUMENTS_PER_DATASET}",
            "generation": 1 + i % DOCUMENTS_PER_DATASET,
            "content": text,
            "document_name": f"doc{i % DOCUMENTS_PER_DATASET}.txt",
            "position": i,
        }
        for i, text in enumerate(texts)
    ]
    segment = Segment.build("bench", rows, vectors, vectors.shape[1])
    index = DatasetIndex.create(
        "bench", vectors.shape[1], 1, [segment], [np.ones(len(rows), bool)], {}
    )
    return index, list(range(1, DOCUMENTS_PER_DATASET + 1))


HEADERS = ["measurement", "chunks", "clients", "p50 ms", "p95 ms", "p99 ms", "req/s", "n"]


@pytest.mark.timeout(TIMEOUT_S)
def test_query_latency_at_10k_and_100k_chunks(tmp_path: Path) -> None:
    directory = cranfield.cranfield_dir()
    sentences = synthetic.cranfield_sentences(cranfield.load_documents(directory))
    base_questions = [query.text for query in cranfield.load_queries(directory)]
    data_dir = tmp_path / "runtime"
    milvus = start_milvus_lite_server(tmp_path)
    runtime: Runtime = runtime_driver.open_bench_runtime(data_dir, vector_uri=milvus.uri)
    server = start_runtime(
        data_dir,
        role="api",
        api_key=API_KEY,
        extra_env={"RAGFLOW_LOG_LEVEL": "WARNING", "RAGFLOW_VECTOR_URI": milvus.uri},
    )
    client = harness.RuntimeClient(server.base_url, API_KEY, timeout_s=1800.0)
    rows: list[list] = []
    try:
        for size in SIZES:
            texts = synthetic.synthetic_texts(sentences, size, seed=size)
            vectors = synthetic.random_unit_vectors(size, runtime.embedder.dimension, seed=size)
            notes: dict[str, object] = {
                "chunks": "2-6 recombined Cranfield sentences; random unit vectors "
                f"of dimension {runtime.embedder.dimension} (seeded), {DOCUMENTS_PER_DATASET} "
                "documents",
                "request": "a client's default: no fusion named (RRF), top_k=1024, "
                "page_size=30, similarity_threshold=0.2; query embedding included (MiniLM, "
                "CPU, one torch thread)",
            }
            size_rows: list[list] = []
            questions = _questions(base_questions, PARTS_QUERIES, f"p{size}-")
            query_vectors = np.asarray(runtime.embedder.embed(questions), dtype=np.float32)
            if size <= HTTP_MAX:
                dataset_id = runtime_driver.create_dataset(runtime, f"synthetic-{size}")
                started = time.perf_counter()
                synthetic.insert_synthetic_chunks(
                    runtime, dataset_id, texts, vectors, DOCUMENTS_PER_DATASET
                )
                notes["insert"] = (
                    f"{size / (time.perf_counter() - started):.0f} chunks/s into Milvus Lite "
                    "(MilvusVectorStore.insert, batches of synthetic.INSERT_BATCH)"
                )
                started = time.perf_counter()
                client.retrieve(f"warm up {size}", [dataset_id])
                notes["first request (index sync)"] = (
                    f"{time.perf_counter() - started:.1f} s: fetch {size} rows from Milvus "
                    "(Strong), analyse, persist"
                )
                for clients in CLIENTS:
                    asked = _questions(base_questions, REQUESTS_PER_ROW, f"c{clients}-{size}-")
                    durations, wall = _concurrent(
                        lambda i, q=asked, d=dataset_id: client.retrieve(q[i], [d]),
                        clients,
                        len(asked),
                    )
                    size_rows.append(
                        _row(
                            "HTTP POST /api/v1/retrieval (default)", size, clients, durations, wall
                        )
                    )
                rss = psutil.Process(server.process.pid).memory_info().rss
                notes["API server RSS"] = f"{rss / 2**20:.0f} MiB after the run"
                version = runtime.metadata.dataset_versions([dataset_id])[dataset_id]
                index = runtime.index.snapshot(dataset_id, version)
                generations = runtime.metadata.searchable_generations([dataset_id], None)[
                    dataset_id
                ]
            else:
                started = time.perf_counter()
                index, generations = _in_memory_index(texts, vectors)
                notes["index build"] = f"{time.perf_counter() - started:.0f} s in memory"
                notes["RSS"] = (
                    f"{psutil.Process().memory_info().rss / 2**20:.0f} MiB (bench process)"
                )
            size_rows += _parts_rows(index, generations, vectors, texts, query_vectors, questions)
            rows += size_rows
            harness.print_report(f"Query latency at {size} chunks", notes, HEADERS, size_rows)
    finally:
        client.close()
        server.stop()
        runtime.close()
        stop_process(milvus.process)
    assert rows
