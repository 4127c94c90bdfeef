"""Parse and chunk one document in a child process, under a time and memory budget.

A parser stuck on a hostile file (a decompression bomb, a pathological layout) must neither hold
a worker for minutes nor take the runtime's memory: the document is parsed by a forked child
(``forkserver``, so no thread or lock of the runtime is inherited) whose address space is capped
(``RLIMIT_AS``), and the parent kills it when the time budget is spent or when ``checkpoint``
raises (the task was cancelled or the worker is stopping). Every failure comes back as a
``ParseError`` with the real reason, which the pipeline shows on the document (``progress_msg``).
Called by ``ragruntime.ingest.pipeline``.

The one exception: a **small plain-text document** (a format in ``parsers.PLAIN_TEXT``, at most
``ParseBudget.inline_max_bytes``, 32 KiB by default) is parsed and chunked in the calling thread.
Its parser only decodes text, so it cannot unpack a bomb, and at that size the worst input
measured (every line a Markdown heading, parsed as CSV) took 57 ms, typical ones well under
1 ms, while starting a sandbox child costs 7-11 ms per document: for many small documents the
sandbox was most of the parse time (docs/runtime.md, "Parsing under a budget").
"""

from __future__ import annotations

import multiprocessing
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ragruntime.config import Settings
from ragruntime.errors import ParseError
from ragruntime.ingest.chunking import ChunkingConfig, chunk_sections
from ragruntime.ingest.parsers import PLAIN_TEXT, parse_document, suffix_of
from ragruntime.ingest.parsers.limits import ParseLimits, applied

MIB = 1024 * 1024
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class ParseBudget:
    seconds: float = 120.0
    memory_bytes: int = 1024 * MIB
    """Address space the child may add to what it starts with."""
    limits: ParseLimits = field(default_factory=ParseLimits)
    inline_max_bytes: int = 32 * 1024
    """A plain-text document up to this size is parsed in the calling thread (0: never)."""


def budget_of(settings: Settings) -> ParseBudget:
    """The budget the runtime's settings give each document."""
    return ParseBudget(
        seconds=settings.parse_timeout_seconds,
        memory_bytes=settings.parse_memory_mb * MIB,
        limits=ParseLimits(
            max_pages=settings.parse_max_pages,
            max_stream_bytes=settings.parse_max_stream_mb * MIB,
            max_unpacked_bytes=settings.parse_max_unpacked_mb * MIB,
            max_ratio=settings.parse_max_ratio,
        ),
        inline_max_bytes=settings.parse_inline_max_kb * 1024,
    )


def parses_inline(name: str, size: int, budget: ParseBudget) -> bool:
    """Whether a document is small plain text, parsed without a sandbox process."""
    return size <= budget.inline_max_bytes and suffix_of(name) in PLAIN_TEXT


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    # The fork server imports the parsers once; each document's child is a cheap fork of it.
    context.set_forkserver_preload(["ragruntime.ingest.sandbox"])
    return context


def _address_space() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * resource.getpagesize()


def _child(
    conn: Connection, name: str, data: bytes, parser_config: dict[str, Any], budget: ParseBudget
) -> None:
    """Runs in the child: limit itself, parse, chunk, send ``("ok", chunks)`` or an error."""
    try:
        limit = _address_space() + budget.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        cpu = int(budget.seconds) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        with applied(budget.limits):
            sections = parse_document(name, data)
        del data
        texts = chunk_sections(sections, ChunkingConfig.from_parser_config(parser_config))
        conn.send(("ok", texts))
    except ParseError as exc:
        conn.send(("error", str(exc)))
    except MemoryError:
        conn.send(("error", f"parsing {name} needed more than the memory budget"))
    except Exception as exc:  # a chunker or library bug: report it on the document
        traceback.print_exc()
        conn.send(("error", f"cannot parse {name}: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _parse_here(name: str, data: bytes, parser_config: dict[str, Any]) -> list[str]:
    """The child's work in this thread, its failures reported the same way."""
    try:
        sections = parse_document(name, data)
        return chunk_sections(sections, ChunkingConfig.from_parser_config(parser_config))
    except ParseError:
        raise
    except Exception as exc:  # a chunker bug (a RecursionError on deep JSON...): on the document
        raise ParseError(f"cannot parse {name}: {type(exc).__name__}: {exc}") from exc


def _budget_error(name: str, budget: ParseBudget, exitcode: int | None) -> ParseError:
    if exitcode is not None and exitcode < 0:
        reason = f"the parser process was killed by signal {-exitcode}"
    else:
        reason = f"the parser process exited with status {exitcode}"
    return ParseError(
        f"cannot parse {name}: {reason} (budget: {budget.seconds:g} s, "
        f"{budget.memory_bytes // MIB} MiB)"
    )


def parse_and_chunk(
    name: str,
    data: bytes,
    parser_config: dict[str, Any],
    budget: ParseBudget,
    checkpoint: Callable[[], None],
) -> list[str]:
    """The chunk texts of one document, parsed in a child process under ``budget``.

    ``checkpoint`` is called about every second while the child works; whatever it raises
    (cancellation, shutdown) propagates after the child is killed. Small plain text is parsed
    here instead (``parses_inline``), with the same errors.
    """
    if parses_inline(name, len(data), budget):
        return _parse_here(name, data, parser_config)
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(sender, name, data, parser_config, budget), daemon=True
    )
    started = time.monotonic()
    process.start()
    sender.close()
    try:
        while not receiver.poll(POLL_SECONDS):
            if not process.is_alive() and not receiver.poll(0):
                raise _budget_error(name, budget, process.exitcode)
            if time.monotonic() - started > budget.seconds:
                raise ParseError(
                    f"parsing {name} took longer than its budget of {budget.seconds:g} s"
                )
            checkpoint()
        try:
            kind, payload = receiver.recv()
        except EOFError:
            process.join(1)
            raise _budget_error(name, budget, process.exitcode) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receiver.close()
    if kind != "ok":
        raise ParseError(str(payload))
    return list(payload)
