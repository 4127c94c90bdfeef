"""A real runtime for the backup tests: stores on disk, the real embedding model, ingestion run
in-process, retrieval through ``ragruntime.retrieval.search``, and the backup CLI as a process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ragruntime.backup.snapshot import release_lite
from ragruntime.config import Settings
from ragruntime.embedding import Embedder
from ragruntime.ingest.worker import Worker
from ragruntime.retrieval.search import RetrievalRequest, retrieve
from ragruntime.runtime import Runtime, open_runtime
from ragruntime.services.datasets import create_dataset
from ragruntime.services.documents import Upload, parse_documents, upload_documents

TOPICS = {
    "volcanoes.txt": "Volcanoes erupt when magma rises through the crust. Basaltic lava flows "
    "are runny; andesitic eruptions are explosive and build steep stratovolcanoes.",
    "bread.txt": "Sourdough bread rises thanks to wild yeast and lactic acid bacteria living in "
    "a starter. Long fermentation gives the crumb its open texture and sour taste.",
    "satellites.txt": "Geostationary satellites orbit 35786 kilometres above the equator, so "
    "they appear fixed in the sky; GPS satellites use medium earth orbits instead.",
    "chess.txt": "In chess the Sicilian Defence answers 1.e4 with c5, fighting for the centre "
    "asymmetrically. The Najdorf variation is among its sharpest lines.",
    "bees.txt": "Honey bees communicate the direction of flowers with the waggle dance; the "
    "angle of the dance relative to gravity encodes the angle to the sun.",
}
QUESTIONS = ["how do bees tell where flowers are", "explosive eruptions", "sour bread starter"]


def settings_for(data_dir: Path, database_url: str = "", vector_uri: str = "") -> Settings:
    return Settings(
        data_dir=data_dir, database_url=database_url, vector_uri=vector_uri, cache_url=""
    )


def runtime_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "RAGFLOW_DATA_DIR": str(settings.data_dir),
            "RAGFLOW_DATABASE_URL": settings.database_url,
            "RAGFLOW_VECTOR_URI": settings.vector_uri,
            "RAGFLOW_CACHE_URL": "",
            "RAGFLOW_CLUSTER_NAME": "backup-test",
        }
    )
    return env


def populate(runtime: Runtime, topics: dict[str, str] = TOPICS) -> str:
    """Create a dataset, upload and ingest the documents; return the dataset id."""
    dataset = create_dataset(runtime, {"name": "backup-demo"})
    docs = upload_documents(
        runtime, dataset.id, [Upload(name, text.encode()) for name, text in topics.items()]
    )
    parse_documents(runtime, dataset.id, [d.id for d in docs])
    worker = Worker(runtime)
    while worker.run_once() is not None:
        pass
    return dataset.id


def search_results(
    runtime: Runtime, dataset_id: str, *, with_ids: bool = True
) -> list[list[tuple[Any, ...]]]:
    results = []
    for question in QUESTIONS:
        data = retrieve(runtime, RetrievalRequest(question=question, dataset_ids=[dataset_id]))
        results.append(
            [
                (
                    c["id"] if with_ids else "",
                    c["document_id"],
                    c["content"],
                    round(float(c["similarity"]), 5),
                )
                for c in data["chunks"]
            ]
        )
    return results


def open_with(settings: Settings, embedder: Embedder) -> Runtime:
    runtime = open_runtime(settings, embedder=embedder)
    # Milvus Lite reopens collections "released"; load them as a restarted runtime must.
    client = runtime.vectors.client
    for name in client.list_collections():
        client.load_collection(name)
    return runtime


def close(runtime: Runtime) -> None:
    """Close the runtime and free its Milvus Lite file for the backup CLI processes."""
    runtime.close()
    release_lite(runtime.settings.resolved_vector_uri())


def write_backup_config(
    directory: Path,
    destinations: list[dict[str, Any]],
    *,
    cluster: str,
    minimum: int = 1,
    schedules: list[dict[str, Any]] | None = None,
    keys: list[bytes] | None = None,
) -> Path:
    keyring = directory / "keyring"
    keyring.write_text("\n".join(base64.b64encode(k).decode() for k in (keys or [os.urandom(32)])))
    config = {
        "cluster": cluster,
        "destinations": destinations,
        "minSuccessfulDestinations": minimum,
        "keyringFile": str(keyring),
        "schedules": schedules or [],
        "retryBackoffSeconds": [0.1, 0.2],
    }
    path = directory / "backup.json"
    path.write_text(json.dumps(config))
    return path


def backup_cli(
    args: list[str],
    settings: Settings,
    config: Path,
    *,
    timeout: float = 300,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ragruntime", "backup", *args[:1], "--config", str(config)]
    return subprocess.run(
        [*command, *args[1:]],
        env={**runtime_env(settings), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON summary; rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]
