"""Parsing in a child process under a budget: decompression bombs fail fast with the reason,
a parse over its time budget is killed, a checkpoint that raises (cancel) kills the child."""

from __future__ import annotations

import time

import pytest

from ragruntime.errors import ParseError, TaskLost
from ragruntime.ingest.parsers import parse_document
from ragruntime.ingest.parsers.limits import MIB, ParseLimits, applied
from ragruntime.ingest.sandbox import ParseBudget, parse_and_chunk
from tests.fixtures.processes import parser_processes
from tests.unit.runtime.documents_factory import pdf_bomb, zip_bomb_docx

SLOW = ParseLimits(max_stream_bytes=200 * MIB)  # lets the bomb through: its parse is slow


def test_a_small_document_is_parsed_and_chunked_in_the_child() -> None:
    texts = parse_and_chunk(
        "a.txt", b"alpha beta\ngamma", {"chunk_token_num": 2}, ParseBudget(), lambda: None
    )
    assert texts == ["alpha beta", "gamma"]


def test_a_pdf_decompression_bomb_fails_fast_with_the_reason() -> None:
    started = time.monotonic()
    with pytest.raises(ParseError, match="decompression limit"):
        parse_and_chunk("bomb.pdf", pdf_bomb(), {}, ParseBudget(seconds=60), lambda: None)
    assert time.monotonic() - started < 20


def test_too_many_pages_and_zip_bombs_are_refused_by_the_parsers() -> None:
    with applied(ParseLimits(max_pages=5)), pytest.raises(ParseError, match="10 pages"):
        parse_document("many.pdf", pdf_bomb(pages=10, stream_mib=1))
    with pytest.raises(ParseError, match=r"compressed \d+:1"):
        parse_document("bomb.docx", zip_bomb_docx(16))
    with applied(ParseLimits(max_stream_bytes=8 * MIB)), pytest.raises(ParseError, match="limit"):
        parse_document("bomb.docx", zip_bomb_docx(16))


def test_a_parse_over_its_time_budget_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(ParseError, match="longer than its budget of 2 s"):
        parse_and_chunk("slow.pdf", pdf_bomb(), {}, ParseBudget(2, limits=SLOW), lambda: None)
    assert time.monotonic() - started < 15
    assert not parser_processes()


def test_a_memory_hungry_parse_fails_with_the_reason() -> None:
    budget = ParseBudget(60, memory_bytes=64 * MIB, limits=SLOW)
    with pytest.raises(ParseError, match=r"MemoryError|memory budget|killed"):
        parse_and_chunk("big.pdf", pdf_bomb(), {}, budget, lambda: None)


def test_a_raising_checkpoint_kills_the_parse_at_once() -> None:
    calls = []

    def cancelled() -> None:
        calls.append(time.monotonic())
        if len(calls) >= 2:
            raise TaskLost("cancelled")

    started = time.monotonic()
    with pytest.raises(TaskLost):
        parse_and_chunk("slow.pdf", pdf_bomb(), {}, ParseBudget(120, limits=SLOW), cancelled)
    assert time.monotonic() - started < 10
    assert not parser_processes()


def test_a_chunker_error_is_reported_not_raised_raw() -> None:
    with pytest.raises(ParseError, match=r"cannot parse a\.txt: ValueError"):
        parse_and_chunk("a.txt", b"x", {"chunk_token_num": "abc"}, ParseBudget(), lambda: None)
