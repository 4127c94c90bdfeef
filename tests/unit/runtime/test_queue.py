"""The durable queue: atomic claims, lease expiry retries, fencing, atomic visibility flips."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragruntime.models import DEFAULT_PARSER_CONFIG, NewDocument, RunStatus, TaskState
from ragruntime.store.metadata import SqlMetadataStore
from ragruntime.store.queue import ClaimPolicy, TaskQueue

POLICY = ClaimPolicy(lease_seconds=30, max_attempts=3)


@pytest.fixture
def store(tmp_path: Path) -> SqlMetadataStore:
    return SqlMetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}")


def _document(store: SqlMetadataStore) -> tuple[str, str]:
    dataset = store.create_dataset(
        name="ds", fields={"embedding_model": "m", "parser_config": DEFAULT_PARSER_CONFIG}
    )
    store.add_documents(dataset, [NewDocument("doc1", "a.txt", 3, "txt", "k")])
    return dataset.id, "doc1"


def test_a_task_is_claimed_by_one_worker_only(store: SqlMetadataStore) -> None:
    queue = TaskQueue(store.engine)
    dataset_id, doc = _document(store)
    queue.enqueue(dataset_id, [doc])
    first = queue.claim("w1", POLICY, now=100.0)
    assert first is not None and first.attempts == 1
    assert queue.claim("w2", POLICY, now=101.0) is None
    assert queue.depth() == {"queued": 0, "running": 1}


def test_an_expired_lease_is_claimed_again_and_the_old_worker_is_fenced_out(
    store: SqlMetadataStore,
) -> None:
    queue = TaskQueue(store.engine)
    dataset_id, doc = _document(store)
    queue.enqueue(dataset_id, [doc])
    stale = queue.claim("w1", POLICY, now=100.0)
    fresh = queue.claim("w2", POLICY, now=100.0 + POLICY.lease_seconds + 1)
    assert stale is not None and fresh is not None
    assert fresh.attempts == 2 and fresh.generation != stale.generation
    assert queue.complete(stale, "w1", 5, 50, "done") is None
    assert store.get_document(dataset_id, doc).active_generation is None
    completion = queue.complete(fresh, "w2", 4, 40, "done")
    assert completion is not None and completion.previous_generation is None
    document = store.get_document(dataset_id, doc)
    assert document.active_generation == fresh.generation
    assert (document.run, document.chunk_count, document.progress) == (RunStatus.DONE, 4, 1.0)


def test_completion_bumps_the_dataset_version(store: SqlMetadataStore) -> None:
    queue = TaskQueue(store.engine)
    dataset_id, doc = _document(store)
    before = store.dataset_versions([dataset_id])[dataset_id]
    queue.enqueue(dataset_id, [doc])
    task = queue.claim("w", POLICY)
    assert task is not None and queue.complete(task, "w", 1, 1, "ok") is not None
    assert store.dataset_versions([dataset_id])[dataset_id] > before


def test_a_released_task_is_queued_again_without_using_an_attempt(store: SqlMetadataStore) -> None:
    queue = TaskQueue(store.engine)
    dataset_id, doc = _document(store)
    queue.enqueue(dataset_id, [doc])
    task = queue.claim("w1", POLICY)
    assert task is not None and queue.release(task, "w1")
    stored = queue.get(task.id)
    assert stored is not None and stored.state == TaskState.QUEUED and stored.attempts == 0
    again = queue.claim("w2", POLICY)
    assert again is not None and again.id == task.id and again.attempts == 1


def test_a_task_abandoned_max_attempts_times_fails_the_document(store: SqlMetadataStore) -> None:
    queue = TaskQueue(store.engine)
    dataset_id, doc = _document(store)
    queue.enqueue(dataset_id, [doc])
    now = 0.0
    for attempt in range(POLICY.max_attempts):
        assert queue.claim(f"w{attempt}", POLICY, now=now) is not None
        now += POLICY.lease_seconds + 1
    assert queue.claim("late", POLICY, now=now) is None
    document = store.get_document(dataset_id, doc)
    assert document.run == RunStatus.FAIL and "abandoned" in document.progress_msg


def test_cancel_stops_a_running_task_and_its_heartbeat_reports_the_loss(
    store: SqlMetadataStore,
) -> None:
    queue = TaskQueue(store.engine)
    dataset_id, doc = _document(store)
    queue.enqueue(dataset_id, [doc])
    task = queue.claim("w", POLICY)
    assert task is not None
    assert queue.cancel(dataset_id, [doc]) == 1
    assert queue.heartbeat(task, "w", 30, 0.5, "working") is False
    assert store.get_document(dataset_id, doc).run == RunStatus.CANCEL


def test_re_enqueueing_supersedes_the_previous_task(store: SqlMetadataStore) -> None:
    queue = TaskQueue(store.engine)
    dataset_id, doc = _document(store)
    first_id = queue.enqueue(dataset_id, [doc])[0]
    second_id = queue.enqueue(dataset_id, [doc])[0]
    first = queue.get(first_id)
    assert first is not None and first.state == TaskState.CANCELLED
    claimed = queue.claim("w", POLICY)
    assert claimed is not None and claimed.id == second_id
