"""Chunking that honours a dataset's ``parser_config`` as RAGFlow's "naive" method does.

Sections are split at every ``delimiter`` (each character is a delimiter; a multi-character one
is written between backticks, e.g. "`##`"), then pieces are merged greedily until a chunk
reaches ``chunk_token_num`` tokens; ``overlapped_percent`` (0-90) repeats the tail of the
previous chunk at the start of the next. A piece longer than the limit is cut by tokens, and a
chunk whose UTF-8 form is larger than the vector store's content column (a long run of
non-ASCII text, a very long "word") is split again at whitespace or character boundaries, so no
text is ever cut off.
Tokens are words and single punctuation/CJK characters (``count_tokens``), an approximation of
RAGFlow's tokenizer that needs no model. Pure functions, called by ``ragruntime.ingest.pipeline``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ragruntime.models import CHUNK_CONTENT_MAX_BYTES, fit_utf8

TOKEN_RE = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


@dataclass(frozen=True)
class ChunkingConfig:
    chunk_token_num: int = 512
    delimiter: str = "\n"
    overlapped_percent: int = 0

    @classmethod
    def from_parser_config(cls, config: dict[str, Any]) -> ChunkingConfig:
        tokens = int(config.get("chunk_token_num") or 512)
        raw_overlap = float(config.get("overlapped_percent") or 0)
        # RAGFlow's forms use percent (10), its pipeline DSL a fraction (0.1): accept both.
        overlap = round(raw_overlap * 100) if 0 < raw_overlap < 1 else int(raw_overlap)
        delimiter = config.get("delimiter")
        return cls(
            chunk_token_num=max(1, min(tokens, 8192)),
            delimiter="\n" if delimiter is None or delimiter == "" else str(delimiter),
            overlapped_percent=max(0, min(overlap, 90)),
        )


def count_tokens(text: str) -> int:
    return len(TOKEN_RE.findall(text))


def delimiter_pattern(delimiter: str) -> re.Pattern[str]:
    """The split pattern of ``delimiter``; ``ValueError`` when its escapes are invalid."""
    if "\\" in delimiter:
        try:
            delimiter = delimiter.encode().decode("unicode_escape")
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid escape sequence in delimiter ({exc.reason})") from None
    multi = re.findall(r"`([^`]+)`", delimiter)
    singles = re.sub(r"`[^`]+`", "", delimiter)
    alternatives = [re.escape(m) for m in sorted(multi, key=len, reverse=True)]
    alternatives += [re.escape(ch) for ch in dict.fromkeys(singles)]
    return re.compile("(" + "|".join(alternatives) + ")") if alternatives else re.compile("(\n)")


def split_pieces(text: str, delimiter: str) -> list[str]:
    """Split after each delimiter, keeping it with the preceding piece."""
    parts = delimiter_pattern(delimiter).split(text)
    pieces: list[str] = []
    for index in range(0, len(parts), 2):
        piece = parts[index] + (parts[index + 1] if index + 1 < len(parts) else "")
        if piece.strip():
            pieces.append(piece)
    return pieces


def _cut_long(piece: str, limit: int) -> list[str]:
    spans = [m.span() for m in TOKEN_RE.finditer(piece)]
    if len(spans) <= limit:
        return [piece]
    starts = [spans[i][0] for i in range(0, len(spans), limit)]
    ends = [*starts[1:], len(piece)]
    return [piece[start:end] for start, end in zip(starts, ends, strict=True)]


def _tail(text: str, tokens: int) -> str:
    spans = [m.span() for m in TOKEN_RE.finditer(text)]
    if tokens <= 0 or not spans:
        return ""
    return text[spans[max(0, len(spans) - tokens)][0] :]


def chunk_sections(sections: list[str], config: ChunkingConfig) -> list[str]:
    """Merge delimiter-split pieces of all sections into chunks of at most the token limit."""
    limit = config.chunk_token_num
    overlap_tokens = limit * config.overlapped_percent // 100
    chunks: list[str] = []
    current = ""
    current_tokens = 0
    for section in sections:
        for raw_piece in split_pieces(section, config.delimiter):
            for piece in _cut_long(raw_piece, limit):
                piece_tokens = count_tokens(piece)
                if current and current_tokens + piece_tokens > limit:
                    chunks.append(current.strip())
                    current = _tail(current, overlap_tokens)
                    if current:
                        current += " "
                    current_tokens = count_tokens(current)
                current += piece
                current_tokens += piece_tokens
        if current.strip() and current_tokens >= limit:
            chunks.append(current.strip())
            current, current_tokens = "", 0
        elif current and not current.endswith("\n"):
            current += "\n"
    if current.strip():
        chunks.append(current.strip())
    return [piece for chunk in chunks if chunk for piece in split_by_bytes(chunk)]


def split_by_bytes(text: str, max_bytes: int = CHUNK_CONTENT_MAX_BYTES) -> list[str]:
    """``text`` in pieces of at most ``max_bytes`` UTF-8 bytes, cut after whitespace if possible.

    Joined back (with the whitespace at the cuts) the pieces are ``text``: nothing is dropped.
    """
    pieces: list[str] = []
    rest = text
    while len(rest.encode()) > max_bytes:
        head = fit_utf8(rest, max_bytes)
        cut = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
        if cut > len(head) // 2:
            head = head[: cut + 1]
        if head.strip():
            pieces.append(head.strip())
        rest = rest[len(head) :]
    if rest.strip():
        pieces.append(rest.strip())
    return pieces
