"""Every supported format parses to text; unsupported and corrupt files fail specifically."""

from __future__ import annotations

import pytest

from ragruntime.errors import ParseError
from ragruntime.ingest.parsers import parse_document
from tests.unit.runtime.documents_factory import DISTINCTIVE, every_format


@pytest.mark.parametrize("name", sorted(DISTINCTIVE))
def test_each_format_yields_its_text(name: str) -> None:
    sections = parse_document(name, every_format()[name])
    assert DISTINCTIVE[name] in " ".join(sections).lower()


def test_html_drops_scripts_and_csv_keeps_headers() -> None:
    files = every_format()
    assert "ignored" not in " ".join(parse_document("page.html", files["page.html"]))
    assert parse_document("table.csv", files["table.csv"]) == [
        "animal: dingo; habitat: Australian outback"
    ]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("image.bmp", b"BM....", "unsupported file type '.bmp'"),
        ("broken.pdf", b"%PDF-1.4 nonsense", "cannot parse broken.pdf"),
        ("fake.pdf", b"hello", "missing %PDF header"),
        ("fake.docx", b"not a zip", "not a valid DOCX"),
        ("fake.xlsx", b"PK\x03\x04truncated", "XLSX"),
        ("bad.json", b"{oops", "invalid JSON"),
        ("empty.txt", b"   ", "no text found"),
    ],
)
def test_bad_files_raise_a_specific_parse_error(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason.replace("(", r"\(").replace(".", r"\.")):
        parse_document(name, data)
