"""Parsing in a child process under a budget: decompression bombs fail fast with the reason,
a parse over its time budget is killed, a checkpoint that raises (cancel) kills the child."""

from __future__ import annotations

import re
import time

import pytest

from ragruntime.errors import ParseError, TaskLost
from ragruntime.ingest import sandbox
from ragruntime.ingest.parsers import parse_document
from ragruntime.ingest.parsers.limits import MIB, ParseLimits, applied
from ragruntime.ingest.sandbox import ParseBudget, parse_and_chunk, parses_inline
from tests.fixtures.processes import parser_processes
from tests.unit.runtime.documents_factory import pdf_bomb, zip_bomb_docx

SLOW = ParseLimits(max_stream_bytes=200 * MIB)  # lets the bomb through: its parse is slow
sandbox_context = sandbox._context


SANDBOXED = ParseBudget(inline_max_bytes=0)  # even small plain text goes to a child


def test_a_small_document_is_parsed_and_chunked_in_the_child() -> None:
    texts = parse_and_chunk(
        "a.txt", b"alpha beta\ngamma", {"chunk_token_num": 2}, SANDBOXED, lambda: None
    )
    assert texts == ["alpha beta", "gamma"]


class NoChildren:
    """Stands in for the multiprocessing context: fails the test if a child is started."""

    def Pipe(self, duplex: bool) -> None:
        raise AssertionError("a sandbox process was started")


def test_small_plain_text_is_parsed_in_the_thread_with_the_same_results_and_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inline = ParseBudget(inline_max_bytes=128)
    cases = [
        ("a.txt", b"alpha beta\ngamma", {"chunk_token_num": 2}),
        ("a.md", b"# one\ntext\n# two\nmore", {}),
        ("a.csv", b"h1,h2\n1,2\n", {}),
        ("a.json", b'{"k": [1, 2]}', {}),
        ("bad.txt", b"\xff\xfe\x00\xd8", {}),  # not UTF-8/UTF-16
        ("deep.json", b"[" * 60 + b"]" * 60, {}),  # no text in it
        ("a.txt", b"x", {"chunk_token_num": "abc"}),  # a chunker error
    ]
    in_children = [_outcome(name, data, config, SANDBOXED) for name, data, config in cases]
    monkeypatch.setattr(sandbox, "_context", NoChildren)
    in_thread = [_outcome(name, data, config, inline) for name, data, config in cases]
    assert in_thread == in_children
    assert in_thread[0] == ["alpha beta", "gamma"]
    assert "not valid UTF-8" in str(in_thread[4])
    assert re.match(r"cannot parse a\.txt: ValueError", str(in_thread[6]))


def test_what_is_not_small_plain_text_still_goes_to_a_child() -> None:
    budget = ParseBudget(inline_max_bytes=1024)
    assert parses_inline("a.TXT", 1024, budget) and parses_inline("b.jsonl", 10, budget)
    assert not parses_inline("a.txt", 1025, budget)
    assert not parses_inline("a.html", 10, budget)  # a real parser library
    assert not parses_inline("a.pdf", 10, budget) and not parses_inline("a.docx", 10, budget)
    assert not parses_inline("a.txt", 10, SANDBOXED)


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
        parse_and_chunk("a.txt", b"x", {"chunk_token_num": "abc"}, SANDBOXED, lambda: None)


def _outcome(name: str, data: bytes, config: dict[str, object], budget: ParseBudget) -> object:
    """The chunks, or the ParseError's message."""
    try:
        return parse_and_chunk(name, data, config, budget, lambda: None)
    except ParseError as exc:
        return str(exc)
