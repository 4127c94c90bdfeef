"""Score fusion follows RAGFlow's vector_similarity_weight semantics; RRF is rank-based."""

from __future__ import annotations

import pytest

from ragruntime.retrieval.hybrid import Candidate, fuse, highlight, term_similarities


def test_term_similarity_is_the_weighted_share_of_query_terms_found() -> None:
    scores = term_similarities("vector database", ["a vector database", "a vector", "nothing"])
    assert scores[0] == pytest.approx(1.0)
    assert 0.0 < scores[1] < 1.0
    assert scores[2] == 0.0


def test_weighted_fusion_mixes_vector_and_term_similarity_by_the_weight() -> None:
    candidates = [
        Candidate("a", "vector database", vector_similarity=0.2, dense_rank=2, text_rank=1),
        Candidate("b", "unrelated words", vector_similarity=0.9, dense_rank=1, text_rank=None),
    ]
    term_heavy = fuse("vector database", candidates, vector_weight=0.3)
    assert [f.key for f in term_heavy] == ["a", "b"]
    assert term_heavy[0].similarity == pytest.approx(0.3 * 0.2 + 0.7 * 1.0)
    vector_only = fuse("vector database", candidates, vector_weight=1.0)
    assert [f.key for f in vector_only] == ["b", "a"]
    assert vector_only[0].similarity == pytest.approx(0.9)


def test_rrf_rewards_candidates_ranked_by_both_retrievers() -> None:
    candidates = [
        Candidate("both", "x", 0.5, dense_rank=2, text_rank=2),
        Candidate("dense", "y", 0.9, dense_rank=1, text_rank=None),
    ]
    fused = fuse("q", candidates, vector_weight=0.5, method="rrf")
    assert [f.key for f in fused] == ["both", "dense"]
    assert 0.0 < fused[0].similarity <= 1.0


def test_highlight_wraps_query_terms_and_escapes_html() -> None:
    assert highlight("Milvus <b>vector</b> store", "vector") == (
        "Milvus &lt;b&gt;<em>vector</em>&lt;/b&gt; store"
    )
