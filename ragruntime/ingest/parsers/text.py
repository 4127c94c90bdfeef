"""Plain-text formats: TXT, Markdown, JSON/JSON Lines, CSV/TSV -> text sections."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from ragruntime.errors import ParseError


def decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise ParseError("file is not valid UTF-8/UTF-16 text")


def parse_text(data: bytes) -> list[str]:
    return [decode(data)]


def parse_markdown(data: bytes) -> list[str]:
    """Sections start at headings, so a chunk rarely straddles two topics."""
    text = decode(data)
    sections: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if re.match(r"^#{1,6}\s", line) and current:
            sections.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        sections.append("\n".join(current))
    return sections


def _flatten(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", out)
    else:
        out.append(f"{path}: {value}" if path else str(value))


def parse_json(data: bytes) -> list[str]:
    """Each top-level record becomes one section of ``path: value`` lines."""
    try:
        document = json.loads(decode(data))
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc}") from exc
    records = document if isinstance(document, list) else [document]
    sections = []
    for record in records:
        lines: list[str] = []
        _flatten(record, "", lines)
        sections.append("\n".join(lines))
    return sections


def parse_json_lines(data: bytes) -> list[str]:
    sections = []
    for number, line in enumerate(decode(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ParseError(f"invalid JSON on line {number}: {exc}") from exc
        lines: list[str] = []
        _flatten(record, "", lines)
        sections.append("\n".join(lines))
    return sections


def rows_to_sections(rows: list[list[str]]) -> list[str]:
    """Table rows -> one section per row, ``header: value`` pairs (RAGFlow's table style)."""
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    if not body:
        return ["; ".join(header)]
    sections = []
    for row in body:
        pairs = [
            f"{header[i] if i < len(header) and header[i] else f'column {i + 1}'}: {cell}"
            for i, cell in enumerate(row)
            if cell.strip()
        ]
        sections.append("; ".join(pairs))
    return sections


def parse_csv(data: bytes, delimiter: str = ",") -> list[str]:
    try:
        rows = list(csv.reader(io.StringIO(decode(data)), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise ParseError(f"invalid CSV: {exc}") from exc
    return rows_to_sections(rows)


def parse_tsv(data: bytes) -> list[str]:
    return parse_csv(data, delimiter="\t")
