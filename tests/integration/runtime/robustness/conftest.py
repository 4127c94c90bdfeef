"""A real runtime served in-process (embedded mode: SQLite + Milvus Lite, the real embedding
model, the ingestion worker in a thread) for the robustness tests, and the checks that every
dataset still lists, retrieves and backs up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragruntime.app import create_app
from ragruntime.backup.snapshot import release_lite
from ragruntime.config import Settings
from ragruntime.embedding import Embedder
from tests.integration.backup.runtime_helpers import backup_cli, summary, write_backup_config

API_KEY = "robust-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder.load("all-MiniLM-L6-v2", "cpu", 64)


class Client:
    """TestClient calls against /api/v1 with the key; ``ok`` asserts RAGFlow's success."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.http, self.settings = client, settings

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        if "json" in kwargs:  # ASCII JSON: lone surrogates travel as \ud800 escapes
            kwargs["content"] = json.dumps(kwargs.pop("json"))
            headers["Content-Type"] = "application/json"
        return self.http.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        body = response.json()
        assert response.status_code == 200 and body["code"] == 0, body
        return body.get("data")

    def rejected(self, method: str, path: str, field: str, **kwargs: Any) -> str:
        """Assert a 400 with code 101 whose message names ``field``; return the message."""
        response = self.call(method, path, **kwargs)
        body = response.json()
        assert response.status_code == 400 and body["code"] == 101, (response.status_code, body)
        assert f"<{field}" in body["message"], body["message"]
        return str(body["message"])

    def wait_terminal(self, dataset_id: str, ids: list[str], timeout_s: float = 90) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            docs = self.ok("GET", f"/datasets/{dataset_id}/documents", params={"page_size": 500})
            by_id = {d["id"]: d for d in docs["docs"] if d["id"] in ids}
            if all(by_id[i]["run"] in ("DONE", "FAIL", "CANCEL") for i in ids):
                return by_id
            assert time.monotonic() < deadline, f"documents not finished: {by_id}"
            time.sleep(0.2)

    def ingest(self, dataset_id: str, files: list[tuple[str, bytes]]) -> list[str]:
        parts = [("file", (name, data)) for name, data in files]
        ids = [d["id"] for d in self.ok("POST", f"/datasets/{dataset_id}/documents", files=parts)]
        self.ok("POST", f"/datasets/{dataset_id}/chunks", json={"document_ids": ids})
        docs = self.wait_terminal(dataset_id, ids)
        assert {d["run"] for d in docs.values()} == {"DONE"}, docs
        return ids


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        api_key=API_KEY,
        cache_url="",
        worker_poll_seconds=0.1,
        max_upload_bytes=8 * 1024 * 1024,
        **overrides,
    )


@contextmanager
def serve(settings: Settings, embedder: Embedder) -> Iterator[Client]:
    """The app with its lifespan (stores opened, worker started) until the block ends."""
    with TestClient(create_app(settings, embedder=embedder)) as client:
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get("/ready").json()
            time.sleep(0.1)
        yield Client(client, settings)
    release_lite(settings.resolved_vector_uri())


@pytest.fixture
def runtime_client(tmp_path: Path, embedder: Embedder) -> Iterator[Client]:
    with serve(settings_for(tmp_path / "data"), embedder) as client:
        yield client


def assert_datasets_healthy(client: Client) -> list[str]:
    """Every dataset lists, its documents and chunks list, and retrieval over all answers."""
    datasets = client.ok("GET", "/datasets", params={"page_size": 1000})
    ids = [d["id"] for d in datasets]
    for dataset_id in ids:
        docs = client.ok("GET", f"/datasets/{dataset_id}/documents", params={"page_size": 1000})
        for doc in docs["docs"]:
            client.ok("GET", f"/datasets/{dataset_id}/documents/{doc['id']}/chunks")
        client.ok("POST", "/retrieval", json={"question": "anything", "dataset_ids": [dataset_id]})
    if ids:
        client.ok("POST", "/retrieval", json={"question": "anything", "dataset_ids": ids})
    return ids


def assert_backs_up(settings: Settings, tmp_path: Path) -> dict[str, Any]:
    """A full backup of the (closed) runtime's data succeeds with the backup CLI."""
    config = write_backup_config(
        tmp_path, [{"name": "disk", "local": {"path": str(tmp_path / "backups")}}], cluster="fz"
    )
    run = backup_cli(["run"], settings, config)
    result = summary(run)
    assert run.returncode == 0 and result["succeeded"], (run.stdout, run.stderr)
    return result
