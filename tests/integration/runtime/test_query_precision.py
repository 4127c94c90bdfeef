"""The real MiniLM: a bfloat16 query vector is the float32 one up to rounding, so retrieval
answers the same; documents are encoded identically whatever the query precision."""

from __future__ import annotations

import numpy as np

from ragruntime.config import QueryPrecision
from ragruntime.embedding import Embedder

QUESTIONS = [
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high "
    "speed aircraft",
    "how can the aerodynamic performance of channel flow ground effect machines be calculated",
    "What are the structural and aeroelastic problems associated with flight of high speed "
    "aircraft?",
    "a b",
    "Ünïcode, emoji 🚀 and punctuation?!",
]


def test_bfloat16_query_vectors_match_float32_and_documents_are_unchanged() -> None:
    fp32 = Embedder.load("all-MiniLM-L6-v2", query_precision=QueryPrecision.FLOAT32)
    bf16 = Embedder.load("all-MiniLM-L6-v2", query_precision=QueryPrecision.BFLOAT16)
    assert (fp32.query_precision, bf16.query_precision) == ("float32", "bfloat16")
    exact = np.asarray([fp32.embed_query(q) for q in QUESTIONS], dtype=np.float32)
    rounded = np.asarray([bf16.embed_query(q) for q in QUESTIONS], dtype=np.float32)
    assert rounded.dtype == np.float32 and rounded.shape == exact.shape
    np.testing.assert_allclose(np.linalg.norm(rounded, axis=1), 1.0, atol=1e-5)
    assert float((exact * rounded).sum(axis=1).min()) > 0.999
    assert bf16.embed(QUESTIONS) == fp32.embed(QUESTIONS)
