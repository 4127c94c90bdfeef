"""File parsers: bytes of one document -> a list of text sections, by file suffix.

``parse_document(name, data)`` picks the parser from the suffix; an unsupported suffix or a
corrupt file raises ``ParseError`` with a specific message, which the pipeline records as that
document's failure (the rest of the batch continues). Called by ``ragruntime.ingest.pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from ragruntime.errors import ParseError
from ragruntime.ingest.parsers import html, office, pdf, text

Parser = Callable[[bytes], list[str]]

PARSERS: dict[str, Parser] = {
    "txt": text.parse_text,
    "text": text.parse_text,
    "log": text.parse_text,
    "md": text.parse_markdown,
    "markdown": text.parse_markdown,
    "json": text.parse_json,
    "jsonl": text.parse_json_lines,
    "csv": text.parse_csv,
    "tsv": text.parse_tsv,
    "html": html.parse_html,
    "htm": html.parse_html,
    "pdf": pdf.parse_pdf,
    "docx": office.parse_docx,
    "xlsx": office.parse_xlsx,
    "pptx": office.parse_pptx,
}


#: Formats whose parser only decodes text: no decompression, no layout engine, time and memory
#: linear in the input. A small one is safe to parse without a sandbox (ingest/sandbox.py).
PLAIN_TEXT = frozenset({"txt", "text", "log", "md", "markdown", "json", "jsonl", "csv", "tsv"})


def suffix_of(name: str) -> str:
    return PurePath(name).suffix.lower().lstrip(".")


def is_supported(name: str) -> bool:
    return suffix_of(name) in PARSERS


def document_type(name: str) -> str:
    """RAGFlow's coarse document ``type`` field."""
    suffix = suffix_of(name)
    if suffix == "pdf":
        return "pdf"
    if suffix in ("pptx",):
        return "presentation"
    return "doc"


def parse_document(name: str, data: bytes) -> list[str]:
    suffix = suffix_of(name)
    parser = PARSERS.get(suffix)
    if parser is None:
        raise ParseError(f"unsupported file type '.{suffix}' ({name})")
    try:
        sections = parser(data)
    except ParseError:
        raise
    except Exception as exc:  # each library raises its own types for corrupt input
        raise ParseError(f"cannot parse {name} as {suffix}: {type(exc).__name__}: {exc}") from exc
    sections = [s.strip() for s in sections if s and s.strip()]
    if not sections:
        raise ParseError(f"no text found in {name}")
    return sections
