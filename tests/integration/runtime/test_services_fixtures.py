"""The shared service fixtures start real servers that answer on their ports."""

from __future__ import annotations

import pytest
import redis
import sqlalchemy as sa
from pymilvus import MilvusClient

from ragruntime.store.database import normalise_url
from tests.fixtures.services import MilvusLiteServer, PostgresServer, RedisServer

pytestmark = pytest.mark.integration


def test_postgres_fixture_creates_isolated_databases(postgres_server: PostgresServer) -> None:
    first, second = postgres_server.create_database(), postgres_server.create_database()
    assert first != second
    engine = sa.create_engine(normalise_url(first))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_redis_fixture_answers_ping(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping() is True
    client.close()


def test_milvus_lite_server_is_reachable_over_grpc(milvus_lite_server: MilvusLiteServer) -> None:
    client = MilvusClient(uri=milvus_lite_server.uri, timeout=60)
    client.create_collection("fixture_probe", dimension=4)
    assert "fixture_probe" in client.list_collections()
    client.drop_collection("fixture_probe")
    client.close()
