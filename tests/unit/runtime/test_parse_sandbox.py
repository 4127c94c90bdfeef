"""Parsing in a child process under a budget: decompression bombs fail fast with the reason,
a parse over its time budget is killed, a checkpoint that raises (cancel) kills the child."""

from __future__ import annotations

import time

import psutil
import pytest

from ragruntime.errors import ParseError, TaskLost
from ragruntime.ingest.parsers import parse_document
from ragruntime.ingest.parsers.limits import MIB, ParseLimits, applied
from ragruntime.ingest.sandbox import ParseBudget, parse_and_chunk
from tests.unit.runtime.documents_factory import pdf_bomb, zip_bomb_docx

SLOW = ParseLimits(max_stream_bytes=200 * MIB)  # lets the bomb through: its parse is slow


def _is_forkserver(process: psutil.Process) -> bool:
    try:
        return any("multiprocessing.forkserver" in part for part in process.cmdline())
    except psutil.Error:  # gone meanwhile
        return False


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _parser_children() -> list[psutil.Process]:
    """Parser processes: children of the forkserver, itself a child of this test process.

    Only the forkserver's: in a full run this process has other children (servers started by
    fixtures), and their own children are no parsers."""
    return [
        grandchild
        for child in psutil.Process().children()
        if _is_forkserver(child)
        for grandchild in child.children()
        if _alive(grandchild)
    ]


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
    assert not _parser_children()


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
    assert not _parser_children()


def test_a_chunker_error_is_reported_not_raised_raw() -> None:
    with pytest.raises(ParseError, match=r"cannot parse a\.txt: ValueError"):
        parse_and_chunk("a.txt", b"x", {"chunk_token_num": "abc"}, ParseBudget(), lambda: None)
