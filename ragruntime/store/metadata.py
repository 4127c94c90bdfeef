"""Datasets and documents in the metadata database (``SqlMetadataStore``: SQLite or PostgreSQL).

Called by the services in ``ragruntime.services`` and by the worker (through
``ragruntime.store.queue``, which shares the engine). Every change that can alter what retrieval
returns bumps ``datasets.version`` in the same transaction, which is what the cache keys on.

The engine translates the database's errors for every store that shares it (tasks, files, API
keys, the standby state): a database that fails or cannot be reached raises ``StoreUnavailable``
(HTTP 503), with the driver's exception as its cause.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from ragruntime.errors import DataError, NotFound, StoreUnavailable
from ragruntime.models import DEFAULT_PARSER_CONFIG, Dataset, Document, NewDocument, RunStatus
from ragruntime.store.database import create_engine, now_ms, read_only
from ragruntime.store.rows import dataset_from_row as _dataset
from ragruntime.store.rows import document_from_row as _document
from ragruntime.store.schema import datasets, documents, tasks

DATASET_ORDER = {"create_time": datasets.c.created_at_ms, "update_time": datasets.c.updated_at_ms}
DOCUMENT_ORDER = {
    "create_time": documents.c.created_at_ms,
    "update_time": documents.c.updated_at_ms,
}


log = logging.getLogger(__name__)
LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern ('%' and '_' are not wildcards)."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def new_id() -> str:
    return uuid.uuid4().hex


class SqlMetadataStore:
    """SQLAlchemy Core implementation for SQLite and PostgreSQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, connect_args: dict[str, Any] | None = None) -> SqlMetadataStore:
        try:
            engine = create_engine(url, connect_args)
        except sa.exc.OperationalError as exc:
            raise StoreUnavailable(
                f"metadata database unreachable: {type(exc.orig).__name__}"
            ) from exc
        sa.event.listen(engine, "handle_error", _translate_error)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with read_only(self.engine) as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- datasets -------------------------------------------------------------------------
    def create_dataset(self, *, name: str, fields: dict[str, Any]) -> Dataset:
        stamp = now_ms()
        parser_config = {**DEFAULT_PARSER_CONFIG, **(fields.get("parser_config") or {})}
        row = {
            "id": new_id(),
            "name": name,
            "name_key": name.lower(),
            "description": fields.get("description"),
            "avatar": fields.get("avatar"),
            "embedding_model": fields["embedding_model"],
            "permission": fields.get("permission") or "me",
            "chunk_method": fields.get("chunk_method") or "naive",
            "parser_config": parser_config,
            "pagerank": int(fields.get("pagerank") or 0),
            "version": 1,
            "created_at_ms": stamp,
            "updated_at_ms": stamp,
        }
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.select(datasets.c.id).where(datasets.c.name_key == row["name_key"])
            ).first()
            if taken:
                raise DataError(f"Dataset name '{name}' already exists")
            conn.execute(datasets.insert().values(**row))
        return self.get_dataset(row["id"])

    def get_dataset(self, dataset_id: str) -> Dataset:
        found, _ = self._select_datasets(sa.and_(datasets.c.id == dataset_id), 0, 1, None)
        if not found:
            raise NotFound(f"You don't own the dataset {dataset_id}.")
        return found[0]

    def list_datasets(
        self,
        *,
        page: int,
        page_size: int,
        orderby: str,
        desc: bool,
        id: str | None,
        name: str | None,
    ) -> tuple[list[Dataset], int]:
        clauses = []
        if id:
            clauses.append(datasets.c.id == id)
        if name:
            clauses.append(datasets.c.name_key == name.lower())
        order = DATASET_ORDER.get(orderby, datasets.c.created_at_ms)
        order_by = order.desc() if desc else order.asc()
        where = sa.and_(sa.true(), *clauses)
        return self._select_datasets(where, (page - 1) * page_size, page_size, order_by)

    def _select_datasets(
        self, where: Any, offset: int, limit: int, order_by: Any
    ) -> tuple[list[Dataset], int]:
        counts = (
            sa.select(
                documents.c.dataset_id,
                sa.func.count().label("document_count"),
                sa.func.coalesce(sa.func.sum(documents.c.chunk_count), 0).label("chunk_count"),
                sa.func.coalesce(sa.func.sum(documents.c.token_count), 0).label("token_num"),
            )
            .group_by(documents.c.dataset_id)
            .subquery()
        )
        query = (
            sa.select(datasets, counts.c.document_count, counts.c.chunk_count, counts.c.token_num)
            .select_from(datasets.outerjoin(counts, counts.c.dataset_id == datasets.c.id))
            .where(where)
            .offset(offset)
            .limit(limit)
        )
        if order_by is not None:
            query = query.order_by(order_by, datasets.c.id)
        with read_only(self.engine) as conn:
            rows = conn.execute(query).mappings().all()
            total = conn.execute(
                sa.select(sa.func.count()).select_from(datasets).where(where)
            ).scalar_one()
        return [_dataset(r) for r in rows], int(total)

    def update_dataset(self, dataset_id: str, fields: dict[str, Any]) -> Dataset:
        values: dict[str, Any] = {}
        with self.engine.begin() as conn:
            current = (
                conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id))
                .mappings()
                .first()
            )
            if current is None:
                raise NotFound(f"You don't own the dataset {dataset_id}.")
            if "name" in fields and fields["name"] is not None:
                key = fields["name"].lower()
                clash = conn.execute(
                    sa.select(datasets.c.id).where(
                        datasets.c.name_key == key, datasets.c.id != dataset_id
                    )
                ).first()
                if clash:
                    raise DataError(f"Dataset name '{fields['name']}' already exists")
                values.update(name=fields["name"], name_key=key)
            for key in ("description", "avatar", "permission", "chunk_method", "pagerank"):
                if key in fields and fields[key] is not None:
                    values[key] = fields[key]
            if fields.get("embedding_model"):
                values["embedding_model"] = fields["embedding_model"]
            if fields.get("parser_config") is not None:
                values["parser_config"] = {**current["parser_config"], **fields["parser_config"]}
            values.update(version=datasets.c.version + 1, updated_at_ms=now_ms())
            conn.execute(datasets.update().where(datasets.c.id == dataset_id).values(**values))
        return self.get_dataset(dataset_id)

    def delete_datasets(self, ids: Sequence[str] | None) -> list[str]:
        with self.engine.begin() as conn:
            query = sa.select(datasets.c.id)
            if ids is not None:
                query = query.where(datasets.c.id.in_(list(ids)))
            found = [r[0] for r in conn.execute(query)]
            if ids is not None:
                missing = sorted(set(ids) - set(found))
                if missing:
                    raise NotFound(f"You don't own the dataset {missing[0]}.")
            if found:
                conn.execute(tasks.delete().where(tasks.c.dataset_id.in_(found)))
                conn.execute(documents.delete().where(documents.c.dataset_id.in_(found)))
                conn.execute(datasets.delete().where(datasets.c.id.in_(found)))
        return found

    def dataset_versions(self, ids: Iterable[str]) -> dict[str, int]:
        wanted = list(ids)
        query = sa.select(datasets.c.id, datasets.c.version).where(datasets.c.id.in_(wanted))
        with read_only(self.engine) as conn:
            return {row[0]: int(row[1]) for row in conn.execute(query)}

    # -- documents ------------------------------------------------------------------------
    def add_documents(self, dataset: Dataset, new: Sequence[NewDocument]) -> list[Document]:
        stamp = now_ms()
        rows = [
            {
                "id": doc.id,
                "dataset_id": dataset.id,
                "name": doc.name,
                "size": doc.size,
                "suffix": doc.suffix,
                "file_key": doc.file_key,
                "run": RunStatus.UNSTART.value,
                "progress": 0.0,
                "progress_msg": "",
                "chunk_count": 0,
                "token_count": 0,
                "active_generation": None,
                "process_begin_at_ms": None,
                "process_duration": 0.0,
                "chunk_method": dataset.chunk_method,
                "parser_config": dataset.parser_config,
                "meta_fields": {},
                "created_at_ms": stamp,
                "updated_at_ms": stamp,
            }
            for doc in new
        ]
        with self.engine.begin() as conn:
            if rows:
                conn.execute(documents.insert(), rows)
            _bump(conn, dataset.id)
        return [self.get_document(dataset.id, doc.id) for doc in new]

    def get_document(self, dataset_id: str, document_id: str) -> Document:
        query = sa.select(documents).where(
            documents.c.id == document_id, documents.c.dataset_id == dataset_id
        )
        with read_only(self.engine) as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"You don't own the document {document_id}.")
        return _document(row)

    def list_documents(self, dataset_id: str, **filters: Any) -> tuple[list[Document], int]:
        clauses = [documents.c.dataset_id == dataset_id]
        if filters.get("id"):
            clauses.append(documents.c.id == filters["id"])
        if filters.get("name"):
            clauses.append(documents.c.name == filters["name"])
        if filters.get("keywords"):
            pattern = f"%{escape_like(filters['keywords'])}%"
            clauses.append(documents.c.name.ilike(pattern, escape=LIKE_ESCAPE))
        if filters.get("run"):
            clauses.append(documents.c.run.in_(list(filters["run"])))
        if filters.get("suffix"):
            clauses.append(
                documents.c.suffix.in_([s.lower().lstrip(".") for s in filters["suffix"]])
            )
        if filters.get("create_time_from"):
            clauses.append(documents.c.created_at_ms >= int(filters["create_time_from"]))
        if filters.get("create_time_to"):
            clauses.append(documents.c.created_at_ms <= int(filters["create_time_to"]))
        order = DOCUMENT_ORDER.get(filters.get("orderby") or "", documents.c.created_at_ms)
        order_by = order.desc() if filters.get("desc", True) else order.asc()
        page, page_size = int(filters.get("page", 1)), int(filters.get("page_size", 30))
        where = sa.and_(*clauses)
        query = (
            sa.select(documents)
            .where(where)
            .order_by(order_by, documents.c.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        with read_only(self.engine) as conn:
            rows = conn.execute(query).mappings().all()
            total = conn.execute(
                sa.select(sa.func.count()).select_from(documents).where(where)
            ).scalar_one()
        return [_document(r) for r in rows], int(total)

    def update_document(
        self, dataset_id: str, document_id: str, fields: dict[str, Any]
    ) -> Document:
        doc = self.get_document(dataset_id, document_id)
        values: dict[str, Any] = {"updated_at_ms": now_ms()}
        if fields.get("name"):
            values["name"] = fields["name"]
        if fields.get("meta_fields") is not None:
            values["meta_fields"] = fields["meta_fields"]
        if fields.get("chunk_method"):
            values["chunk_method"] = fields["chunk_method"]
        if fields.get("parser_config") is not None:
            values["parser_config"] = {**doc.parser_config, **fields["parser_config"]}
        with self.engine.begin() as conn:
            conn.execute(documents.update().where(documents.c.id == document_id).values(**values))
            _bump(conn, dataset_id)
        return self.get_document(dataset_id, document_id)

    def delete_documents(self, dataset_id: str, ids: Sequence[str] | None) -> list[Document]:
        with self.engine.begin() as conn:
            query = sa.select(documents).where(documents.c.dataset_id == dataset_id)
            if ids is not None:
                query = query.where(documents.c.id.in_(list(ids)))
            found = [_document(r) for r in conn.execute(query).mappings()]
            if ids is not None:
                missing = sorted(set(ids) - {d.id for d in found})
                if missing:
                    raise NotFound(f"Documents not found: {', '.join(missing)}")
            found_ids = [d.id for d in found]
            if found_ids:
                conn.execute(tasks.delete().where(tasks.c.document_id.in_(found_ids)))
                conn.execute(documents.delete().where(documents.c.id.in_(found_ids)))
            _bump(conn, dataset_id)
        return found

    def datasets_of_documents(self, document_ids: Sequence[str]) -> list[str]:
        query = (
            sa.select(documents.c.dataset_id)
            .where(documents.c.id.in_(list(document_ids)))
            .distinct()
        )
        with read_only(self.engine) as conn:
            return sorted(r[0] for r in conn.execute(query))

    def searchable_generations(
        self, dataset_ids: Sequence[str], document_ids: Sequence[str] | None
    ) -> dict[str, list[int]]:
        """Per dataset, the active generations (= the chunks a query may see)."""
        query = sa.select(documents.c.dataset_id, documents.c.active_generation).where(
            documents.c.dataset_id.in_(list(dataset_ids)),
            documents.c.active_generation.is_not(None),
        )
        if document_ids:
            query = query.where(documents.c.id.in_(list(document_ids)))
        result: dict[str, list[int]] = {ds: [] for ds in dataset_ids}
        with read_only(self.engine) as conn:
            for dataset_id, generation in conn.execute(query):
                result[dataset_id].append(int(generation))
        return result

    def ensure_generation(self, dataset_id: str, document_id: str, generation: int) -> int:
        """The document's active generation, adopting ``generation`` if it has none yet."""
        with self.engine.begin() as conn:
            conn.execute(
                documents.update()
                .where(documents.c.id == document_id, documents.c.active_generation.is_(None))
                .values(active_generation=generation)
            )
            value = conn.execute(
                sa.select(documents.c.active_generation).where(documents.c.id == document_id)
            ).scalar_one()
        return int(value)

    def adjust_chunk_count(
        self, dataset_id: str, document_id: str, delta: int, tokens: int
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                documents.update()
                .where(documents.c.id == document_id)
                .values(
                    chunk_count=sa.func.max(documents.c.chunk_count + delta, 0)
                    if conn.dialect.name == "sqlite"
                    else sa.func.greatest(documents.c.chunk_count + delta, 0),
                    token_count=documents.c.token_count + tokens,
                    updated_at_ms=now_ms(),
                )
            )
            _bump(conn, dataset_id)


def _translate_error(context: sa.engine.ExceptionContext) -> Exception | None:
    """The engine's ``handle_error`` hook: an OperationalError (connection lost or refused,
    database locked past its timeout) becomes ``StoreUnavailable``; other errors stay as they are.

    A failed pre-ping is left to SQLAlchemy, which replaces the stale connection and goes on.
    """
    if context.is_pre_ping or not isinstance(context.sqlalchemy_exception, sa.exc.OperationalError):
        return None
    log.error("database error: %s", type(context.original_exception).__name__)
    return StoreUnavailable("metadata database unavailable")


def _bump(conn: sa.Connection, dataset_id: str) -> None:
    conn.execute(
        datasets.update()
        .where(datasets.c.id == dataset_id)
        .values(version=datasets.c.version + 1, updated_at_ms=now_ms())
    )


def bump_dataset_version(conn: sa.Connection, dataset_id: str) -> None:
    """Shared with ``ragruntime.store.queue`` so a finished task invalidates the cache."""
    _bump(conn, dataset_id)
