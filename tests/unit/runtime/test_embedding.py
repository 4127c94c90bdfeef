"""The embedder: query embeddings come from an LRU cache; replicas encode in parallel."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from ragruntime import embedding
from ragruntime.config import QueryPrecision
from ragruntime.embedding import Embedder, resolve_query_precision


class FakeModel:
    """Counts encode calls; each call takes a little time so concurrency is observable."""

    def __init__(self, busy: dict[str, int], lock: threading.Lock) -> None:
        self.calls = 0
        self.busy, self.lock = busy, lock

    def get_sentence_embedding_dimension(self) -> int:
        return 2

    def encode(self, texts: list[str], **_options: Any) -> np.ndarray:
        with self.lock:
            self.busy["now"] += 1
            self.busy["peak"] = max(self.busy["peak"], self.busy["now"])
        self.calls += 1
        time.sleep(0.3)
        with self.lock:
            self.busy["now"] -= 1
        return np.asarray([[float(len(t)), 1.0] for t in texts], dtype=np.float32)


def _models(count: int) -> tuple[list[FakeModel], dict[str, int]]:
    busy, lock = {"now": 0, "peak": 0}, threading.Lock()
    return [FakeModel(busy, lock) for _ in range(count)], busy


def test_repeated_questions_are_answered_from_the_lru_cache() -> None:
    (model,), _ = _models(1)
    embedder = Embedder(model, "fake", 8, query_cache_size=2)
    assert embedder.embed_query("abc") == [3.0, 1.0]
    embedder.embed_query("abc")
    assert model.calls == 1
    embedder.embed_query("de")
    embedder.embed_query("f")  # evicts "abc", the least recently used
    embedder.embed_query("abc")
    assert model.calls == 4


def test_replicas_encode_in_parallel_and_one_model_never_does() -> None:
    models, busy = _models(2)
    embedder = Embedder(models[0], "fake", 8, replicas=models[1:])
    threads = [threading.Thread(target=embedder.embed, args=([f"t{i}"],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert busy["peak"] == 2 and embedder.replicas == 2
    (single,), alone = _models(1)
    serial = Embedder(single, "fake", 8)
    threads = [threading.Thread(target=serial.embed, args=([f"t{i}"],)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert alone["peak"] == 1


class ArithmeticRecorder:
    """Records whether torch's CPU bfloat16 autocast was on during each encode call."""

    def __init__(self) -> None:
        self.autocast: list[bool] = []

    def get_sentence_embedding_dimension(self) -> int:
        return 2

    def encode(self, texts: list[str], **_options: Any) -> np.ndarray:
        import torch

        self.autocast.append(
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        )
        return np.asarray([[3.0, 4.0] for _ in texts], dtype=np.float32)


def test_queries_run_under_bfloat16_autocast_and_documents_never() -> None:
    model = ArithmeticRecorder()
    embedder = Embedder(model, "fake", 8, query_precision=QueryPrecision.BFLOAT16)
    embedder.embed_query("a question")
    embedder.embed(["a document"])
    assert model.autocast == [True, False]
    plain = ArithmeticRecorder()
    Embedder(plain, "fake", 8, query_precision=QueryPrecision.FLOAT32).embed_query("q")
    assert plain.autocast == [False]


def test_auto_precision_follows_the_cpu_and_other_devices_keep_float32(monkeypatch) -> None:
    monkeypatch.setattr(embedding, "native_bfloat16", lambda: True)
    assert resolve_query_precision(QueryPrecision.AUTO, "cpu") is QueryPrecision.BFLOAT16
    monkeypatch.setattr(embedding, "native_bfloat16", lambda: False)
    assert resolve_query_precision(QueryPrecision.AUTO, "cpu") is QueryPrecision.FLOAT32
    assert resolve_query_precision(QueryPrecision.BFLOAT16, "cpu") is QueryPrecision.BFLOAT16
    assert resolve_query_precision(QueryPrecision.BFLOAT16, "cuda") is QueryPrecision.FLOAT32
    assert resolve_query_precision(QueryPrecision.FLOAT32, "cpu") is QueryPrecision.FLOAT32
