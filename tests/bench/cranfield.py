"""Cranfield collection loader and the IR metrics the retrieval benchmarks report.

Pure code (standard library only): parses the SMART-format files of the Cranfield collection
(``cran.all.1400``, ``cran.qry``, ``cranqrel.dev``) and computes nDCG@k, recall@k and reciprocal
rank over ranked lists of document ids. Used by tests/bench/bench_retrieval_quality.py (and the
synthetic-text generator of bench_query_latency.py); unit-tested in tests/unit/bench.

Choices, stated once here and in docs/benchmarks.md:
- A document is its title and its abstract (``.T`` + ``.W``) joined by a newline; authors and
  bibliography are left out, as the collection's README says.
- Queries are numbered by their position in ``cran.qry`` (1..225): the judgements use that
  position, not the ``.I`` value, which skips numbers.
- Grades map to gains ``5 - grade`` (1 -> 4 ... 4 -> 1); grade -1 (placeholder, "no relevant
  document") and anything else -> 0. "Relevant" for recall and MRR means gain > 0.
- Queries without any relevant document are left out of the means (their nDCG is undefined).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CRANFIELD_DIR_ENV = "RAGFLOW_CRANFIELD_DIR"
DEFAULT_CRANFIELD_DIR = REPO_ROOT.parent / "shared" / "data" / "cranfield"
DOCUMENTS_FILE = "cran.all.1400"
QUERIES_FILE = "cran.qry"
DEV_QRELS_FILE = "cranqrel.dev"


@dataclass(frozen=True)
class CranfieldDocument:
    """One abstract: its id as written after ``.I`` (``"1"``..``"1400"``), title and abstract."""

    doc_id: str
    title: str
    abstract: str

    @property
    def text(self) -> str:
        """The indexed text: title, newline, abstract."""
        return f"{self.title}\n{self.abstract}".strip()


@dataclass(frozen=True)
class CranfieldQuery:
    """One query: its position in cran.qry (the id the judgements use), its ``.I`` and text."""

    position: int
    original_id: str
    text: str


@dataclass(frozen=True)
class RetrievalScores:
    """Mean metrics of one run over the judged queries."""

    ndcg_at_10: float
    recall_at_100: float
    mrr: float
    queries: int


def cranfield_dir() -> Path:
    """Where the collection lives: ``$RAGFLOW_CRANFIELD_DIR`` or ``../shared/data/cranfield``."""
    configured = os.environ.get(CRANFIELD_DIR_ENV)
    directory = Path(configured) if configured else DEFAULT_CRANFIELD_DIR
    if not (directory / DOCUMENTS_FILE).is_file():
        raise FileNotFoundError(
            f"Cranfield collection not found in {directory} (set {CRANFIELD_DIR_ENV})"
        )
    return directory


def parse_smart_records(text: str) -> list[tuple[str, dict[str, str]]]:
    """Split SMART-format text into ``(id, {field letter: text})`` records, in file order.

    A record starts with ``.I <id>``; a line ``.X`` (one letter) starts field X; other lines
    belong to the current field. Field text is whitespace-normalised.
    """
    records: list[tuple[str, dict[str, list[str]]]] = []
    current_field: str | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line.startswith(".I ") or line == ".I":
            records.append((line[2:].strip(), {}))
            current_field = None
        elif len(line) == 2 and line.startswith(".") and line[1].isalpha():
            current_field = line[1].upper()
            if records:
                records[-1][1].setdefault(current_field, [])
        elif records and current_field is not None:
            records[-1][1][current_field].append(line)
    return [
        (record_id, {name: " ".join(" ".join(lines).split()) for name, lines in fields.items()})
        for record_id, fields in records
    ]


def parse_documents(text: str) -> list[CranfieldDocument]:
    """Documents of a ``cran.all.1400``-style text."""
    return [
        CranfieldDocument(doc_id=record_id, title=fields.get("T", ""), abstract=fields.get("W", ""))
        for record_id, fields in parse_smart_records(text)
    ]


def parse_queries(text: str) -> list[CranfieldQuery]:
    """Queries of a ``cran.qry``-style text, numbered 1.. by position."""
    return [
        CranfieldQuery(position=position, original_id=record_id, text=fields.get("W", ""))
        for position, (record_id, fields) in enumerate(parse_smart_records(text), start=1)
    ]


def gain_for_grade(grade: int) -> int:
    """nDCG gain of a Cleverdon grade: 5 - grade for 1..4, else 0 (-1 = placeholder)."""
    return 5 - grade if 1 <= grade <= 4 else 0


def parse_qrels(text: str) -> dict[int, dict[str, int]]:
    """Judgements ``query_position doc_id grade`` -> ``{query: {doc_id: gain}}`` (gain > 0 only).

    Every query that appears gets an entry, possibly empty (only placeholders). A document
    judged twice keeps its highest gain.
    """
    qrels: dict[int, dict[str, int]] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise ValueError(f"qrels line {line_number}: expected 3 fields, got {line!r}")
        query, doc_id, grade = int(fields[0]), str(int(fields[1])), int(fields[2])
        judged = qrels.setdefault(query, {})
        gain = gain_for_grade(grade)
        if gain > 0:
            judged[doc_id] = max(gain, judged.get(doc_id, 0))
    return qrels


def load_documents(directory: Path) -> list[CranfieldDocument]:
    """The 1,400 documents."""
    return parse_documents((directory / DOCUMENTS_FILE).read_text(encoding="utf-8"))


def load_queries(directory: Path) -> list[CranfieldQuery]:
    """The 225 queries, numbered by position."""
    return parse_queries((directory / QUERIES_FILE).read_text(encoding="utf-8"))


def load_dev_qrels(directory: Path) -> dict[int, dict[str, int]]:
    """Development-split judgements (queries 1..150) as gains."""
    return parse_qrels((directory / DEV_QRELS_FILE).read_text(encoding="utf-8"))


def dcg_at_k(gains: Iterable[float], k: int) -> float:
    """Discounted cumulative gain of the first k gains: sum gain_i / log2(i + 1), i from 1."""
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(list(gains)[:k], start=1))


def ndcg_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    """nDCG@k of one ranked list (linear gains; ideal = judged gains sorted, best first)."""
    ideal = dcg_at_k(sorted(gains.values(), reverse=True), k)
    if ideal == 0:
        raise ValueError("nDCG is undefined for a query without relevant documents")
    return dcg_at_k((gains.get(doc_id, 0.0) for doc_id in ranked), k) / ideal


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the relevant documents found in the first k results."""
    wanted = set(relevant)
    if not wanted:
        raise ValueError("recall is undefined for a query without relevant documents")
    return len(wanted.intersection(ranked[:k])) / len(wanted)


def reciprocal_rank(ranked: Sequence[str], relevant: Iterable[str]) -> float:
    """1 / rank of the first relevant result; 0 when none is in the list."""
    wanted = set(relevant)
    for rank, doc_id in enumerate(ranked, start=1):
        if doc_id in wanted:
            return 1.0 / rank
    return 0.0


def unique_in_order(doc_ids: Iterable[str]) -> list[str]:
    """Keep each id's first occurrence: turns a ranked list of chunks into ranked documents."""
    seen: set[str] = set()
    ordered: list[str] = []
    for doc_id in doc_ids:
        if doc_id not in seen:
            seen.add(doc_id)
            ordered.append(doc_id)
    return ordered


def evaluate_run(
    run: Mapping[int, Sequence[str]], qrels: Mapping[int, Mapping[str, int]]
) -> RetrievalScores:
    """Mean nDCG@10, recall@100 and MRR (over the list given, at most 100 deep) of a run.

    ``run`` maps query position -> ranked document ids. Only judged queries with at least one
    relevant document count; a judged query missing from the run scores 0.
    """
    ndcgs: list[float] = []
    recalls: list[float] = []
    reciprocal_ranks: list[float] = []
    for query, gains in sorted(qrels.items()):
        if not gains:
            continue
        ranked = list(run.get(query, ()))[:100]
        ndcgs.append(ndcg_at_k(ranked, gains, 10))
        recalls.append(recall_at_k(ranked, gains, 100))
        reciprocal_ranks.append(reciprocal_rank(ranked, gains))
    if not ndcgs:
        raise ValueError("no judged query with a relevant document")
    return RetrievalScores(
        ndcg_at_10=statistics.fmean(ndcgs),
        recall_at_100=statistics.fmean(recalls),
        mrr=statistics.fmean(reciprocal_ranks),
        queries=len(ndcgs),
    )
