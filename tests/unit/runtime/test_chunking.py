"""Chunking honours parser_config: chunk_token_num, delimiter (single and `multi`), overlap."""

from __future__ import annotations

from ragruntime.ingest.chunking import (
    ChunkingConfig,
    chunk_sections,
    count_tokens,
    split_by_bytes,
    split_pieces,
)
from ragruntime.models import CHUNK_CONTENT_MAX_BYTES, fit_utf8


def test_chunks_never_exceed_the_token_limit_and_keep_all_words() -> None:
    text = "\n".join(" ".join(f"w{i}_{j}" for j in range(7)) for i in range(30))
    chunks = chunk_sections([text], ChunkingConfig(chunk_token_num=20, delimiter="\n"))
    assert all(count_tokens(c) <= 20 for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_a_piece_longer_than_the_limit_is_cut_by_tokens() -> None:
    chunks = chunk_sections([" ".join(["word"] * 25)], ChunkingConfig(10, "\n", 0))
    assert [count_tokens(c) for c in chunks] == [10, 10, 5]


def test_each_delimiter_character_splits_and_backticks_name_multi_character_delimiters() -> None:
    assert split_pieces("a.b!c", ".!") == ["a.", "b!", "c"]
    assert split_pieces("one##two#three", "`##`") == ["one##", "two#three"]


def test_overlap_repeats_the_tail_of_the_previous_chunk() -> None:
    text = "a1 a2 a3 a4. b1 b2 b3 b4. c1 c2 c3 c4."
    chunks = chunk_sections(
        [text], ChunkingConfig(chunk_token_num=5, delimiter=".", overlapped_percent=40)
    )
    assert chunks[0].startswith("a1")
    assert chunks[1].startswith("a4")  # 40% of 5 tokens = 2 tokens of overlap: "a4" and "."


def test_overlap_is_read_as_percent_or_as_fraction() -> None:
    assert ChunkingConfig.from_parser_config({"overlapped_percent": 10}).overlapped_percent == 10
    assert ChunkingConfig.from_parser_config({"overlapped_percent": 0.1}).overlapped_percent == 10


def test_config_from_ragflow_parser_config_uses_defaults_for_missing_fields() -> None:
    config = ChunkingConfig.from_parser_config({"chunk_token_num": 128, "delimiter": ""})
    assert config == ChunkingConfig(chunk_token_num=128, delimiter="\n", overlapped_percent=0)


def test_a_chunk_larger_than_the_content_column_is_split_without_losing_text() -> None:
    # 8,000 long words are under the 8,192-token limit but make one chunk of ~256 kB.
    text = " ".join([f"aerodynamically{i:016d}" for i in range(8_000)])
    chunks = chunk_sections([text], ChunkingConfig(chunk_token_num=8192, delimiter="\n"))
    assert len(chunks) > 1
    assert all(len(c.encode()) <= CHUNK_CONTENT_MAX_BYTES for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_a_run_without_whitespace_is_cut_at_character_boundaries() -> None:
    text = "é" * 50  # 100 bytes, no whitespace
    pieces = split_by_bytes(text, max_bytes=33)
    assert all(len(p.encode()) <= 33 for p in pieces)
    assert "".join(pieces) == text


def test_fit_utf8_never_cuts_a_character_in_half() -> None:
    assert fit_utf8("aé😀", 4) == "aé"
    assert fit_utf8("abc", 10) == "abc"
