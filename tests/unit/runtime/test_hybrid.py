"""Score fusion: RAGFlow's weighted semantics, RRF by rank, stemmed highlighting, stable order."""

from __future__ import annotations

import numpy as np
import pytest

from ragruntime.errors import InvalidArgument
from ragruntime.retrieval.analyzer import analyze
from ragruntime.retrieval.hybrid import highlight, order, rrf, term_similarity, weighted
from ragruntime.retrieval.search import RetrievalRequest


def test_the_analyzer_lowercases_drops_stopwords_and_stems() -> None:
    assert analyze("The Flows over swept WINGS") == ["flow", "over", "swept", "wing"]
    assert analyze("the of") == ["the", "of"]  # only stopwords: kept rather than nothing


def test_term_similarity_is_the_idf_weighted_share_of_query_terms_present() -> None:
    presence = np.array([[True, True], [True, False], [False, False]])
    scores = term_similarity(presence)
    assert scores[0] == pytest.approx(1.0)
    assert 0.0 < scores[1] < 1.0
    assert scores[2] == 0.0
    # The rarer term weighs more: holding only it beats holding only the common one.
    rare_vs_common = term_similarity(np.array([[True, False], [True, True], [True, False]]))
    assert rare_vs_common[1] == pytest.approx(1.0) and rare_vs_common[0] < 0.5


def test_weighted_fusion_mixes_vector_and_term_similarity_by_the_weight() -> None:
    vector = np.array([0.2, 0.9], dtype=np.float32)
    term = np.array([1.0, 0.0], dtype=np.float32)
    term_heavy = weighted(vector, term, 0.3)
    assert term_heavy[0] == pytest.approx(0.3 * 0.2 + 0.7 * 1.0)
    assert list(order(term_heavy, np.array(["a", "b"]))) == [0, 1]
    vector_only = weighted(vector, term, 1.0)
    assert list(order(vector_only, np.array(["a", "b"]))) == [1, 0]
    assert vector_only[1] == pytest.approx(0.9)
    assert weighted(vector, term, 7.0)[1] == pytest.approx(0.9)  # clipped to [0, 1]


def test_rrf_rewards_candidates_ranked_by_both_retrievers_and_ignores_scores() -> None:
    dense_rank = np.array([2, 1, 0])
    text_rank = np.array([2, 0, 1])
    fused = rrf(dense_rank, text_rank, k=60)
    assert fused[0] > fused[1] == pytest.approx(fused[2])
    assert fused[0] == pytest.approx((2 / 62) / (2 / 61))
    assert rrf(np.array([1]), np.array([1]))[0] == pytest.approx(1.0)
    # Beyond the fusion depth a rank no longer counts.
    assert rrf(np.array([5]), np.array([0]), k=60, depth=4)[0] == 0.0


def test_ties_are_broken_by_key_so_paging_is_stable() -> None:
    similarity = np.array([0.5, 0.9, 0.5], dtype=np.float32)
    assert list(order(similarity, np.array(["c", "a", "b"]))) == [1, 2, 0]


def test_highlight_wraps_words_sharing_a_query_stem_and_escapes_html() -> None:
    assert highlight("Milvus <b>vectors</b> store", "vector") == (
        "Milvus &lt;b&gt;<em>vectors</em>&lt;/b&gt; store"
    )


def test_a_request_without_fusion_gets_rrf_unless_it_sets_a_weight() -> None:
    plain = RetrievalRequest(question="q", dataset_ids=["d"])
    assert plain.resolved_fusion == "rrf" and plain.resolved_weight == pytest.approx(0.3)
    weighted_request = RetrievalRequest(
        question="q", dataset_ids=["d"], vector_similarity_weight=0.7
    )
    assert weighted_request.resolved_fusion == "weighted"
    assert weighted_request.resolved_weight == pytest.approx(0.7)
    named = RetrievalRequest(
        question="q", dataset_ids=["d"], vector_similarity_weight=0.7, fusion="rrf"
    )
    assert named.resolved_fusion == "rrf"
    with pytest.raises(InvalidArgument, match="fusion"):
        RetrievalRequest(question="q", dataset_ids=["d"], fusion="max").validate()
