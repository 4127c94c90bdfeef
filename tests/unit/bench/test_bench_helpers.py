"""Unit tests for the benchmarks' helpers: baselines, synthetic corpora, tables, collection hook.

Covers tests/bench/baselines.py, synthetic.py (pure parts), harness.py (pure parts) and the
``bench_*.py`` collection rule of tests/bench/conftest.py. Small inputs, exact expectations.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.bench import baselines, cranfield, harness, synthetic
from tests.bench import conftest as bench_conftest


def test_cosine_top_k_matches_a_full_sort_and_ignores_vector_length() -> None:
    generator = np.random.default_rng(3)
    corpus = baselines.normalise_rows(generator.standard_normal((200, 16)))
    queries = generator.standard_normal((3, 16)) * 5.0

    top, scores = baselines.cosine_top_k(corpus, queries, 10)

    expected_scores = baselines.normalise_rows(queries) @ corpus.T
    for row in range(3):
        assert list(top[row]) == list(np.argsort(-expected_scores[row])[:10])
        assert np.allclose(scores[row], np.sort(expected_scores[row])[::-1][:10], atol=1e-6)


def test_cosine_top_k_caps_k_at_the_corpus_size() -> None:
    corpus = baselines.normalise_rows(np.eye(3))

    top, _scores = baselines.cosine_top_k(corpus, [0.0, 1.0, 0.1], 50)

    assert top.shape == (1, 3)
    assert list(top[0]) == [1, 2, 0]


def test_normalise_rows_leaves_zero_rows_at_zero() -> None:
    rows = baselines.normalise_rows([[3.0, 4.0], [0.0, 0.0]])

    assert np.allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


def test_bm25_baseline_ranks_matching_documents_and_drops_non_matching_ones() -> None:
    index = baselines.Bm25Baseline(
        ["a", "b", "c"],
        ["supersonic wing flutter", "boundary layer heat transfer", "wing wing wing"],
    )

    ranked = index.search(["wing flutter"], 10)[0]

    assert ranked[0] == "a"
    assert set(ranked) == {"a", "c"}


def test_bm25_baseline_refuses_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        baselines.Bm25Baseline(["a"], [])


def test_synthetic_texts_are_reproducible_and_made_of_whole_sentences() -> None:
    documents = [
        cranfield.CranfieldDocument("1", "t", "the flow is laminar here . the plate is hot now ."),
        cranfield.CranfieldDocument("2", "t", "too short . shock waves form at the nose ."),
    ]
    sentences = synthetic.cranfield_sentences(documents)

    assert sentences == [
        "the flow is laminar here .",
        "the plate is hot now .",
        "shock waves form at the nose .",
    ]
    first = synthetic.synthetic_texts(sentences, 5, seed=11)
    assert first == synthetic.synthetic_texts(sentences, 5, seed=11)
    for text in first:
        pieces = [piece.strip() + " ." for piece in text.split(" .") if piece.strip()]
        assert 2 <= len(pieces) <= 6
        assert set(pieces) <= set(sentences)


def test_random_unit_vectors_have_the_requested_shape_and_unit_length() -> None:
    vectors = synthetic.random_unit_vectors(50, 384, seed=1)

    assert vectors.shape == (50, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_latency_summary_uses_inclusive_percentiles_in_milliseconds() -> None:
    summary = harness.summarise_latencies([value / 1000 for value in range(1, 101)])

    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p95_ms == pytest.approx(95.05)
    assert summary.mean_ms == pytest.approx(50.5)
    assert summary.samples == 100


def test_latency_summary_needs_two_samples() -> None:
    with pytest.raises(ValueError):
        harness.summarise_latencies([0.1])


def test_tables_pad_columns_and_print_floats_with_four_digits() -> None:
    table = harness.format_table(["name", "x"], [["long name", 0.5], ["b", 12]])

    assert table.splitlines() == [
        "name       x     ",
        "---------  ------",
        "long name  0.5000",
        "b          12    ",
    ]


def _config(invocation_dir: Path, *args: str) -> SimpleNamespace:
    return SimpleNamespace(args=list(args), invocation_params=SimpleNamespace(dir=invocation_dir))


def test_benchmarks_are_collected_only_when_their_directory_is_named() -> None:
    root = cranfield.REPO_ROOT
    requested = bench_conftest._bench_dir_requested

    assert requested(_config(root, "tests/bench"))  # type: ignore[arg-type]
    assert requested(_config(root / "tests", "bench/bench_x.py::test_y"))  # type: ignore[arg-type]
    assert not requested(_config(root, "tests", "e2e"))  # type: ignore[arg-type]
    assert not requested(_config(root, "tests/unit"))  # type: ignore[arg-type]
