"""Runtime integration fixtures: real ``ragruntime serve`` processes, started once per session.

``embedded_server`` runs with nothing but a data directory; ``cluster_servers`` runs an API and
a worker process on PostgreSQL + Redis + a Milvus server; ``deployment``/``api`` are
parametrized over both, so the API tests run in each mode. Each process loads the real
embedding model (~15-20 s on 2 cores)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.services import (
    MilvusLiteServer,
    PostgresServer,
    RedisServer,
    RuntimeProcess,
    launch_runtime,
    start_runtime,
    wait_until_ready,
)


class Api:
    """Thin requests wrapper that speaks RAGFlow's envelope."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base_url}/api/v1{path}", timeout=60, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        body = response.json()
        assert response.status_code == 200 and body["code"] == 0, body
        return body.get("data")

    def create_dataset(self, name: str, **fields: Any) -> str:
        return str(self.ok("POST", "/datasets", json={"name": name, **fields})["id"])

    def upload(self, dataset_id: str, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        parts = [("file", (name, data)) for name, data in files]
        return list(self.ok("POST", f"/datasets/{dataset_id}/documents", files=parts))

    def parse_and_wait(
        self, dataset_id: str, document_ids: list[str], timeout_s: float = 120
    ) -> dict[str, dict[str, Any]]:
        self.ok("POST", f"/datasets/{dataset_id}/chunks", json={"document_ids": document_ids})
        return self.wait_terminal(dataset_id, document_ids, timeout_s)

    def wait_terminal(
        self, dataset_id: str, document_ids: list[str], timeout_s: float = 120
    ) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            docs = self.ok("GET", f"/datasets/{dataset_id}/documents", params={"page_size": 500})
            by_id = {d["id"]: d for d in docs["docs"] if d["id"] in document_ids}
            if all(by_id[i]["run"] in ("DONE", "FAIL", "CANCEL") for i in document_ids):
                return by_id
            if time.monotonic() > deadline:
                raise TimeoutError(f"documents not finished: {by_id}")
            time.sleep(0.3)


UPLOAD_LIMIT = {"RAGFLOW_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024)}
#: Sent in the cluster database URL (the test server trusts loopback, so it is never checked):
#: it, and every API key, must never show up in a runtime's log.
DB_PASSWORD = "it-db-password-never-logged"


def assert_no_secrets_logged(process: RuntimeProcess, *secrets: str) -> None:
    """No key or password in any log line (audit trail included) of a runtime process."""
    log = process.log()
    for secret in (process.api_key, DB_PASSWORD, *secrets):
        assert secret not in log, f"a secret appears in the log of {process.log_path.name}"


def key_files(data_dir: Path) -> dict[str, str]:
    """Per-role key files as the operator mounts them, re-read quickly (test_key_rotation.py)."""
    return {
        "RAGFLOW_AUTH_KEYS_DIR": str(data_dir / "keys"),
        "RAGFLOW_AUTH_RELOAD_SECONDS": "0.5",
        "RAGFLOW_AUTH_ROTATION_GRACE_SECONDS": str(ROTATION_GRACE_S),
    }


ROTATION_GRACE_S = 6.0


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """``ragruntime serve --role all`` with nothing but its data directory."""
    data_dir: Path = tmp_path_factory.mktemp("embedded-runtime")
    runtime = start_runtime(data_dir, role="all", extra_env={**UPLOAD_LIMIT, **key_files(data_dir)})
    yield runtime
    # uvicorn re-raises the SIGTERM it handled after a clean shutdown, hence -15.
    assert runtime.stop() in (0, -15), runtime.log()
    assert "Application shutdown complete" in runtime.log()
    assert_no_secrets_logged(runtime)


@pytest.fixture(scope="session")
def cluster_servers(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    milvus_lite_server: MilvusLiteServer,
) -> Iterator[tuple[RuntimeProcess, RuntimeProcess]]:
    """Cluster mode: an API process and a worker process sharing PostgreSQL, Milvus, Redis."""
    env = {
        "RAGFLOW_DATABASE_URL": postgres_server.create_database("runtime").replace(
            "postgresql://postgres@", f"postgresql://postgres:{DB_PASSWORD}@"
        ),
        "RAGFLOW_VECTOR_URI": milvus_lite_server.uri,
        "RAGFLOW_CACHE_URL": redis_server.url,
        "RAGFLOW_CLUSTER_NAME": "it-cluster",
        **UPLOAD_LIMIT,
    }
    base: Path = tmp_path_factory.mktemp("cluster-runtime")
    api = launch_runtime(base / "api", role="api", extra_env=env)
    worker = launch_runtime(base / "worker", role="worker", extra_env=env)
    wait_until_ready(api)
    wait_until_ready(worker)
    yield api, worker
    for process in (api, worker):
        assert process.stop() in (0, -15), process.log()
        assert_no_secrets_logged(process)


@pytest.fixture(scope="session", params=["embedded", "cluster"])
def deployment(request: pytest.FixtureRequest) -> RuntimeProcess:
    """The process serving /api/v1, in each mode: tests using it run twice."""
    if request.param == "embedded":
        return request.getfixturevalue("embedded_server")  # type: ignore[no-any-return]
    api, _worker = request.getfixturevalue("cluster_servers")
    return api  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def api(deployment: RuntimeProcess) -> Api:
    return Api(deployment.base_url, deployment.api_key)
