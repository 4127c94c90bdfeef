"""Worker stops and crashes mid-task: SIGTERM lets an in-flight upload complete and returns the
task to the queue; SIGKILL leaves it leased until the lease expires, then another process retries
it. Nothing is ever half-visible, and the last process serves the reopened vector store."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from ragruntime.models import NewDocument, RunStatus, TaskState
from ragruntime.store.files import LocalFileStore
from ragruntime.store.metadata import SqlMetadataStore
from ragruntime.store.queue import TaskQueue
from tests.fixtures.services import RuntimeProcess, start_runtime
from tests.integration.runtime.conftest import Api

pytestmark = pytest.mark.integration

LINES = 1200


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


UPLOAD_HEAD = b"first half of an upload that is in flight during shutdown\n"
UPLOAD_TAIL = b"second half, sent after SIGTERM\n"


def _active_connections(runtime: RuntimeProcess) -> float:
    """In-flight HTTP requests, this /metrics request included."""
    text = requests.get(f"{runtime.base_url}/metrics", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("ragflow_active_connections "))
    return float(line.split()[1])


def _slow_upload(
    runtime: RuntimeProcess, dataset_id: str, between: Callable[[], None]
) -> requests.Response:
    """Stream a multipart upload and call ``between`` after its first half is sent."""
    boundary = "ragruntime-test-boundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="inflight.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode() + UPLOAD_HEAD
        between()
        time.sleep(1.0)  # uvicorn is shutting down meanwhile
        yield UPLOAD_TAIL + f"\r\n--{boundary}--\r\n".encode()

    return requests.post(
        f"{runtime.base_url}/api/v1/datasets/{dataset_id}/documents",
        data=body(),
        headers={
            "Authorization": f"Bearer {runtime.api_key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        timeout=60,
    )


def test_stopped_and_crashed_workers_never_lose_a_task_or_expose_half_of_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    store = SqlMetadataStore.open(f"sqlite:///{data_dir / 'ragflow.db'}")
    queue = TaskQueue(store.engine)
    dataset = store.create_dataset(
        name="shutdown",
        fields={"embedding_model": "all-MiniLM-L6-v2", "parser_config": {"chunk_token_num": 16}},
    )
    text = "\n".join(f"Sentence {i} talks about topic {i % 17}." for i in range(LINES))
    LocalFileStore(data_dir / "files").save(f"{dataset.id}/doc", text.encode())
    store.add_documents(
        dataset, [NewDocument("doc", "long.txt", len(text), "txt", f"{dataset.id}/doc")]
    )
    (task_id,) = queue.enqueue(dataset.id, ["doc"])
    env = {"RAGFLOW_SHUTDOWN_GRACE_SECONDS": "0", "RAGFLOW_EMBEDDING_BATCH_SIZE": "4"}

    first = start_runtime(data_dir, role="all", extra_env=env)
    _wait(
        lambda: store.get_document(dataset.id, "doc").progress > 0.25,
        120,
        "worker never got past parsing",
    )

    # An upload is in flight when SIGTERM arrives: it must still complete.
    def terminate_once_the_upload_is_in_flight() -> None:
        _wait(lambda: _active_connections(first) >= 2, 30, "upload never reached the app")
        first.process.send_signal(signal.SIGTERM)

    upload = _slow_upload(first, dataset.id, terminate_once_the_upload_is_in_flight)
    assert upload.status_code == 200 and upload.json()["code"] == 0, upload.text
    assert upload.json()["data"][0]["size"] == len(UPLOAD_HEAD + UPLOAD_TAIL)
    assert first.process.wait(timeout=60) in (0, -15)
    assert "task returned to the queue" in first.log()

    task = queue.get(task_id)
    document = store.get_document(dataset.id, "doc")
    assert task is not None and task.state == TaskState.QUEUED and task.attempts == 0
    assert document.active_generation is None and document.chunk_count == 0

    # The second process crashes (SIGKILL) mid-task: its lease expires and the task is retried.
    crash_env = {**env, "RAGFLOW_TASK_LEASE_SECONDS": "5"}
    crashing = start_runtime(data_dir, role="worker", extra_env=crash_env)
    _wait(
        lambda: store.get_document(dataset.id, "doc").progress > 0.25,
        120,
        "second worker never got past parsing",
    )
    crashing.stop(signal.SIGKILL)
    crashed = queue.get(task_id)
    assert crashed is not None and crashed.state == TaskState.RUNNING and crashed.attempts == 1
    assert store.get_document(dataset.id, "doc").active_generation is None

    # The next process (API + worker) reopens the Milvus Lite data the others wrote.
    last = start_runtime(data_dir, role="all", extra_env=crash_env)
    try:
        _wait(
            lambda: store.get_document(dataset.id, "doc").run == RunStatus.DONE,
            240,
            "the task was not retried to completion",
        )
        api = Api(last.base_url, last.api_key)
        document = store.get_document(dataset.id, "doc")
        listed = api.ok(
            "GET", f"/datasets/{dataset.id}/documents/doc/chunks", params={"page_size": 5}
        )
        assert listed["total"] == document.chunk_count  # no chunk of the crashed run is visible
        hits = api.ok(
            "POST", "/retrieval", json={"question": "Sentence 7", "dataset_ids": [dataset.id]}
        )
        assert hits["total"] >= 1 and hits["chunks"][0]["document_id"] == "doc"
    finally:
        last.stop()
    finished = queue.get(task_id)
    assert finished is not None and finished.state == TaskState.DONE and finished.attempts == 2
    assert document.chunk_count > LINES // 4 and document.active_generation == finished.generation
