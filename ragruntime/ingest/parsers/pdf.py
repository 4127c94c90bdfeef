"""PDF -> one text section per page (pypdf). Encrypted or broken files raise ParseError."""

from __future__ import annotations

import io

from pypdf import PdfReader

from ragruntime.errors import ParseError


def parse_pdf(data: bytes) -> list[str]:
    if not data.startswith(b"%PDF"):
        raise ParseError("not a PDF file (missing %PDF header)")
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        raise ParseError("encrypted PDF is not supported")
    return [page.extract_text() or "" for page in reader.pages]
