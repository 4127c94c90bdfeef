"""The HTTP shell without stores: auth envelopes, probes before startup, metric route labels.

The app is used without its lifespan (no model, no stores), which is also what a client sees
while the runtime is still starting."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragruntime.app import create_app
from ragruntime.config import Role, Settings
from tests.fixtures.services import free_port


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, api_key="right")))


def test_missing_or_malformed_api_key_is_401_with_ragflow_code_109(client: TestClient) -> None:
    missing = client.get("/api/v1/datasets")
    assert missing.status_code == 401
    assert missing.json() == {"code": 109, "message": "Authorization is not valid!"}
    scheme = client.get("/api/v1/datasets", headers={"Authorization": "Basic right"})
    assert scheme.status_code == 401


def test_a_key_cannot_be_checked_before_the_key_store_is_open(client: TestClient) -> None:
    """Keys live in the metadata database: until it is open, a key gets 503 like every route
    (wrong keys get 401 once it is: tests/unit/runtime/test_access_control.py)."""
    response = client.get("/api/v1/datasets", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 503 and response.json()["code"] == 105


def test_health_answers_while_ready_waits_for_the_stores(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["checks"] == {"runtime": "starting"}
    assert client.get("/api/v1/system/ping").text == "pong"
    assert client.get("/api/v1/system/healthz").status_code == 500


def test_http_metrics_use_route_templates_not_raw_paths(client: TestClient) -> None:
    client.get("/api/v1/datasets/abc123/documents")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert 'route="/api/v1/datasets/{dataset_id}/documents"' in text
    assert 'route="unmatched"' in text and "abc123" not in text


def test_a_worker_serves_no_api_routes(tmp_path: Path) -> None:
    worker = TestClient(create_app(Settings(data_dir=tmp_path, api_key="k", role=Role.WORKER)))
    response = worker.get("/api/v1/datasets", headers={"Authorization": "Bearer k"})
    assert response.status_code == 404 and response.json()["code"] == 404


def test_without_a_configured_key_one_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = create_app(Settings(data_dir=tmp_path)).state.api_key
    second = create_app(Settings(data_dir=tmp_path)).state.api_key
    key_file = tmp_path / "api_key"
    assert first == second and len(first) > 20
    assert key_file.stat().st_mode & 0o077 == 0


class UnusedEmbedder:
    """Stands in for the model: opening the stores fails before it would ever be used."""

    name, dimension, batch_size = "all-MiniLM-L6-v2", 384, 64


def test_unreachable_dependencies_keep_the_app_up_and_not_ready(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        api_key="k",
        database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none",
    )
    app = create_app(settings, embedder=UnusedEmbedder())  # type: ignore[arg-type]
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 503
        answer = client.get("/api/v1/datasets", headers={"Authorization": "Bearer k"})
        assert answer.status_code == 503 and answer.json()["code"] == 105
