"""Chunks and their vectors in Milvus: one collection per dataset, dense + BM25 sparse fields.

Works against a Milvus Lite file/directory (embedded) and a Milvus >= 2.5 server (``http://``):
the BM25 sparse vector is computed by Milvus itself from ``content`` (a ``Function`` of type
BM25 over an analyzer-enabled VARCHAR). Every chunk carries the ``generation`` it was written
under; callers pass the generations the metadata database says are active, so chunks of an
unfinished or superseded ingestion run are never returned. Used by ingestion, the chunk
service and retrieval.

Consistency: collections are created ``Bounded`` (a server never makes a search wait for a time
tick); the reads that must see every finished write -- the chunk listing and
``fetch_generations``, which the query-side index (``ragruntime.retrieval.sync``) calls once per
completed document -- ask for ``Strong`` explicitly.

Errors: every method that calls Milvus raises ``StoreUnavailable`` (HTTP 503) for a
``MilvusException``, with Milvus's message and its exception as the cause (``_translated``);
callers never see pymilvus's exceptions.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException

from ragruntime.errors import InvalidArgument, StoreUnavailable
from ragruntime.models import (
    CHUNK_CONTENT_MAX_BYTES,
    CHUNK_DOCUMENT_NAME_MAX_BYTES,
    Chunk,
    fit_utf8,
)
from ragruntime.security.tls import TlsFiles, milvus_connection

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

FETCH_BATCH = 4096  # rows per page when the query-side index reads whole generations
STRONG = "Strong"
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase"]}
CHUNK_FIELDS = [
    "id",
    "document_id",
    "generation",
    "content",
    "document_name",
    "important_keywords",
    "questions",
    "available",
    "position",
    "created_at",
]


TERMS_COLUMN_BYTES = 8192


def _terms_json(values: Sequence[str]) -> str:
    """A term list as stored: ASCII JSON that fits its column, whole or not at all.

    Request validation keeps lists well under this; cutting one would store invalid JSON that
    breaks every later read of the dataset, so an oversized list is refused here too."""
    encoded = json.dumps(list(values))
    if len(encoded) > TERMS_COLUMN_BYTES:
        raise InvalidArgument(
            f"a term list takes {len(encoded)} bytes as JSON, at most {TERMS_COLUMN_BYTES}"
        )
    return encoded


@dataclass(frozen=True)
class VectorHit:
    chunk: Chunk
    score: float


def collection_name(dataset_id: str) -> str:
    return f"ragflow_ds_{dataset_id}"


def _generation_filter(generations: Sequence[int]) -> str:
    return f"generation in [{', '.join(str(int(g)) for g in generations)}]"


def _quote(value: str) -> str:
    return json.dumps(value)


def _translated(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A store method whose ``MilvusException`` becomes ``StoreUnavailable("<what>: <reason>")``."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except MilvusException as exc:
                log.error(what, extra={"milvus_code": exc.code})
                raise StoreUnavailable(f"{what}: {exc.message}") from exc

        return call

    return decorate


_store_error = _translated("vector store error")
_search_error = _translated("vector search failed")


#: No keepalive pings on an idle connection. gRPC servers with default settings (Milvus Lite's
#: server among them) count such pings as abuse and close the connection ("GOAWAY
#: too_many_pings"), which pymilvus then shares with the next client of the same address; a
#: dead connection is found at the next call instead.
GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": 0}


def _connect(uri: str, arguments: Mapping[str, Any]) -> MilvusClient:
    """A client; a failed first attempt is tried once more after a moment (a connection that
    pymilvus shares per address may be in recovery), then StoreUnavailable."""
    try:
        return MilvusClient(uri=uri, **arguments)
    except MilvusException:
        log.warning("vector store connection failed; retrying once")
    time.sleep(1.0)
    try:
        return MilvusClient(uri=uri, **arguments)
    except MilvusException as exc:
        raise StoreUnavailable(f"vector store unreachable: {exc.message}") from exc


class MilvusVectorStore:
    """pymilvus ``MilvusClient`` over a Lite path or a server URI."""

    def __init__(self, uri: str, token: str, dimension: int, tls: TlsFiles | None = None) -> None:
        uri, tls_args = milvus_connection(uri, tls or TlsFiles())
        self.uri = uri
        self.dimension = dimension
        self._lock = threading.Lock()
        self._known: set[str] = set()
        # Embedded Milvus Lite writes its WAL without locking: concurrent inserts from several
        # ingest threads corrupted it (measured). Writes are serialised there; a server
        # (http://) takes them concurrently.
        embedded = "://" not in uri
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if embedded else contextlib.nullcontext()
        )
        if "://" not in uri:
            Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        credentials = {"token": token} if token else {}
        self.client = _connect(uri, {**credentials, **tls_args, "grpc_options": GRPC_OPTIONS})

    def close(self) -> None:
        self.client.close()

    @_store_error
    def ping(self) -> None:
        self.client.list_collections()

    @_store_error
    def ensure_collection(self, dataset_id: str) -> None:
        name = collection_name(dataset_id)
        if name in self._known:
            return
        with self._lock:
            if not self.client.has_collection(name):
                self._create(name)
            self.client.load_collection(name)
            self._known.add(name)

    def _loaded(self, dataset_id: str) -> str:
        """The collection's name, loaded for search (Milvus Lite releases it on restart)."""
        name = collection_name(dataset_id)
        if name not in self._known:
            with self._lock:
                self.client.load_collection(name)
                self._known.add(name)
        return name

    def _create(self, name: str) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("document_id", DataType.VARCHAR, max_length=64)
        schema.add_field("generation", DataType.INT64)
        schema.add_field(
            "content",
            DataType.VARCHAR,
            max_length=CHUNK_CONTENT_MAX_BYTES,
            enable_analyzer=True,
            analyzer_params=ANALYZER,
        )
        schema.add_field(
            "document_name", DataType.VARCHAR, max_length=CHUNK_DOCUMENT_NAME_MAX_BYTES
        )
        schema.add_field("important_keywords", DataType.VARCHAR, max_length=TERMS_COLUMN_BYTES)
        schema.add_field("questions", DataType.VARCHAR, max_length=TERMS_COLUMN_BYTES)
        schema.add_field("available", DataType.BOOL)
        schema.add_field("position", DataType.INT64)
        schema.add_field("created_at", DataType.DOUBLE)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="content_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["content"],
                output_field_names=["sparse"],
            )
        )
        index = self.client.prepare_index_params()
        index.add_index("dense", index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(
            name, schema=schema, index_params=index, consistency_level="Bounded"
        )

    @_store_error
    def drop_collection(self, dataset_id: str) -> None:
        name = collection_name(dataset_id)
        self._known.discard(name)
        if self.client.has_collection(name):
            self.client.drop_collection(name)

    @_store_error
    def insert(
        self,
        dataset_id: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[list[float]],
        *,
        replace: bool = False,
    ) -> None:
        """Write chunks; ``replace`` upserts (same ids overwrite) instead of appending."""
        if not chunks:
            return
        for chunk in chunks:
            size = len(chunk.content.encode())
            if size > CHUNK_CONTENT_MAX_BYTES:
                raise InvalidArgument(
                    f"chunk {chunk.id} is {size} bytes as UTF-8; the vector store holds at most "
                    f"{CHUNK_CONTENT_MAX_BYTES} (split it)"
                )
        self.ensure_collection(dataset_id)
        rows = [
            {
                "id": c.id,
                "document_id": c.document_id,
                "generation": c.generation,
                "content": c.content,
                "document_name": fit_utf8(c.document_name, CHUNK_DOCUMENT_NAME_MAX_BYTES),
                "important_keywords": _terms_json(c.important_keywords),
                "questions": _terms_json(c.questions),
                "available": c.available,
                "position": c.position,
                "created_at": c.created_at or time.time(),
                "dense": list(vector),
            }
            for c, vector in zip(chunks, vectors, strict=True)
        ]
        with self._write_lock:
            if replace:
                self.client.upsert(self._loaded(dataset_id), rows)
            else:
                self.client.insert(collection_name(dataset_id), rows)

    @_store_error
    def delete_ids(self, dataset_id: str, ids: Sequence[str]) -> None:
        if ids:
            with self._write_lock:
                self.client.delete(self._loaded(dataset_id), ids=list(ids))

    @_store_error
    def delete_document(
        self, dataset_id: str, document_id: str, generation: int | None = None
    ) -> None:
        """Remove one generation of a document's chunks, or all of them (generation=None)."""
        name = collection_name(dataset_id)
        if not self.client.has_collection(name):
            return
        expr = f"document_id == {_quote(document_id)}"
        if generation is not None:
            expr += f" and generation == {int(generation)}"
        with self._write_lock:
            self.client.delete(self._loaded(dataset_id), filter=expr)

    def _filter(
        self,
        generations: Sequence[int],
        document_id: str | None = None,
        chunk_id: str | None = None,
    ) -> str:
        parts = [_generation_filter(generations)]
        if document_id:
            parts.append(f"document_id == {_quote(document_id)}")
        if chunk_id:
            parts.append(f"id == {_quote(chunk_id)}")
        return " and ".join(parts)

    @_store_error
    def query_chunks(
        self,
        dataset_id: str,
        generations: Sequence[int],
        *,
        document_id: str | None,
        chunk_id: str | None,
        offset: int,
        limit: int,
    ) -> tuple[list[Chunk], int]:
        if not generations:
            return [], 0
        name = self._loaded(dataset_id)
        expr = self._filter(generations, document_id, chunk_id)
        counted = self.client.query(
            name, filter=expr, output_fields=["count(*)"], consistency_level=STRONG
        )
        total = int(counted[0]["count(*)"]) if counted else 0
        rows = self.client.query(
            name, filter=expr, output_fields=CHUNK_FIELDS, limit=16384, consistency_level=STRONG
        )
        rows = sorted(rows, key=lambda r: (r["position"], r["created_at"], r["id"]))
        return [chunk_from_row(dataset_id, r) for r in rows[offset : offset + limit]], total

    @_search_error
    def dense_search(
        self, dataset_id: str, vector: list[float], generations: Sequence[int], limit: int
    ) -> list[VectorHit]:
        if not generations:
            return []
        return self._search(dataset_id, vector, "dense", "COSINE", generations, limit)

    @_search_error
    def text_search(
        self, dataset_id: str, text: str, generations: Sequence[int], limit: int
    ) -> list[VectorHit]:
        if not generations or not text.strip():
            return []
        return self._search(dataset_id, text, "sparse", "BM25", generations, limit)

    def _search(
        self,
        dataset_id: str,
        query: list[float] | str,
        field: str,
        metric: str,
        generations: Sequence[int],
        limit: int,
    ) -> list[VectorHit]:
        """One search over the visible generations of a dataset; scores are similarities."""
        result = self.client.search(
            self._loaded(dataset_id),
            data=[query],
            anns_field=field,
            limit=limit,
            filter=self._filter(generations) + " and available == true",
            output_fields=CHUNK_FIELDS,
            search_params={"metric_type": metric},
        )
        # BM25 distances come back with a version-dependent sign; the score is their magnitude.
        return [
            VectorHit(
                chunk_from_row(dataset_id, h["entity"]),
                abs(float(h["distance"])) if metric == "BM25" else float(h["distance"]),
            )
            for h in result[0]
        ]

    @_store_error
    def vectors_of(self, dataset_id: str, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        rows = self.client.get(self._loaded(dataset_id), ids=list(ids), output_fields=["dense"])
        return {r["id"]: [float(x) for x in r["dense"]] for r in rows}

    @_store_error
    def fetch_generations(
        self, dataset_id: str, generations: Sequence[int]
    ) -> tuple[list[dict[str, Any]], npt.NDArray[np.float32]]:
        """Every row of ``generations`` (payload fields) and their dense vectors, read Strong."""
        if not generations:
            return [], np.zeros((0, self.dimension), dtype=np.float32)
        rows = self._query_all(
            self._loaded(dataset_id), _generation_filter(generations), [*CHUNK_FIELDS, "dense"]
        )
        rows.sort(key=lambda r: (r["document_id"], r["position"], r["id"]))
        vectors = np.asarray([r.pop("dense") for r in rows], dtype=np.float32)
        return rows, vectors.reshape(len(rows), self.dimension)

    @_store_error
    def generation_ids(self, dataset_id: str, document_id: str, generation: int) -> set[str]:
        """Ids of one generation of a document's chunks, read Strong (none without a collection)."""
        if not self.client.has_collection(collection_name(dataset_id)):
            return set()
        rows = self._query_all(
            self._loaded(dataset_id), self._filter([generation], document_id), ["id"]
        )
        return {str(r["id"]) for r in rows}

    def _query_all(self, name: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``expr``, read Strong, ``FETCH_BATCH`` rows a page."""
        iterator = self.client.query_iterator(
            name,
            batch_size=FETCH_BATCH,
            filter=expr,
            output_fields=fields,
            consistency_level=STRONG,
        )
        rows: list[dict[str, Any]] = []
        try:
            while page := iterator.next():
                rows.extend(page)
        finally:
            iterator.close()
        return rows


def chunk_from_row(dataset_id: str, row: Mapping[str, Any]) -> Chunk:
    """A Chunk from one Milvus row (query result, search entity or backed-up record)."""
    return Chunk(
        id=row["id"],
        dataset_id=dataset_id,
        document_id=row["document_id"],
        generation=int(row["generation"]),
        content=row["content"],
        document_name=row.get("document_name", ""),
        important_keywords=json.loads(row.get("important_keywords") or "[]"),
        questions=json.loads(row.get("questions") or "[]"),
        available=bool(row.get("available", True)),
        position=int(row.get("position", 0)),
        created_at=float(row.get("created_at", 0.0)),
    )
