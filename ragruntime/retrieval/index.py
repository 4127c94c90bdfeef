"""The query-side index of one dataset: exact dense cosine + BM25, numpy and scipy, in memory.

A ``DatasetIndex`` is an immutable snapshot made of ``Segment``s (like Lucene's): each sync with
the system of record (Milvus, see ``ragruntime.retrieval.sync``) appends one segment with the
documents that changed and marks their older rows dead in a new ``alive`` mask; a compaction
rewrites everything into one segment when dead rows or segments pile up. Searches never lock:
they read whichever snapshot is current.

Per query the cost is one float32 matrix-vector product per segment (exact cosine: the vectors
are unit length), the BM25 postings of the query's terms, and one ``argpartition`` per side;
the result is arrays of candidate rows with their ranks and scores. Payloads (``Chunk``) are
built only for the rows a caller asks for (the returned page). BM25 statistics (N, average
length, document frequency) are over the live rows of the dataset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from ragruntime.models import Chunk
from ragruntime.retrieval import prefilter
from ragruntime.retrieval.analyzer import analyze, term_counts

BM25_K1 = 1.2
BM25_B = 0.75

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def indexed_text(row: Mapping[str, Any]) -> str:
    """What BM25 sees of a chunk: its content, important keywords and questions."""
    extra = [*_json_list(row.get("important_keywords")), *_json_list(row.get("questions"))]
    return "\n".join([str(row.get("content") or ""), *extra])


def _json_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(v) for v in json.loads(value or "[]")]


@dataclass(frozen=True, eq=False)
class Segment:
    """Chunks of whole documents, one generation each; rows are never changed once built."""

    name: str
    ids: list[str]
    doc_ids: list[str]  # per document of the segment
    doc_names: list[str]
    doc_generation: Ints  # per document
    row_doc: Ints  # per row: index into doc_ids
    available: Bools
    vectors: Floats  # (rows, dimension), unit length
    terms: sparse.csc_matrix  # (rows, vocabulary) term frequencies
    vocabulary: dict[str, int]
    lengths: Floats  # analysed terms per row
    content: list[str]
    important_keywords: list[str]  # JSON text, as stored in Milvus
    questions: list[str]
    position: Ints
    created_at: npt.NDArray[np.float64]

    @property
    def size(self) -> int:
        return len(self.ids)

    @cached_property
    def id_array(self) -> npt.NDArray[np.str_]:
        return np.asarray(self.ids, dtype=str)

    @cached_property
    def doc_id_array(self) -> npt.NDArray[np.str_]:
        return np.asarray(self.doc_ids, dtype=str)

    @cached_property
    def quantized(self) -> prefilter.QuantizedScan | None:
        """The int8 pre-filter of a large segment (``prefilter.MIN_ROWS``), else None."""
        return prefilter.QuantizedScan(self.vectors) if self.size >= prefilter.MIN_ROWS else None

    def dense_top(self, query: Floats, mask: Bools, k: int) -> tuple[Ints, Floats]:
        """The ``k`` rows of ``mask`` most similar to the unit ``query``: (rows, cosines).

        Exact scan, or for a large segment the int8 pre-filter's candidates re-scored exactly."""
        scan = self.quantized
        if scan is None or k * prefilter.RERANK_FACTOR >= self.size:
            exact = self.vectors @ query
            local = _top(exact, k, mask)
            return local, exact[local]
        candidates = scan.candidates(query, k, None if mask.all() else mask)
        exact = self.vectors[candidates] @ query
        best = np.lexsort((candidates, -exact))[:k]
        return candidates[best], exact[best]

    @classmethod
    def build(
        cls, name: str, rows: Sequence[Mapping[str, Any]], vectors: Floats, dimension: int
    ) -> Segment:
        """A segment from Milvus rows (grouped or not by document) and their dense vectors."""
        doc_index: dict[tuple[str, int], int] = {}
        doc_names: list[str] = []
        row_doc = np.empty(len(rows), dtype=np.int64)
        vocabulary: dict[str, int] = {}
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        lengths = np.empty(len(rows), dtype=np.float32)
        for number, row in enumerate(rows):
            key = (str(row["document_id"]), int(row["generation"]))
            if key not in doc_index:
                doc_index[key] = len(doc_index)
                doc_names.append(str(row.get("document_name") or ""))
            row_doc[number] = doc_index[key]
            counted = term_counts(indexed_text(row))
            lengths[number] = sum(counted.values())
            frequencies = {
                vocabulary.setdefault(term, len(vocabulary)): count
                for term, count in counted.items()
            }
            indices.extend(frequencies)
            counts.extend(frequencies.values())
            indptr.append(len(indices))
        csr = sparse.csr_matrix(
            (
                np.asarray(counts, dtype=np.float32),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr, dtype=np.int64),
            ),
            shape=(len(rows), len(vocabulary)),
        )
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(rows), dimension)
        return cls(
            name=name,
            ids=[str(r["id"]) for r in rows],
            doc_ids=[key[0] for key in doc_index],
            doc_names=doc_names,
            doc_generation=np.asarray([key[1] for key in doc_index], dtype=np.int64),
            row_doc=row_doc,
            available=np.asarray([bool(r.get("available", True)) for r in rows], dtype=bool),
            vectors=np.ascontiguousarray(matrix),
            terms=csr.tocsc(),
            vocabulary=vocabulary,
            lengths=lengths,
            content=[str(r.get("content") or "") for r in rows],
            important_keywords=[_json_text(r.get("important_keywords")) for r in rows],
            questions=[_json_text(r.get("questions")) for r in rows],
            position=np.asarray([int(r.get("position", 0)) for r in rows], dtype=np.int64),
            created_at=np.asarray([float(r.get("created_at", 0.0)) for r in rows]),
        )

    @classmethod
    def merge(cls, name: str, parts: Sequence[tuple[Segment, Bools]]) -> Segment:
        """One segment holding the live rows of ``parts`` (compaction); nothing re-analysed."""
        vocabulary: dict[str, int] = {}
        row_blocks, column_blocks, count_blocks = [], [], []
        ids: list[str] = []
        doc_keys: dict[tuple[str, int], int] = {}
        doc_names: list[str] = []
        row_doc, available, vectors, lengths, position, created_at = [], [], [], [], [], []
        content: list[str] = []
        keywords: list[str] = []
        questions: list[str] = []
        offset = 0
        for segment, alive in parts:
            keep = np.flatnonzero(alive)
            columns = np.empty(len(segment.vocabulary), dtype=np.int32)
            for term, column in segment.vocabulary.items():
                columns[column] = vocabulary.setdefault(term, len(vocabulary))
            kept = segment.terms.tocsr()[keep].tocoo()
            row_blocks.append(kept.row.astype(np.int64) + offset)
            column_blocks.append(columns[kept.col])
            count_blocks.append(kept.data)
            docs = np.empty(len(segment.doc_ids), dtype=np.int64)
            generations = segment.doc_generation.tolist()
            for number, key in enumerate(zip(segment.doc_ids, generations, strict=True)):
                if key not in doc_keys:
                    doc_keys[key] = len(doc_keys)
                    doc_names.append(segment.doc_names[number])
                docs[number] = doc_keys[key]
            row_doc.append(docs[segment.row_doc[keep]])
            ids += [segment.ids[i] for i in keep]
            content += [segment.content[i] for i in keep]
            keywords += [segment.important_keywords[i] for i in keep]
            questions += [segment.questions[i] for i in keep]
            available.append(segment.available[keep])
            vectors.append(segment.vectors[keep])
            lengths.append(segment.lengths[keep])
            position.append(segment.position[keep])
            created_at.append(segment.created_at[keep])
            offset += len(keep)
        dimension = parts[0][0].vectors.shape[1]
        terms = sparse.coo_matrix(
            (
                np.concatenate(count_blocks).astype(np.float32),
                (np.concatenate(row_blocks), np.concatenate(column_blocks)),
            ),
            shape=(offset, len(vocabulary)),
        ).tocsc()
        return cls(
            name=name,
            ids=ids,
            doc_ids=[key[0] for key in doc_keys],
            doc_names=doc_names,
            doc_generation=np.asarray([key[1] for key in doc_keys], dtype=np.int64),
            row_doc=np.concatenate(row_doc),
            available=np.concatenate(available),
            vectors=np.ascontiguousarray(np.concatenate(vectors).reshape(offset, dimension)),
            terms=terms,
            vocabulary=vocabulary,
            lengths=np.concatenate(lengths),
            content=content,
            important_keywords=keywords,
            questions=questions,
            position=np.concatenate(position),
            created_at=np.concatenate(created_at),
        )

    def row(self, number: int) -> dict[str, Any]:
        """Row ``number`` in Milvus's row shape (what ``chunk_from_row`` reads)."""
        doc = int(self.row_doc[number])
        return {
            "id": self.ids[number],
            "document_id": self.doc_ids[doc],
            "generation": int(self.doc_generation[doc]),
            "document_name": self.doc_names[doc],
            "content": self.content[number],
            "important_keywords": self.important_keywords[number],
            "questions": self.questions[number],
            "available": bool(self.available[number]),
            "position": int(self.position[number]),
            "created_at": float(self.created_at[number]),
        }

    def chunk(self, dataset_id: str, number: int) -> Chunk:
        row = self.row(number)
        return Chunk(
            id=row["id"],
            dataset_id=dataset_id,
            document_id=row["document_id"],
            generation=row["generation"],
            content=row["content"],
            document_name=row["document_name"],
            important_keywords=_terms(row["important_keywords"]),
            questions=_terms(row["questions"]),
            available=row["available"],
            position=row["position"],
            created_at=row["created_at"],
        )

    # -- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """``<name>.npz`` (arrays) + ``<name>.json`` (strings); written once, never changed."""
        arrays = directory / f"{self.name}.npz.tmp"
        with arrays.open("wb") as handle:
            np.savez(
                handle,
                doc_generation=self.doc_generation,
                row_doc=self.row_doc,
                available=self.available,
                vectors=self.vectors,
                indptr=self.terms.indptr,
                indices=self.terms.indices,
                data=self.terms.data,
                lengths=self.lengths,
                position=self.position,
                created_at=self.created_at,
            )
        strings = directory / f"{self.name}.json.tmp"
        vocabulary = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        strings.write_text(
            json.dumps(
                {
                    "ids": self.ids,
                    "doc_ids": self.doc_ids,
                    "doc_names": self.doc_names,
                    "vocabulary": vocabulary,
                    "content": self.content,
                    "important_keywords": self.important_keywords,
                    "questions": self.questions,
                }
            ),
            encoding="utf-8",
        )
        arrays.replace(directory / f"{self.name}.npz")
        strings.replace(directory / f"{self.name}.json")

    @classmethod
    def load(cls, directory: Path, name: str) -> Segment:
        with np.load(directory / f"{name}.npz", allow_pickle=False) as arrays:
            loaded = {key: arrays[key] for key in arrays.files}
        strings = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
        rows = len(strings["ids"])
        vocabulary = {term: column for column, term in enumerate(strings["vocabulary"])}
        terms = sparse.csc_matrix(
            (loaded["data"], loaded["indices"], loaded["indptr"]), shape=(rows, len(vocabulary))
        )
        return cls(
            name=name,
            ids=strings["ids"],
            doc_ids=strings["doc_ids"],
            doc_names=strings["doc_names"],
            doc_generation=loaded["doc_generation"],
            row_doc=loaded["row_doc"],
            available=loaded["available"],
            vectors=loaded["vectors"],
            terms=terms,
            vocabulary=vocabulary,
            lengths=loaded["lengths"],
            content=strings["content"],
            important_keywords=strings["important_keywords"],
            questions=strings["questions"],
            position=loaded["position"],
            created_at=loaded["created_at"],
        )


def _terms(text: str) -> list[str]:
    """A stored JSON term list (mostly empty: no parse then)."""
    return [] if not text or text == "[]" else list(json.loads(text))


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(list(value or []))


@dataclass(frozen=True)
class Candidates:
    """One dataset's candidates for a query: parallel arrays, one entry per candidate."""

    index: DatasetIndex
    rows: Ints  # global row numbers in ``index``
    vector_similarity: Floats  # cosine with the query, for every candidate
    dense_rank: Ints  # 1-based rank in the dense top-k, 0 when not in it
    text_rank: Ints  # 1-based rank in the BM25 top-k, 0 when not in it
    term_presence: Bools  # (candidates, distinct query terms): term occurs in the chunk

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def empty(cls, index: DatasetIndex, terms: int) -> Candidates:
        nothing = np.zeros(0, dtype=np.int64)
        return cls(
            index, nothing, np.zeros(0, np.float32), nothing, nothing, np.zeros((0, terms), bool)
        )


@dataclass(frozen=True)
class DatasetIndex:
    """A snapshot: segments, their live rows, and what of the system of record it reflects.

    ``documents`` maps each indexed document to the signature it was fetched under (see
    ``ragruntime.retrieval.sync``); ``version`` is the dataset version it was synced at.
    """

    dataset_id: str
    dimension: int
    version: int = 0
    segments: tuple[Segment, ...] = ()
    alive: tuple[Bools, ...] = ()
    documents: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    offsets: Ints = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    @classmethod
    def create(
        cls,
        dataset_id: str,
        dimension: int,
        version: int,
        segments: Sequence[Segment],
        alive: Sequence[Bools],
        documents: Mapping[str, tuple[int, ...]],
    ) -> DatasetIndex:
        offsets = np.cumsum([0, *(s.size for s in segments)], dtype=np.int64)
        return cls(
            dataset_id, dimension, version, tuple(segments), tuple(alive), dict(documents), offsets
        )

    @property
    def rows(self) -> int:
        return int(self.offsets[-1])

    @property
    def live_rows(self) -> int:
        return int(sum(int(a.sum()) for a in self.alive))

    @cached_property
    def live(self) -> Bools:
        """Every row's alive flag, across segments (computed once per snapshot)."""
        return np.concatenate(self.alive) if self.alive else np.zeros(0, dtype=bool)

    @cached_property
    def _bm25_norm(self) -> Floats:
        """Per row ``k1 * (1 - b + b * length / average live length)`` (once per snapshot)."""
        lengths = np.concatenate([s.lengths for s in self.segments])
        average = float(lengths[self.live].mean()) if self.live.any() else 1.0
        return (BM25_K1 * (1.0 - BM25_B + BM25_B * lengths / (average or 1.0))).astype(np.float32)

    @cached_property
    def _visible_memo(self) -> dict[bytes, Bools]:
        return {}

    def warm(self) -> DatasetIndex:
        """Build what queries would otherwise build lazily (the pre-filters); returns self."""
        for segment in self.segments:
            _ = segment.quantized
        return self

    def locate(self, row: int) -> tuple[Segment, int]:
        """The segment holding global row ``row`` and the row's number inside it."""
        number = int(np.searchsorted(self.offsets, row, side="right")) - 1
        return self.segments[number], row - int(self.offsets[number])

    def gather(self, rows: Ints) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]]:
        """Chunk ids and document ids of global ``rows``, in the same order."""
        ids = np.empty(len(rows), dtype=object)
        doc_ids = np.empty(len(rows), dtype=object)
        where = np.searchsorted(self.offsets, rows, side="right") - 1
        for number in np.unique(where):
            picked = where == number
            segment = self.segments[int(number)]
            local = rows[picked] - self.offsets[number]
            ids[picked] = segment.id_array[local]
            doc_ids[picked] = segment.doc_id_array[segment.row_doc[local]]
        return ids.astype(str), doc_ids.astype(str)

    def chunk(self, row: int) -> Chunk:
        segment, number = self.locate(row)
        return segment.chunk(self.dataset_id, number)

    def document_name(self, row: int) -> str:
        segment, number = self.locate(row)
        return segment.doc_names[int(segment.row_doc[number])]

    def visible(self, generations: npt.ArrayLike) -> Bools:
        """Live, available rows whose document generation is one of ``generations``.

        The last answer is kept per snapshot: consecutive queries mostly ask for the same
        generations, and at a million rows the mask costs milliseconds. Read-only."""
        wanted = np.unique(np.asarray(generations, dtype=np.int64))
        key = wanted.tobytes()
        memo = self._visible_memo
        found = memo.get(key)
        if found is not None:
            return found
        parts = [
            alive & segment.available & np.isin(segment.doc_generation, wanted)[segment.row_doc]
            for segment, alive in zip(self.segments, self.alive, strict=True)
        ]
        mask = np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
        mask.flags.writeable = False
        memo.clear()
        memo[key] = mask
        return mask

    def dense_top(self, query: Floats, visible: Bools, k: int) -> tuple[Ints, Floats]:
        """The ``k`` visible rows most similar to the unit ``query``: (global rows, cosines).

        Exact: one float32 matrix-vector product per segment (docs/runtime.md says why not HNSW),
        or for segments over ``prefilter.MIN_ROWS`` an int8 pre-filter and an exact re-score.
        """
        rows, scores = [], []
        for offset, segment in zip(self.offsets, self.segments, strict=False):
            mask = visible[offset : offset + segment.size]
            if not mask.any():
                continue
            local, cosine = segment.dense_top(query, mask, k)
            rows.append(local + offset)
            scores.append(cosine)
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        all_rows, all_scores = np.concatenate(rows), np.concatenate(scores)
        best = np.lexsort((all_rows, -all_scores))[:k]
        return all_rows[best], all_scores[best]

    def cosines(self, query: Floats, rows: Ints) -> Floats:
        """Cosine of the unit ``query`` with each of the global ``rows``."""
        result = np.zeros(len(rows), dtype=np.float32)
        where = np.searchsorted(self.offsets, rows, side="right") - 1
        for number in np.unique(where):
            picked = where == number
            local = rows[picked] - self.offsets[number]
            result[picked] = self.segments[int(number)].vectors[local] @ query
        return result

    def term_postings(self, terms: Sequence[str]) -> list[list[tuple[Ints, Floats]]]:
        """Per term, per segment: the (global rows, term frequencies) of its postings."""
        result = []
        for term in terms:
            per_segment = []
            for offset, segment in zip(self.offsets, self.segments, strict=False):
                column = segment.vocabulary.get(term)
                if column is None:
                    continue
                start, end = segment.terms.indptr[column], segment.terms.indptr[column + 1]
                local = segment.terms.indices[start:end]
                per_segment.append((local + offset, segment.terms.data[start:end]))
            result.append(per_segment)
        return result

    def bm25_scores(self, postings: Sequence[Sequence[tuple[Ints, Floats]]]) -> Floats:
        """Okapi BM25 of every row for the query terms whose postings are given.

        N, the average length and document frequencies are over the live rows."""
        scores = np.zeros(self.rows, dtype=np.float32)
        live = self.live
        count = self.live_rows
        if count == 0:
            return scores
        norm = self._bm25_norm
        for per_segment in postings:
            if not per_segment:
                continue
            rows = np.concatenate([p[0] for p in per_segment])
            frequencies = np.concatenate([p[1] for p in per_segment])
            keep = live[rows]
            rows, frequencies = rows[keep], frequencies[keep]
            if len(rows) == 0:
                continue
            idf = np.log(1.0 + (count - len(rows) + 0.5) / (len(rows) + 0.5))
            scores[rows] += idf * frequencies * (BM25_K1 + 1.0) / (frequencies + norm[rows])
        return scores

    def search(
        self, query_vector: Floats, query_text: str, generations: Sequence[int], top_k: int
    ) -> Candidates:
        """Dense and BM25 top-``top_k`` among rows visible under ``generations``, as arrays."""
        terms = list(dict.fromkeys(analyze(query_text)))
        visible = self.visible(generations) if generations else np.zeros(self.rows, bool)
        if not visible.any():
            return Candidates.empty(self, len(terms))
        dense_top, dense_cosines = self.dense_top(query_vector, visible, top_k)
        postings = self.term_postings(terms)
        text = self.bm25_scores(postings)
        text_top = _top(text, top_k, visible & (text > 0))
        rows = np.union1d(dense_top, text_top)
        dense_rank = _ranks(rows, dense_top)
        text_rank = _ranks(rows, text_top)
        presence = np.zeros((len(rows), len(terms)), dtype=bool)
        holds = np.zeros(self.rows, dtype=bool)
        for column, per_segment in enumerate(postings):
            holds[:] = False
            for posting_rows, _ in per_segment:
                holds[posting_rows] = True
            presence[:, column] = holds[rows]
        # Dense candidates already have their (exact) cosine; only BM25-only ones need one.
        similarity = np.empty(len(rows), dtype=np.float32)
        in_dense = dense_rank > 0
        similarity[in_dense] = dense_cosines[dense_rank[in_dense] - 1]
        similarity[~in_dense] = self.cosines(query_vector, rows[~in_dense])
        return Candidates(self, rows, similarity, dense_rank, text_rank, presence)


def _top(scores: Floats, k: int, eligible: Bools) -> Ints:
    """Rows of the ``k`` best ``eligible`` scores, best first (ties: lower row first)."""
    candidates: Ints | None = None
    values = scores
    if not eligible.all():
        candidates = np.flatnonzero(eligible)
        values = scores[candidates]
    k = min(k, len(values))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(values):
        part = np.argpartition(values, len(values) - k)[len(values) - k :]
    else:
        part = np.arange(len(values))
    best = part[np.lexsort((part, -values[part]))]
    return (best if candidates is None else candidates[best]).astype(np.int64)


def _ranks(rows: Ints, ranked: Ints) -> Ints:
    """1-based position of each of ``rows`` in ``ranked`` (0 if absent); ``rows`` sorted."""
    ranks = np.zeros(len(rows), dtype=np.int64)
    if len(ranked):
        where = np.searchsorted(rows, ranked)
        ranks[where] = np.arange(1, len(ranked) + 1)
    return ranks
