"""PDF -> one text section per page (pypdf). Encrypted or broken files raise ParseError.

Decompression is capped per stream (``ParseLimits.max_stream_bytes``, for every filter pypdf
decodes) and the page count by ``ParseLimits.max_pages``, so a small file that unpacks to
gigabytes fails fast with a clear message instead of keeping a worker busy.
"""

from __future__ import annotations

import io

from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError

from ragruntime.errors import ParseError
from ragruntime.ingest.parsers.limits import current


def parse_pdf(data: bytes) -> list[str]:
    if not data.startswith(b"%PDF"):
        raise ParseError("not a PDF file (missing %PDF header)")
    limits = current()
    cap = limits.max_stream_bytes
    with apply_configuration(
        maximum_declared_stream_length=cap,
        array_based_stream_maximum_output_length=cap,
        jbig2_maximum_output_length=cap,
        lzw_maximum_output_length=cap,
        run_length_maximum_output_length=cap,
        zlib_maximum_output_length=cap,
        brotli_maximum_output_length=cap,
    ):
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise ParseError("encrypted PDF is not supported")
        pages = len(reader.pages)
        if pages > limits.max_pages:
            raise ParseError(f"PDF has {pages} pages (limit {limits.max_pages})")
        try:
            return [page.extract_text() or "" for page in reader.pages]
        except LimitReachedError as exc:
            message = f"PDF stream exceeds the decompression limit ({cap} bytes): {exc}"
            raise ParseError(message) from None
