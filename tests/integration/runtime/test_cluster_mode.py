"""Cluster mode for real: PostgreSQL, Redis, a Milvus server, separate API and worker processes."""

from __future__ import annotations

import pytest
import redis
import requests
from pymilvus import MilvusClient, MilvusException

from tests.fixtures.services import MilvusLiteServer, RedisServer, RuntimeProcess
from tests.integration.runtime.conftest import Api

pytestmark = pytest.mark.integration


def _query_errors(base_url: str) -> float:
    for line in requests.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("ragflow_query_total{") and 'status="error"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _drop_collection(uri: str, name: str, attempts: int = 3) -> None:
    """Drop a collection from the test process, on a fresh connection per attempt.

    A generous timeout: the pure-Python server answers slowly while a loaded machine is busy.
    It also answers a client's keepalive pings with GOAWAY ("too many pings") now and then,
    which fails the call without touching the collection; another connection then succeeds.
    """
    for attempt in range(1, attempts + 1):
        client = MilvusClient(uri=uri, timeout=60)
        try:
            client.drop_collection(name)
            return
        except MilvusException:
            if attempt == attempts:
                raise
        finally:
            client.close()


def test_api_and_worker_processes_share_postgres_milvus_and_redis(
    cluster_servers: tuple[RuntimeProcess, RuntimeProcess],
    redis_server: RedisServer,
    milvus_lite_server: MilvusLiteServer,
) -> None:
    api_process, worker_process = cluster_servers
    api = Api(api_process.base_url, api_process.api_key)
    assert requests.get(f"{worker_process.base_url}/ready", timeout=10).status_code == 200
    worker_routes = requests.get(f"{worker_process.base_url}/api/v1/datasets", timeout=10)
    assert worker_routes.status_code == 404  # a worker serves probes and metrics only

    dataset_id = api.create_dataset("cluster", parser_config={"chunk_token_num": 32})
    docs = api.upload(
        dataset_id,
        [
            ("otters.txt", b"Sea otters hold hands while sleeping.\nThey use rocks as tools."),
            ("corrupt.docx", b"not really a docx"),
        ],
    )
    finished = api.parse_and_wait(dataset_id, [d["id"] for d in docs])
    assert sorted(d["run"] for d in finished.values()) == ["DONE", "FAIL"]

    body = {"question": "otters sleeping", "dataset_ids": [dataset_id]}
    first = api.ok("POST", "/retrieval", json=body)
    assert "otters" in first["chunks"][0]["content"]
    cached_keys = redis.Redis.from_url(redis_server.url).keys("ragflow:retrieval:*")
    assert cached_keys, "the L2 cache holds the answer"
    assert api.ok("POST", "/retrieval", json=body) == first

    otters = next(d for d in finished.values() if d["run"] == "DONE")
    chunks = api.ok("GET", f"/datasets/{dataset_id}/documents/{otters['id']}/chunks")
    assert chunks["total"] == otters["chunk_count"] >= 1

    # A real failure: the dataset's collection disappears from the Milvus server.
    errors_before = _query_errors(api_process.base_url)
    _drop_collection(milvus_lite_server.uri, f"ragflow_ds_{dataset_id}")
    # Searches read the API process's index; the store is read when the dataset changes.
    api.ok(
        "PUT",
        f"/datasets/{dataset_id}/documents/{otters['id']}",
        json={"meta_fields": {"touched": 1}},
    )
    broken = api.call("POST", "/retrieval", json={**body, "question": "rocks as tools"})
    assert broken.status_code == 503 and broken.json()["code"] == 105
    assert _query_errors(api_process.base_url) == errors_before + 1
