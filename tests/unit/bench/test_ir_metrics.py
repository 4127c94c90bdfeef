"""Unit tests for the benchmarks' Cranfield parser and IR metrics (tests/bench/cranfield.py).

Tiny inline samples in the collection's SMART format; hand-computed expected values.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.bench import cranfield

DOCUMENTS_SAMPLE = """.I 1
.T
experimental investigation of the aerodynamics of a
wing in a slipstream .
.A
brenckman,m.
.B
j. ae. scs. 25, 1958, 324.
.W
experimental investigation of the aerodynamics of a
wing in a slipstream .
  an experimental study of a wing .
.I 2
.T
simple shear flow past a flat plate .
.A
ting-yili
.B
department of aeronautical engineering, rensselaer polytechnic institute
.W
in the study of high-speed viscous flow past a two-dimensional body .
"""

QUERIES_SAMPLE = """.I 001
.W
what similarity laws must be obeyed when constructing aeroelastic models
of heated high speed aircraft .
.I 002
.W
what are the structural and aeroelastic problems .
.I 004
.W
what problems of heat conduction in composite slabs have been solved so
far .
"""

QRELS_SAMPLE = "1 184 2 \r\n1 29 3 \r\n1 486 -1 \r\n2 12 1\n2 12 4\n3 486 -1\n"


def test_documents_keep_title_and_abstract_but_not_authors_or_bibliography() -> None:
    documents = cranfield.parse_documents(DOCUMENTS_SAMPLE)

    assert [document.doc_id for document in documents] == ["1", "2"]
    assert documents[0].title == (
        "experimental investigation of the aerodynamics of a wing in a slipstream ."
    )
    assert documents[0].abstract.endswith("an experimental study of a wing .")
    assert documents[1].text == (
        "simple shear flow past a flat plate .\n"
        "in the study of high-speed viscous flow past a two-dimensional body ."
    )
    assert "brenckman" not in documents[0].text
    assert "rensselaer" not in documents[1].text


def test_queries_are_numbered_by_position_not_by_their_skipping_ids() -> None:
    queries = cranfield.parse_queries(QUERIES_SAMPLE)

    assert [(query.position, query.original_id) for query in queries] == [
        (1, "001"),
        (2, "002"),
        (3, "004"),
    ]
    assert (
        queries[2].text
        == "what problems of heat conduction in composite slabs have been solved so far ."
    )


@pytest.mark.parametrize(
    ("grade", "gain"), [(1, 4), (2, 3), (3, 2), (4, 1), (-1, 0), (5, 0), (0, 0)]
)
def test_cleverdon_grades_map_to_linear_gains(grade: int, gain: int) -> None:
    assert cranfield.gain_for_grade(grade) == gain


def test_qrels_drop_placeholders_keep_best_grade_and_tolerate_carriage_returns() -> None:
    qrels = cranfield.parse_qrels(QRELS_SAMPLE)

    assert qrels == {1: {"184": 3, "29": 2}, 2: {"12": 4}, 3: {}}


def test_qrels_reject_malformed_lines() -> None:
    with pytest.raises(ValueError, match="line 2"):
        cranfield.parse_qrels("1 2 3\n1 2\n")


def test_ndcg_is_one_for_the_ideal_order_and_matches_a_hand_computation() -> None:
    gains = {"a": 3, "b": 1}

    assert cranfield.ndcg_at_k(["a", "b", "x"], gains, 10) == pytest.approx(1.0)
    # b first, a third: (1/log2(2) + 3/log2(4)) / (3/log2(2) + 1/log2(3))
    expected = (1 + 3 / 2) / (3 + 1 / math.log2(3))
    assert cranfield.ndcg_at_k(["b", "x", "a"], gains, 10) == pytest.approx(expected)
    assert cranfield.ndcg_at_k(["x", "y"], gains, 10) == 0.0


def test_ndcg_cuts_both_the_ranking_and_the_ideal_at_k() -> None:
    gains = {"a": 1, "b": 1, "c": 1}

    assert cranfield.ndcg_at_k(["a", "x", "b"], gains, 1) == pytest.approx(1.0)
    assert cranfield.ndcg_at_k(["x", "a"], gains, 1) == 0.0


def test_recall_counts_only_the_first_k_results() -> None:
    assert cranfield.recall_at_k(["a", "x", "b"], {"a", "b", "c", "d"}, 2) == 0.25
    assert cranfield.recall_at_k(["a", "x", "b"], {"a", "b", "c", "d"}, 3) == 0.5


def test_metrics_refuse_queries_without_relevant_documents() -> None:
    with pytest.raises(ValueError):
        cranfield.ndcg_at_k(["a"], {}, 10)
    with pytest.raises(ValueError):
        cranfield.recall_at_k(["a"], set(), 10)


def test_reciprocal_rank_uses_the_first_relevant_hit() -> None:
    assert cranfield.reciprocal_rank(["x", "y", "b", "a"], {"a", "b"}) == pytest.approx(1 / 3)
    assert cranfield.reciprocal_rank(["x"], {"a"}) == 0.0


def test_chunk_rankings_collapse_to_first_occurrence_of_each_document() -> None:
    assert cranfield.unique_in_order(["7", "3", "7", "1", "3"]) == ["7", "3", "1"]


def test_evaluate_run_averages_over_judged_queries_with_relevant_documents() -> None:
    qrels = {1: {"a": 4}, 2: {"b": 4, "c": 4}, 3: {}}
    run = {1: ["a"], 2: ["x", "b"]}

    scores = cranfield.evaluate_run(run, qrels)

    assert scores.queries == 2
    assert scores.mrr == pytest.approx((1 + 0.5) / 2)
    assert scores.recall_at_100 == pytest.approx((1 + 0.5) / 2)
    second_ndcg = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert scores.ndcg_at_10 == pytest.approx((1 + second_ndcg) / 2)


def test_a_judged_query_missing_from_the_run_scores_zero() -> None:
    scores = cranfield.evaluate_run({}, {1: {"a": 4}})

    assert (scores.ndcg_at_10, scores.recall_at_100, scores.mrr) == (0.0, 0.0, 0.0)


def test_collection_directory_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / cranfield.DOCUMENTS_FILE).write_text(DOCUMENTS_SAMPLE, encoding="utf-8")
    monkeypatch.setenv(cranfield.CRANFIELD_DIR_ENV, str(tmp_path))

    assert cranfield.cranfield_dir() == tmp_path
    assert len(cranfield.load_documents(tmp_path)) == 2


def test_a_missing_collection_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cranfield.CRANFIELD_DIR_ENV, str(tmp_path / "absent"))

    with pytest.raises(FileNotFoundError, match=cranfield.CRANFIELD_DIR_ENV):
        cranfield.cranfield_dir()
