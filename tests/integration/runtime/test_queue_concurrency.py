"""Many workers claim from one queue at once, on SQLite and PostgreSQL: every task is claimed
and completed exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ragruntime.models import DEFAULT_PARSER_CONFIG, NewDocument, TaskState
from ragruntime.store.metadata import SqlMetadataStore
from ragruntime.store.queue import ClaimPolicy, TaskQueue
from tests.fixtures.services import PostgresServer

pytestmark = pytest.mark.integration

TASKS = 40
WORKERS = 6


def _claim_everything(store: SqlMetadataStore) -> None:
    dataset = store.create_dataset(
        name="concurrency", fields={"embedding_model": "m", "parser_config": DEFAULT_PARSER_CONFIG}
    )
    docs = [NewDocument(f"d{i}", f"{i}.txt", 1, "txt", f"k{i}") for i in range(TASKS)]
    store.add_documents(dataset, docs)
    queue = TaskQueue(store.engine)
    task_ids = queue.enqueue(dataset.id, [d.id for d in docs])
    policy = ClaimPolicy(lease_seconds=300, max_attempts=3)
    claims: list[tuple[str, str]] = []
    completed: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    # Every worker holds one claim before any completes: the claims really are concurrent and
    # the work is shared whatever the scheduler does (no reliance on timing).
    all_claimed_once = threading.Barrier(WORKERS, timeout=60)

    def work(worker: str) -> None:
        try:
            first = True
            while (task := queue.claim(worker, policy)) is not None:
                with lock:
                    claims.append((task.id, worker))
                if first:
                    all_claimed_once.wait()
                    first = False
                if queue.complete(task, worker, 1, 1, "ok") is not None:
                    with lock:
                        completed.append(task.id)
        except BaseException as exc:  # reported by the test thread, never lost in this one
            with lock:
                failures.append(exc)
            all_claimed_once.abort()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not [t.name for t in threads if t.is_alive()], "a worker never finished"
    assert failures == []
    claimed = [task_id for task_id, _ in claims]
    assert sorted(claimed) == sorted(task_ids)  # each task exactly once
    assert sorted(completed) == sorted(task_ids)
    assert {worker for _, worker in claims} == {f"w{i}" for i in range(WORKERS)}  # all shared
    for task_id in task_ids:
        task = queue.get(task_id)
        assert task is not None and task.state == TaskState.DONE and task.attempts == 1
    assert queue.depth() == {"queued": 0, "running": 0}
    store.close()


def test_concurrent_claims_on_sqlite(tmp_path: Path) -> None:
    _claim_everything(SqlMetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}"))


def test_concurrent_claims_on_postgresql(postgres_server: PostgresServer) -> None:
    _claim_everything(SqlMetadataStore.open(postgres_server.create_database("queue")))
