"""Build small documents of every supported format at test time (no binary fixtures in git)."""

from __future__ import annotations

import io
import json
import zipfile
import zlib

import docx
import openpyxl
from pptx import Presentation
from reportlab.pdfgen import canvas


def pdf_bytes(lines: list[str]) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for number, line in enumerate(lines):
        pdf.drawString(72, 760 - 18 * number, line)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def docx_bytes(heading: str, paragraphs: list[str], table: list[list[str]]) -> bytes:
    document = docx.Document()
    document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    grid = document.add_table(rows=len(table), cols=len(table[0]))
    for r, row in enumerate(table):
        for c, value in enumerate(row):
            grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Prices"
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def pptx_bytes(slides: list[tuple[str, str]]) -> bytes:
    presentation = Presentation()
    for title, body in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def pdf_bomb(pages: int = 10, stream_mib: int = 40) -> bytes:
    """A small PDF whose pages share one Flate content stream of ``stream_mib`` MiB of text
    operators: ~150 kB on disk, minutes of text extraction without a decompression limit."""
    operator = b"BT /F1 12 Tf 72 712 Td (All work and no play makes a parser slow.) Tj ET\n"
    packed = zlib.compress(operator * (stream_mib * 1024 * 1024 // len(operator)), 9)
    font = 4 + pages
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        f"<< /Length {len(packed)} /Filter /FlateDecode >>\nstream\n".encode()
        + packed
        + b"\nendstream",
        *[
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        ]
        * pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def zip_bomb_docx(unpacked_mib: int = 64) -> bytes:
    """A DOCX-shaped ZIP whose document part unpacks ~1000:1."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b" " * (unpacked_mib * 1024 * 1024))
    return buffer.getvalue()


def every_format() -> dict[str, bytes]:
    """One document per supported format, each mentioning a distinctive word."""
    return {
        "notes.txt": b"The aardvark digs burrows at night.",
        "guide.md": b"# Badgers\nThe badger is a short-legged omnivore.\n## More\nSecond section.",
        "record.json": json.dumps({"animal": "capybara", "facts": ["largest rodent"]}).encode(),
        "table.csv": b"animal,habitat\ndingo,Australian outback\n",
        "page.html": b"<html><body><h1>Echidna</h1><p>The echidna lays eggs.</p>"
        b"<script>ignored()</script></body></html>",
        "paper.pdf": pdf_bytes(["The fennec fox has large ears."]),
        "report.docx": docx_bytes(
            "Gazelles", ["The gazelle runs fast."], [["k", "v"], ["gnu", "herd"]]
        ),
        "sheet.xlsx": xlsx_bytes([["animal", "weight"], ["hippopotamus", 1500]]),
        "deck.pptx": pptx_bytes([("Ibex", "The ibex climbs cliffs.")]),
    }


DISTINCTIVE = {
    "notes.txt": "aardvark",
    "guide.md": "badger",
    "record.json": "capybara",
    "table.csv": "dingo",
    "page.html": "echidna",
    "paper.pdf": "fennec",
    "report.docx": "gazelle",
    "sheet.xlsx": "hippopotamus",
    "deck.pptx": "ibex",
}
