"""Synthetic chunks for the latency benchmark: real-looking text, real-dimension vectors.

Embedding 100k real chunks would take hours on two CPU cores, so the latency benchmark builds
its corpora here instead: each chunk's text is a few Cranfield sentences sampled (seeded) from
the whole collection and recombined, and its vector is a random unit vector of the model's
dimension. Search cost does not depend on what the vectors mean: Milvus Lite scans every
vector (FLAT) and BM25 scores depend on the text, which keeps Cranfield's vocabulary and
lengths. The chunks are written through the runtime's own stores: documents are uploaded (not
parsed), given an active generation the way a manually added chunk is, and the chunks are
inserted with ``MilvusVectorStore.insert``. Used by bench_query_latency.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragruntime.models import Chunk
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
    uploaded = documents.upload_documents(
        runtime,
        dataset_id,
        [
            documents.Upload(f"synthetic-{index:05d}.txt", b"synthetic")
            for index in range(documents_count)
        ],
    )
    generations = [
        runtime.metadata.ensure_generation(dataset_id, document.id, new_generation())
        for document in uploaded
    ]
    chunk_ids: list[str] = []
    for start, end in _batches(len(texts), INSERT_BATCH):
        chunks = []
        for index in range(start, end):
            owner = index % documents_count
            chunks.append(
                Chunk(
                    id=f"syn{index:09d}",
                    dataset_id=dataset_id,
                    document_id=uploaded[owner].id,
                    generation=generations[owner],
                    content=texts[index],
                    document_name=uploaded[owner].name,
                    position=index // documents_count,
                )
            )
        runtime.vectors.insert(dataset_id, chunks, vectors[start:end].tolist())
        chunk_ids += [chunk.id for chunk in chunks]
    per_document = len(texts) // documents_count
    for document in uploaded:
        runtime.metadata.adjust_chunk_count(dataset_id, document.id, per_document, 0)
    return SyntheticCorpus(chunk_ids, vectors)
