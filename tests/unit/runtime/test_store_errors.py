"""The metadata store translates its database's errors; the HTTP layer maps only the runtime's.

A failing database (here an OperationalError from SQLite: a table gone) reaches the caller as
``StoreUnavailable`` with the driver's exception as its cause, for every store sharing the
engine; errors that are not the database's failure stay as they are. Over HTTP that is RAGFlow's
code 105 with status 503 and the message the API always gave, and ``/ready`` names the driver's
exception type. (The vector store's translation: tests/unit/runtime/test_vectors.py.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ragruntime.app import create_app
from ragruntime.config import Settings
from ragruntime.errors import StoreUnavailable, failure_name
from ragruntime.security.keys import KeyStore
from ragruntime.security.sources import KeySync
from ragruntime.store.metadata import SqlMetadataStore
from ragruntime.store.queue import TaskQueue
from ragruntime.store.schema import datasets

KEY = "store-errors-admin-key"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}")
    yield opened
    opened.close()


def break_tables(store: SqlMetadataStore) -> None:
    """The database now fails every query on datasets and tasks (SQLite: OperationalError)."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE ingest_tasks")
        conn.exec_driver_sql("DROP TABLE documents")
        conn.exec_driver_sql("DROP TABLE datasets")


def test_a_database_failure_is_store_unavailable_caused_by_the_driver_error(
    store: SqlMetadataStore,
) -> None:
    break_tables(store)
    with pytest.raises(StoreUnavailable, match=r"^metadata database unavailable$") as failed:
        store.get_dataset("any")
    assert isinstance(failed.value.__cause__, sqlite3.OperationalError)
    assert failure_name(failed.value) == "OperationalError"
    # A store sharing the engine gets the same translation.
    with pytest.raises(StoreUnavailable):
        TaskQueue(store.engine).depth()


def test_errors_that_are_not_a_failing_database_are_not_translated(
    store: SqlMetadataStore,
) -> None:
    dataset = store.create_dataset(name="ds", fields={"embedding_model": "m"})
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset.id)).mappings().one()
        conn.execute(datasets.insert().values(**row))


@pytest.fixture
def client(tmp_path: Path, store: SqlMetadataStore) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=tmp_path, api_key=KEY))
    keys = KeyStore(store.engine)
    KeySync(keys, env_key=KEY, keys_dir=None, grace_seconds=0).run_once()
    app.state.key_store = keys

    def fine() -> None:
        return None

    app.state.runtime = SimpleNamespace(
        metadata=store,
        vectors=SimpleNamespace(ping=fine),
        cache=SimpleNamespace(ping=fine),
        embedder=SimpleNamespace(check=fine),
    )
    yield TestClient(app, raise_server_exceptions=False)
    app.state.audit.close()


def test_a_failing_database_answers_503_with_ragflow_code_105(
    client: TestClient, store: SqlMetadataStore
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    assert client.get("/api/v1/datasets", headers=auth).status_code == 200
    break_tables(store)
    answer = client.get("/api/v1/datasets", headers=auth)
    assert answer.status_code == 503
    assert answer.json() == {"code": 105, "message": "metadata database unavailable"}


def test_ready_names_the_driver_error_of_a_failing_store(
    client: TestClient, store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/ready").status_code == 200

    def refused() -> None:
        raise StoreUnavailable("metadata database unavailable") from sqlite3.OperationalError()

    monkeypatch.setattr(store, "ping", refused)
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "error: OperationalError"


def test_a_vector_store_connection_is_tried_twice_then_store_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pymilvus import MilvusException

    from ragruntime.store import vectors

    attempts: list[dict[str, object]] = []

    def flaky(failures: int) -> object:
        def client(uri: str, **arguments: object) -> object:
            attempts.append(arguments)
            if len(attempts) <= failures:
                raise MilvusException(message="Fail connecting to server (too many pings)")
            return SimpleNamespace(uri=uri)

        return client

    monkeypatch.setattr(vectors.time, "sleep", lambda _s: None)
    monkeypatch.setattr(vectors, "MilvusClient", flaky(1))
    store = vectors.MilvusVectorStore("http://127.0.0.1:1", "", 4)
    assert store.client.uri == "http://127.0.0.1:1" and len(attempts) == 2
    assert attempts[0]["grpc_options"] == {"grpc.keepalive_permit_without_calls": 0}
    attempts.clear()
    monkeypatch.setattr(vectors, "MilvusClient", flaky(2))
    with pytest.raises(StoreUnavailable, match="vector store unreachable: Fail connecting"):
        vectors.MilvusVectorStore("http://127.0.0.1:1", "", 4)
    assert len(attempts) == 2
