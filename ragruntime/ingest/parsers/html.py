"""HTML -> text sections split at headings, scripts and styles dropped (beautifulsoup4)."""

from __future__ import annotations

from bs4 import BeautifulSoup

from ragruntime.ingest.parsers.text import decode

BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "th", "blockquote"]


def parse_html(data: bytes) -> list[str]:
    soup = BeautifulSoup(decode(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    sections: list[str] = []
    current: list[str] = []
    for element in soup.find_all(BLOCKS):
        if element.find(BLOCKS):
            continue  # the innermost block carries the text
        text = " ".join(element.get_text(" ", strip=True).split())
        if not text:
            continue
        if element.name.startswith("h") and element.name[1:].isdigit() and current:
            sections.append("\n".join(current))
            current = []
        current.append(text)
    if current:
        sections.append("\n".join(current))
    if not sections:
        body = " ".join(soup.get_text(" ", strip=True).split())
        return [body] if body else []
    return sections
