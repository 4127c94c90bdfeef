"""Opens the metadata database named by ``RAGFLOW_DATABASE_URL`` and creates its tables.

``sqlite:///file`` gets WAL mode and a busy timeout so the API and the in-process worker can
share it; ``postgresql://`` is routed to the psycopg 3 driver. Called by
``ragruntime.store.metadata.SqlMetadataStore.open``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ragruntime.store.schema import metadata_obj


def now_ms() -> int:
    return int(time.time() * 1000)


def normalise_url(url: str) -> str:
    """Route plain ``postgresql://`` (and ``postgres://``) URLs to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_postgres(url: str) -> bool:
    return normalise_url(url).startswith("postgresql+")


def create_engine(url: str, connect_args: dict[str, Any] | None = None) -> sa.Engine:
    """Build an engine for ``url`` and create missing tables.

    ``connect_args`` go to the PostgreSQL driver (TLS: ``ragruntime.security.tls``).
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # Writers take the write lock at BEGIN: a deferred transaction that later upgrades can
        # fail with "database is locked" without waiting, IMMEDIATE waits (busy_timeout)
        # instead. Readers (``read_only``) begin deferred and never hold the write lock, so a
        # read that fails half-way cannot block the writers behind it.
        sa.event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = sa.create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            connect_args=connect_args or {},
        )
    metadata_obj.create_all(engine)
    return engine


READ_ONLY = "ragruntime_read_only"


@contextmanager
def read_only(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for reads: a deferred (shared) transaction on SQLite, always rolled back.

    The connection is closed, and its transaction ended, whatever happens inside the block.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(**{READ_ONLY: True})
        try:
            yield conn
        finally:
            conn.rollback()


def _sqlite_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
