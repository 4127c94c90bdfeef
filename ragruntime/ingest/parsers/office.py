"""Office Open XML: DOCX paragraphs and tables, XLSX sheets as rows, PPTX slides."""

from __future__ import annotations

import io
import zipfile

import docx
import openpyxl
from pptx import Presentation

from ragruntime.errors import ParseError
from ragruntime.ingest.parsers.limits import check_zip, current
from ragruntime.ingest.parsers.text import rows_to_sections


def _require_zip(data: bytes, kind: str) -> None:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ParseError(f"not a valid {kind} file (not a ZIP container)")
    check_zip(data, kind)


def parse_docx(data: bytes) -> list[str]:
    _require_zip(data, "DOCX")
    document = docx.Document(io.BytesIO(data))
    sections: list[str] = []
    current: list[str] = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        if paragraph.style is not None and paragraph.style.name.startswith("Heading") and current:
            sections.append("\n".join(current))
            current = []
        current.append(text)
    if current:
        sections.append("\n".join(current))
    for table in document.tables:
        rows = [[cell.text.strip() for cell in row.cells] for row in table.rows]
        sections.extend(rows_to_sections(rows))
    return sections


def parse_xlsx(data: bytes) -> list[str]:
    _require_zip(data, "XLSX")
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sections: list[str] = []
    try:
        for sheet in workbook.worksheets:
            rows = [
                ["" if cell is None else str(cell) for cell in row]
                for row in sheet.iter_rows(values_only=True)
            ]
            sections.extend(f"{sheet.title}: {s}" for s in rows_to_sections(rows))
    finally:
        workbook.close()
    return sections


def parse_pptx(data: bytes) -> list[str]:
    _require_zip(data, "PPTX")
    presentation = Presentation(io.BytesIO(data))
    slides = len(presentation.slides)
    if slides > current().max_pages:
        raise ParseError(f"PPTX has {slides} slides (limit {current().max_pages})")
    sections = []
    for number, slide in enumerate(presentation.slides, start=1):
        texts = [
            shape.text_frame.text.strip()
            for shape in slide.shapes
            if shape.has_text_frame and shape.text_frame.text.strip()
        ]
        if texts:
            sections.append(f"Slide {number}\n" + "\n".join(texts))
    return sections
