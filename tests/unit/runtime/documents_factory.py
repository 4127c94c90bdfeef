"""Build small documents of every supported format at test time (no binary fixtures in git)."""

from __future__ import annotations

import io
import json

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
