"""TLS in transit: real PostgreSQL and Redis that speak TLS only, a right and a wrong CA.

The servers use certificates made by ``openssl`` for 127.0.0.1 (tests/fixtures/tls.py). The
runtime must connect when given the CA that signed them (and prove the session is encrypted),
and must refuse to connect when given another CA: verification is on, not just encryption.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from ragruntime.config import Settings
from ragruntime.errors import StoreUnavailable
from ragruntime.runtime import open_runtime
from ragruntime.security.tls import TlsFiles, postgres_connect_args
from ragruntime.store.cache import RedisCache
from ragruntime.store.metadata import SqlMetadataStore
from tests.fixtures.services import PostgresServer, RedisServer, stop_process
from tests.fixtures.tls import Pki, make_pki, start_tls_postgres, start_tls_redis

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="ragflow-tls-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def right(tls_dir: Path) -> Pki:
    return make_pki(tls_dir, "right")


@pytest.fixture(scope="module")
def wrong(tls_dir: Path) -> Pki:
    return make_pki(tls_dir, "wrong")


@pytest.fixture(scope="module")
def tls_postgres(tls_dir: Path, right: Pki) -> Iterator[PostgresServer]:
    server = start_tls_postgres(tls_dir, right)
    yield server
    stop_process(server.process, signal.SIGINT)


@pytest.fixture(scope="module")
def tls_redis(tls_dir: Path, right: Pki) -> Iterator[RedisServer]:
    server = start_tls_redis(tls_dir, right)
    yield server
    stop_process(server.process)


def ssl_in_use(store: SqlMetadataStore) -> Any:
    with store.engine.connect() as conn:
        query = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        return conn.execute(sa.text(query)).one()


def test_postgres_over_verified_tls(tls_postgres: PostgresServer, right: Pki) -> None:
    store = SqlMetadataStore.open(
        tls_postgres.url(), postgres_connect_args(TlsFiles(str(right.ca)))
    )
    try:
        ssl, version = ssl_in_use(store)
        assert ssl is True and version.startswith("TLSv1")
    finally:
        store.close()
    mutual = TlsFiles(str(right.ca), str(right.client_cert), str(right.client_key))
    store = SqlMetadataStore.open(tls_postgres.url(), postgres_connect_args(mutual))
    try:
        assert ssl_in_use(store)[0] is True
    finally:
        store.close()


def test_postgres_refuses_a_server_signed_by_another_ca(
    tls_postgres: PostgresServer, wrong: Pki
) -> None:
    with pytest.raises(StoreUnavailable, match="unreachable") as refused:
        SqlMetadataStore.open(tls_postgres.url(), postgres_connect_args(TlsFiles(str(wrong.ca))))
    assert "certificate verify failed" in str(refused.value.__cause__)


def test_postgres_server_refuses_plain_connections(tls_postgres: PostgresServer) -> None:
    with pytest.raises(StoreUnavailable):
        SqlMetadataStore.open(tls_postgres.url() + "?sslmode=disable")


def test_redis_over_verified_tls(tls_redis: RedisServer, right: Pki, wrong: Pki) -> None:
    cache = RedisCache(tls_redis.url, 60, TlsFiles(str(right.ca)))
    try:
        cache.ping()
        cache.set("ragflow:test:k", b"v")
        assert cache.get("ragflow:test:k") == b"v"
    finally:
        cache.close()
    refused = RedisCache(tls_redis.url, 60, TlsFiles(str(wrong.ca)))
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        refused.ping()
    refused.close()
    plain = RedisCache(tls_redis.url, 60)
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    plain.close()


def test_open_runtime_uses_the_tls_settings(
    tmp_path: Path, tls_postgres: PostgresServer, tls_redis: RedisServer, right: Pki, wrong: Pki
) -> None:
    """The settings the operator sets (RAGFLOW_DATABASE_TLS_CA, RAGFLOW_CACHE_TLS_CA) reach the
    drivers: ``open_runtime`` connects with the right CA and fails with the wrong one."""
    embedder: Any = SimpleNamespace(dimension=8)
    settings = Settings(
        data_dir=tmp_path,
        database_url=tls_postgres.create_database("tls"),
        cache_url=tls_redis.url,
        database_tls_ca=str(right.ca),
        cache_tls_ca=str(right.ca),
    )
    runtime = open_runtime(settings, embedder=embedder)
    try:
        assert ssl_in_use(runtime.metadata)[0] is True
        runtime.cache.ping()
    finally:
        runtime.close()
    bad = settings.model_copy(update={"database_tls_ca": str(wrong.ca)})
    with pytest.raises(StoreUnavailable):
        open_runtime(bad, embedder=embedder)


def test_backup_tools_use_the_same_verified_tls(
    tmp_path: Path,
    tls_postgres: PostgresServer,
    right: Pki,
    wrong: Pki,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backup engine's connections and pg_dump read RAGFLOW_DATABASE_TLS_* like the runtime."""
    from ragruntime.backup import pg

    url = tls_postgres.url()
    monkeypatch.setenv("RAGFLOW_DATABASE_TLS_CA", str(right.ca))
    engine = pg.engine(url)
    try:
        with engine.connect() as conn:
            query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            assert conn.execute(sa.text(query)).scalar_one() is True
    finally:
        engine.dispose()
    pg.run(["pg_dump", "--schema-only", f"--file={tmp_path / 'schema.sql'}"], url)
    monkeypatch.setenv("RAGFLOW_DATABASE_TLS_CA", str(wrong.ca))
    with pytest.raises(pg.PgToolError, match="certificate verify failed"):
        pg.run(["pg_dump", "--schema-only", f"--file={tmp_path / 'refused.sql'}"], url)
