"""Synthetic chunks for the latency benchmark: real-looking text, real-dimension vectors.

Embedding 100k real chunks would take hours on two CPU cores, so the latency benchmark builds
its corpora here instead: each chunk's text is a few Cranfield sentences sampled (seeded) from
the whole collection and recombined, and its vector is a random unit vector of the model's
dimension. Search cost does not depend on what the vectors mean: Milvus Lite scans every
vector (FLAT) and BM25 scores depend on the text, which keeps Cranfield's vocabulary and
lengths. The chunks are written through the runtime's own stores: documents are uploaded (not
parsed), the chunks are inserted with ``MilvusVectorStore.insert`` under a new generation per
document, and then the generations are made active, as a finished ingestion task does. Sizes
Milvus Lite cannot take in a sensible time skip Milvus: ``install_synthetic_snapshot`` writes the
same rows as a query-side index snapshot through the index's own persistence code (the rows a
sync would have fetched), plus the same metadata rows. Used by bench_query_latency.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragruntime.models import Chunk, Document
from ragruntime.retrieval.index import DatasetIndex, Segment
from ragruntime.retrieval.sync import document_signatures
from ragruntime.runtime import Runtime
from ragruntime.services import documents
from ragruntime.store.queue import new_generation
from tests.bench import baselines, cranfield

SENTENCES_PER_CHUNK = (2, 6)
INSERT_BATCH = 2000


def cranfield_sentences(corpus: Sequence[cranfield.CranfieldDocument]) -> list[str]:
    """Every sentence (split at " . ") of every abstract, at least four words long."""
    sentences = []
    for document in corpus:
        for sentence in document.abstract.split(" . "):
            words = sentence.strip(" .").split()
            if len(words) >= 4:
                sentences.append(" ".join(words) + " .")
    return sentences


def synthetic_texts(sentences: Sequence[str], count: int, seed: int) -> list[str]:
    """``count`` texts of 2..6 sampled sentences each, reproducible for a seed."""
    generator = random.Random(seed)
    low, high = SENTENCES_PER_CHUNK
    return [
        " ".join(generator.choices(sentences, k=generator.randint(low, high))) for _ in range(count)
    ]


def random_unit_vectors(count: int, dimension: int, seed: int) -> npt.NDArray[np.float32]:
    """``count`` random unit vectors (Gaussian, normalised), float32."""
    generator = np.random.default_rng(seed)
    return baselines.normalise_rows(generator.standard_normal((count, dimension)))


@dataclass(frozen=True)
class SyntheticCorpus:
    """What was inserted, for the baselines: chunk ids and the unit vectors, row by row."""

    chunk_ids: list[str]
    vectors: npt.NDArray[np.float32]


def _batches(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def _synthetic_documents(
    runtime: Runtime, dataset_id: str, documents_count: int
) -> tuple[list[Document], list[int]]:
    uploaded = documents.upload_documents(
        runtime,
        dataset_id,
        [
            documents.Upload(f"synthetic-{index:05d}.txt", b"synthetic")
            for index in range(documents_count)
        ],
    )
    return uploaded, [new_generation() for _ in uploaded]


def _chunks(
    dataset_id: str,
    texts: Sequence[str],
    uploaded: Sequence[Document],
    generations: Sequence[int],
    start: int,
    end: int,
) -> list[Chunk]:
    """Chunks ``start..end``: chunk i belongs to document i mod the document count."""
    count = len(uploaded)
    return [
        Chunk(
            id=f"syn{index:09d}",
            dataset_id=dataset_id,
            document_id=uploaded[index % count].id,
            generation=generations[index % count],
            content=texts[index],
            document_name=uploaded[index % count].name,
            position=index // count,
            created_at=1.0,
        )
        for index in range(start, end)
    ]


def _activate(
    runtime: Runtime,
    dataset_id: str,
    uploaded: Sequence[Document],
    generations: Sequence[int],
    per_document: int,
) -> None:
    """What a finished task does once its chunks are written: generation active, counts set."""
    for document, generation in zip(uploaded, generations, strict=True):
        runtime.metadata.ensure_generation(dataset_id, document.id, generation)
        runtime.metadata.adjust_chunk_count(dataset_id, document.id, per_document, 0)


def insert_synthetic_chunks(
    runtime: Runtime,
    dataset_id: str,
    texts: Sequence[str],
    vectors: npt.NDArray[np.float32],
    documents_count: int,
) -> SyntheticCorpus:
    """Spread ``texts``/``vectors`` over ``documents_count`` searchable documents of a dataset."""
    if len(texts) != vectors.shape[0]:
        raise ValueError("one vector per text")
    uploaded, generations = _synthetic_documents(runtime, dataset_id, documents_count)
    chunk_ids: list[str] = []
    for start, end in _batches(len(texts), INSERT_BATCH):
        chunks = _chunks(dataset_id, texts, uploaded, generations, start, end)
        runtime.vectors.insert(dataset_id, chunks, vectors[start:end].tolist())
        chunk_ids += [chunk.id for chunk in chunks]
    _activate(runtime, dataset_id, uploaded, generations, len(texts) // documents_count)
    return SyntheticCorpus(chunk_ids, vectors)


def install_synthetic_snapshot(
    runtime: Runtime,
    dataset_id: str,
    texts: Sequence[str],
    vectors: npt.NDArray[np.float32],
    documents_count: int,
) -> DatasetIndex:
    """The same documents and chunks as ``insert_synthetic_chunks``, but written as the
    dataset's persisted query-index snapshot (``IndexManager.install``: the format and files
    a sync writes) instead of into Milvus. What is bypassed is exactly the sync's fetch: the
    rows a sync would have read from Milvus are built here, then analysed by the same
    ``Segment.build``. The metadata rows (documents, active generations, chunk counts) are real,
    and the snapshot records their signatures, so an API process loads it and fetches nothing.
    """
    if len(texts) != vectors.shape[0]:
        raise ValueError("one vector per text")
    uploaded, generations = _synthetic_documents(runtime, dataset_id, documents_count)
    _activate(runtime, dataset_id, uploaded, generations, len(texts) // documents_count)
    rows = [
        {
            "id": chunk.id,
            "document_id": chunk.document_id,
            "generation": chunk.generation,
            "content": chunk.content,
            "document_name": chunk.document_name,
            "important_keywords": "[]",
            "questions": "[]",
            "available": True,
            "position": chunk.position,
            "created_at": chunk.created_at,
        }
        for start, end in _batches(len(texts), INSERT_BATCH)
        for chunk in _chunks(dataset_id, texts, uploaded, generations, start, end)
    ]
    segment = Segment.build("seg-synthetic", rows, vectors, vectors.shape[1])
    del rows
    version = runtime.metadata.dataset_versions([dataset_id])[dataset_id]
    index = DatasetIndex.create(
        dataset_id,
        vectors.shape[1],
        version,
        [segment],
        [np.ones(segment.size, dtype=bool)],
        document_signatures(runtime.metadata.engine, dataset_id),
    )
    runtime.index.install(index)
    return index
