"""Query latency at 10k and 100k chunks (1M with ``BENCH_SIZES``): HTTP with 1/16/50 clients,
where a request's time goes, the parts, the baselines.

Run: ``python -m pytest tests/bench/bench_query_latency.py -s`` (or ``make bench``);
``BENCH_SIZES=1000000`` (or ``10000,100000,1000000``) measures 1M chunks.

Per size, a dataset gets synthetic chunks (tests/bench/synthetic.py: recombined Cranfield
sentences, random unit 384-d vectors). Up to ``HTTP_VIA_MILVUS_MAX`` they are written to Milvus
through the runtime's stores (Milvus Lite as its own server process); above it (Milvus Lite
would need hours for a million rows here) they are written as the dataset's persisted
query-index snapshot through the index's own persistence code (``IndexManager.install``), with
the real metadata rows, and a fresh API process loads that snapshot at startup: only the sync's
fetch from Milvus is bypassed. Then:

1. over HTTP: the real app (``ragruntime serve --role api``, a separate process) answers
   ``POST /api/v1/retrieval`` with a client's default request (RRF hybrid, query embedding
   included) from 1, 16 and 50 concurrent clients, each question distinct so neither the
   result cache nor the query-embedding cache answers. The first request after loading is
   reported on its own (it no longer waits for the index: Milvus answers it while the index
   syncs in the background), with the time until the index answers; RSS of the server process
   after the run; the load average before and after.
2. in-process (``runtime``, same dataset): ``retrieve()`` with the default request and its
   query vector precomputed (everything but HTTP and the embedding), and the query embedding
   alone (one torch thread): where an HTTP request's time goes.
3. in-process, on the same index: the dense top-1024 and BM25 parts alone, with a precomputed
   query vector, against the baselines: brute-force numpy cosine over the same vectors and
   bm25s over the same texts.

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

from ragruntime.config import QueryPrecision
from ragruntime.embedding import Embedder
from ragruntime.retrieval.analyzer import analyze
from ragruntime.retrieval.index import DatasetIndex
from ragruntime.retrieval.search import RetrievalRequest, retrieve_with_source
from ragruntime.runtime import Runtime, open_runtime
from tests.bench import baselines, cranfield, harness, runtime_driver, synthetic
from tests.fixtures.services import (
    RuntimeProcess,
    start_milvus_lite_server,
    start_runtime,
    stop_process,
)

SIZES = tuple(int(s) for s in os.environ.get("BENCH_SIZES", "10000,100000").split(","))
HTTP_VIA_MILVUS_MAX = 100_000  # larger: the index snapshot is written directly (see above)
DOCUMENTS_PER_DATASET = 100
CLIENTS = (1, 16, 50)
REQUESTS_PER_ROW = 100  # per concurrency level (at least 2 per client)
PARTS_QUERIES = 30
CANDIDATES = 1024  # the request default top_k
API_KEY = "bench-key"
TIMEOUT_S = 3600
INDEX_READY_TIMEOUT_S = 1800.0
SERVER_ENV = {"RAGFLOW_LOG_LEVEL": "WARNING"}


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
    notes: dict[str, object],
) -> list[list]:
    size = index.rows
    visible = index.visible(generations)
    bm25 = baselines.Bm25Baseline([str(i) for i in range(len(texts))], texts)
    timings: dict[str, list[float]] = {k: [] for k in ("dense", "bm25", "numpy", "bm25s")}
    recall: dict[int, list[float]] = {10: [], 100: [], CANDIDATES: []}
    for vector, question in zip(query_vectors, questions, strict=True):
        # The index's dense top against the exact scan: chunk i is vector i (ids syn<i>).
        rows, _ = index.dense_top(vector, visible, CANDIDATES)
        ids, _ = index.gather(rows)
        found = [int(i[3:]) for i in ids]
        exact = baselines.cosine_top_k(vectors, vector, CANDIDATES)[0][0].tolist()
        for cut in recall:
            recall[cut].append(len(set(found[:cut]) & set(exact[:cut])) / cut)
        for name, action in (
            ("dense", lambda v=vector: index.dense_top(v, visible, CANDIDATES)),
            ("bm25", lambda q=question: index.bm25_scores(index.term_postings(analyze(q)))),
            ("numpy", lambda v=vector: baselines.cosine_top_k(vectors, v, CANDIDATES)),
            ("bm25s", lambda q=question: bm25.search([q], CANDIDATES)),
        ):
            started = time.perf_counter()
            action()
            timings[name].append(time.perf_counter() - started)
    quantized = sum(s.size for s in index.segments if s.quantized is not None)
    scan = (
        f"int8 pre-filter + exact re-score on {quantized} of {size} rows"
        if quantized
        else "exact, numpy"
    )
    notes["index dense recall vs exact"] = ", ".join(
        f"@{cut} {np.mean(values):.4f} (min {np.min(values):.4f})" for cut, values in recall.items()
    )
    labels = {
        "dense": f"  index dense top {CANDIDATES} ({scan})",
        "bm25": "  index BM25 scores (stemmed, scipy postings)",
        "numpy": f"baseline numpy brute-force cosine top {CANDIDATES}",
        "bm25s": f"baseline bm25s top {CANDIDATES}",
    }
    return [_row(labels[name], size, 1, seconds, sum(seconds)) for name, seconds in timings.items()]


HEADERS = ["measurement", "chunks", "clients", "p50 ms", "p95 ms", "p99 ms", "req/s", "n"]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min)"


def _http_rows(
    client: harness.RuntimeClient, dataset_id: str, size: int, base_questions: Sequence[str]
) -> list[list]:
    rows = []
    for clients in CLIENTS:
        asked = _questions(base_questions, REQUESTS_PER_ROW, f"c{clients}-{size}-")
        durations, wall = _concurrent(
            lambda i, q=asked: client.retrieve(q[i], [dataset_id]), clients, len(asked)
        )
        rows.append(_row("HTTP POST /api/v1/retrieval (default)", size, clients, durations, wall))
    return rows


def _first_request_and_index_ready(
    client: harness.RuntimeClient, dataset_id: str, size: int
) -> dict[str, str]:
    """The first request (answered while the index syncs) and the time until the index answers."""
    started = time.perf_counter()
    _, first_source = client.retrieve_with_source(f"warm up {size}", [dataset_id])
    first = time.perf_counter() - started
    source, attempt = first_source, 0
    while source != "index":
        if time.perf_counter() - started > INDEX_READY_TIMEOUT_S:
            raise TimeoutError(f"the index of {size} chunks was not ready in time")
        time.sleep(0.5)
        attempt += 1
        _, source = client.retrieve_with_source(f"ready {size} {attempt}", [dataset_id])
    return {
        "first request": f"{first:.2f} s (answered from: {first_source})",
        "index answering after": f"{time.perf_counter() - started:.1f} s (background sync)",
    }


def _in_process_rows(
    runtime: Runtime, dataset_id: str, size: int, base_questions: Sequence[str]
) -> list[list]:
    """retrieve() with the query vector precomputed, and the query embedding alone (in the
    runtime's query precision and, as its baseline, in float32 on a second model copy)."""
    questions = _questions(base_questions, REQUESTS_PER_ROW, f"r{size}-")
    float32 = Embedder.load(
        runtime.settings.embedding_model, query_cache_size=0, query_precision=QueryPrecision.FLOAT32
    )
    embedding, embedding_float32, searching = [], [], []
    for question in questions:
        started = time.perf_counter()
        float32.embed_query(question)
        embedding_float32.append(time.perf_counter() - started)
        started = time.perf_counter()
        runtime.embedder.embed_query(question)  # also warms the query-embedding cache
        embedding.append(time.perf_counter() - started)
        started = time.perf_counter()
        _, source = retrieve_with_source(runtime, RetrievalRequest(question, [dataset_id]))
        searching.append(time.perf_counter() - started)
        assert source == "index", source
    return [
        _row(
            "  in-process retrieve() default request, query vector precomputed",
            size,
            1,
            searching,
            sum(searching),
        ),
        _row(
            f"  query embedding alone (MiniLM, 1 torch thread, {runtime.embedder.query_precision})",
            size,
            1,
            embedding,
            sum(embedding),
        ),
        _row(
            "  query embedding alone in float32 (baseline of the row above)",
            size,
            1,
            embedding_float32,
            sum(embedding_float32),
        ),
    ]


def _server_rss(server: RuntimeProcess) -> str:
    rss = psutil.Process(server.process.pid).memory_info().rss
    return f"{rss / 2**20:.0f} MiB after the run"


@pytest.mark.timeout(TIMEOUT_S)
def test_query_latency_at_10k_and_100k_chunks(tmp_path: Path) -> None:
    directory = cranfield.cranfield_dir()
    sentences = synthetic.cranfield_sentences(cranfield.load_documents(directory))
    base_questions = [query.text for query in cranfield.load_queries(directory)]
    milvus = start_milvus_lite_server(tmp_path)
    env = {**SERVER_ENV, "RAGFLOW_VECTOR_URI": milvus.uri}
    data_dir = tmp_path / "runtime"
    runtime: Runtime = runtime_driver.open_bench_runtime(data_dir, vector_uri=milvus.uri)
    shared: tuple[RuntimeProcess, harness.RuntimeClient] | None = None
    rows: list[list] = []
    try:
        for size in SIZES:
            notes: dict[str, object] = {
                "load average before": _load(),
                "chunks": "2-6 recombined Cranfield sentences; random unit vectors "
                f"of dimension {runtime.embedder.dimension} (seeded), {DOCUMENTS_PER_DATASET} "
                "documents",
                "request": "a client's default: no fusion named (RRF), top_k=1024, "
                "page_size=30, similarity_threshold=0.2; query embedding included (MiniLM, "
                f"CPU, one torch thread, {runtime.embedder.query_precision} arithmetic)",
            }
            texts = synthetic.synthetic_texts(sentences, size, seed=size)
            vectors = synthetic.random_unit_vectors(size, runtime.embedder.dimension, seed=size)
            questions = _questions(base_questions, PARTS_QUERIES, f"p{size}-")
            query_vectors = np.asarray(runtime.embedder.embed(questions), dtype=np.float32)
            size_rows: list[list] = []
            if size <= HTTP_VIA_MILVUS_MAX:
                if shared is None:
                    server = start_runtime(data_dir, role="api", api_key=API_KEY, extra_env=env)
                    shared = server, harness.RuntimeClient(server.base_url, API_KEY, 1800.0)
                server, client = shared
                owner = runtime
                dataset_id = runtime_driver.create_dataset(runtime, f"synthetic-{size}")
                started = time.perf_counter()
                synthetic.insert_synthetic_chunks(
                    runtime, dataset_id, texts, vectors, DOCUMENTS_PER_DATASET
                )
                notes["insert"] = (
                    f"{size / (time.perf_counter() - started):.0f} chunks/s into Milvus Lite "
                    "(MilvusVectorStore.insert, batches of synthetic.INSERT_BATCH)"
                )
                notes.update(_first_request_and_index_ready(client, dataset_id, size))
                size_rows += _http_rows(client, dataset_id, size, base_questions)
                notes["API server RSS"] = _server_rss(server)
                version = runtime.metadata.dataset_versions([dataset_id])[dataset_id]
                index = runtime.index.snapshot(dataset_id, version)
            else:
                # Its own data directory and a fresh API process that loads the snapshot.
                own_dir = tmp_path / f"runtime-{size}"
                settings = runtime_driver.bench_settings(own_dir, vector_uri=milvus.uri)
                owner = open_runtime(settings, embedder=runtime.embedder)
                dataset_id = runtime_driver.create_dataset(owner, f"synthetic-{size}")
                started = time.perf_counter()
                index = synthetic.install_synthetic_snapshot(
                    owner, dataset_id, texts, vectors, DOCUMENTS_PER_DATASET
                )
                notes["snapshot"] = (
                    f"built (analysis) and persisted in {time.perf_counter() - started:.0f} s "
                    "by IndexManager.install; Milvus not written (the sync's fetch is bypassed)"
                )
                started = time.perf_counter()
                server = start_runtime(own_dir, role="api", api_key=API_KEY, extra_env=env)
                client = harness.RuntimeClient(server.base_url, API_KEY, 1800.0)
                try:
                    while client.metric('ragflow_index_sync_total{result="success"}') < 1:
                        if time.perf_counter() - started > INDEX_READY_TIMEOUT_S:
                            raise TimeoutError("the persisted snapshot was not loaded in time")
                        time.sleep(1.0)
                    notes["API process start + snapshot load"] = (
                        f"{time.perf_counter() - started:.1f} s"
                    )
                    _, source = client.retrieve_with_source(f"warm up {size}", [dataset_id])
                    assert source == "index", source
                    size_rows += _http_rows(client, dataset_id, size, base_questions)
                    notes["API server RSS"] = _server_rss(server)
                finally:
                    client.close()
                    server.stop()
            generations = owner.metadata.searchable_generations([dataset_id], None)[dataset_id]
            size_rows += _in_process_rows(owner, dataset_id, size, base_questions)
            size_rows += _parts_rows(
                index, generations, vectors, texts, query_vectors, questions, notes
            )
            if owner is not runtime:
                owner.close()
            notes["load average after"] = _load()
            rows += size_rows
            harness.print_report(f"Query latency at {size} chunks", notes, HEADERS, size_rows)
    finally:
        if shared is not None:
            shared[1].close()
            shared[0].stop()
        runtime.close()
        stop_process(milvus.process)
    assert rows
