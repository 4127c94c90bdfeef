"""Per-document parsing limits the parsers enforce: pages, decompressed sizes, compression ratio.

``ragruntime.ingest.sandbox`` sets them (from the runtime's settings) in the child process that
parses one document; code that calls ``parse_document`` directly gets the defaults.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from ragruntime.errors import ParseError

MIB = 1024 * 1024


@dataclass(frozen=True)
class ParseLimits:
    max_pages: int = 2000
    """PDF pages and PPTX slides."""
    max_stream_bytes: int = 32 * MIB
    """Largest decompressed PDF stream or ZIP member (DOCX/XLSX/PPTX part)."""
    max_unpacked_bytes: int = 256 * MIB
    """All ZIP members of one document together, decompressed."""
    max_ratio: int = 200
    """Largest decompressed/compressed ratio of a ZIP member bigger than 1 MiB."""


DEFAULT = ParseLimits()
_CURRENT: ContextVar[ParseLimits] = ContextVar("parse_limits", default=DEFAULT)


def current() -> ParseLimits:
    return _CURRENT.get()


@contextmanager
def applied(limits: ParseLimits) -> Iterator[ParseLimits]:
    token = _CURRENT.set(limits)
    try:
        yield limits
    finally:
        _CURRENT.reset(token)


def check_zip(data: bytes, kind: str) -> None:
    """Refuse a ZIP container that would unpack beyond the limits (a decompression bomb)."""
    limits = current()
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile as exc:
        raise ParseError(f"not a valid {kind} file (not a ZIP container)") from exc
    total = 0
    for member in members:
        total += member.file_size
        if member.file_size > limits.max_stream_bytes:
            raise ParseError(
                f"{kind} part {member.filename} unpacks to {member.file_size} bytes "
                f"(limit {limits.max_stream_bytes})"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > MIB and ratio > limits.max_ratio:
            raise ParseError(
                f"{kind} part {member.filename} is compressed {ratio:.0f}:1 "
                f"(limit {limits.max_ratio}:1)"
            )
    if total > limits.max_unpacked_bytes:
        raise ParseError(f"{kind} unpacks to {total} bytes (limit {limits.max_unpacked_bytes})")
