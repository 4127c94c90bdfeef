"""The durable ingestion queue: a table of tasks with leases, in the metadata database.

The API enqueues (``enqueue``/``cancel``); workers ``claim`` a task with an atomic compare-and-set
UPDATE (the row must still be queued, or running with an expired lease), renew the lease with
``heartbeat`` and finish with ``complete``/``fail``/``release``. Each of these is fenced on
``lease_owner`` and ``state='running'``: a worker that lost its lease (crashed, paused, cancelled)
can no longer change anything, so a task's effect happens once. ``complete`` flips the document's
``active_generation`` in the same transaction, which is what makes its chunks searchable all at
once. Used by ``ragruntime.services.documents`` and ``ragruntime.ingest.worker``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ragruntime.models import RunStatus, Task, TaskState
from ragruntime.store.database import now_ms
from ragruntime.store.metadata import bump_dataset_version, new_id
from ragruntime.store.schema import documents, tasks

ACTIVE_STATES = (TaskState.QUEUED.value, TaskState.RUNNING.value)


@dataclass(frozen=True)
class ClaimPolicy:
    lease_seconds: float
    max_attempts: int


@dataclass(frozen=True)
class Completion:
    previous_generation: int | None


def new_generation() -> int:
    """A fresh chunk generation: random, positive, fits in a signed 64-bit column."""
    return secrets.randbits(62) + 1


class TaskQueue:
    """Queue operations over the shared SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def enqueue(self, dataset_id: str, document_ids: Sequence[str]) -> list[str]:
        """Queue one task per document, superseding any queued or running task for it."""
        stamp = now_ms()
        created: list[str] = []
        with self.engine.begin() as conn:
            for document_id in document_ids:
                conn.execute(
                    tasks.update()
                    .where(tasks.c.document_id == document_id, tasks.c.state.in_(ACTIVE_STATES))
                    .values(state=TaskState.CANCELLED.value, lease_owner=None, updated_at_ms=stamp)
                )
                task_id = new_id()
                conn.execute(
                    tasks.insert().values(
                        id=task_id,
                        document_id=document_id,
                        dataset_id=dataset_id,
                        state=TaskState.QUEUED.value,
                        attempts=0,
                        generation=0,
                        created_at_ms=stamp,
                        updated_at_ms=stamp,
                    )
                )
                conn.execute(
                    documents.update()
                    .where(documents.c.id == document_id)
                    .values(
                        run=RunStatus.RUNNING.value,
                        progress=0.0,
                        progress_msg="Task is queued...",
                        process_begin_at_ms=stamp,
                        process_duration=0.0,
                        updated_at_ms=stamp,
                    )
                )
                created.append(task_id)
        return created

    def cancel(self, dataset_id: str, document_ids: Sequence[str]) -> int:
        """Stop parsing: active tasks become cancelled; the documents show CANCEL."""
        stamp = now_ms()
        with self.engine.begin() as conn:
            result = conn.execute(
                tasks.update()
                .where(
                    tasks.c.dataset_id == dataset_id,
                    tasks.c.document_id.in_(list(document_ids)),
                    tasks.c.state.in_(ACTIVE_STATES),
                )
                .values(state=TaskState.CANCELLED.value, lease_owner=None, updated_at_ms=stamp)
            )
            conn.execute(
                documents.update()
                .where(
                    documents.c.id.in_(list(document_ids)),
                    documents.c.run == RunStatus.RUNNING.value,
                )
                .values(
                    run=RunStatus.CANCEL.value, progress_msg="Task cancelled.", updated_at_ms=stamp
                )
            )
        return int(result.rowcount or 0)

    def claim(self, worker_id: str, policy: ClaimPolicy, now: float | None = None) -> Task | None:
        """Take the oldest claimable task, or None. Tasks past ``max_attempts`` fail instead."""
        now = time.time() if now is None else now
        self._fail_exhausted(policy, now)
        claimable = sa.or_(
            tasks.c.state == TaskState.QUEUED.value,
            sa.and_(tasks.c.state == TaskState.RUNNING.value, tasks.c.lease_expires_at < now),
        )
        for _ in range(5):  # lost races with other workers: try the next candidate
            with self.engine.begin() as conn:
                query = sa.select(tasks).where(claimable).order_by(tasks.c.created_at_ms).limit(1)
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                row = conn.execute(query).mappings().first()
                if row is None:
                    return None
                generation = new_generation()
                updated = conn.execute(
                    tasks.update()
                    .where(tasks.c.id == row["id"], claimable)
                    .values(
                        state=TaskState.RUNNING.value,
                        lease_owner=worker_id,
                        lease_expires_at=now + policy.lease_seconds,
                        attempts=tasks.c.attempts + 1,
                        generation=generation,
                        updated_at_ms=now_ms(),
                    )
                )
                if updated.rowcount == 1:
                    return Task(
                        id=row["id"],
                        document_id=row["document_id"],
                        dataset_id=row["dataset_id"],
                        state=TaskState.RUNNING,
                        attempts=int(row["attempts"]) + 1,
                        generation=generation,
                        lease_owner=worker_id,
                        lease_expires_at=now + policy.lease_seconds,
                    )
        return None

    def _fail_exhausted(self, policy: ClaimPolicy, now: float) -> None:
        exhausted = sa.and_(
            tasks.c.state == TaskState.RUNNING.value,
            tasks.c.lease_expires_at < now,
            tasks.c.attempts >= policy.max_attempts,
        )
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(tasks.c.id, tasks.c.document_id).where(exhausted)).all()
            for task_id, document_id in rows:
                done = conn.execute(
                    tasks.update()
                    .where(tasks.c.id == task_id, exhausted)
                    .values(state=TaskState.FAILED.value, error="worker lost", lease_owner=None)
                )
                if done.rowcount == 1:
                    message = f"Failed: the task was abandoned {policy.max_attempts} times."
                    _finish_document(conn, document_id, RunStatus.FAIL, -1.0, message)

    def _fence(self, task: Task, worker_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            tasks.c.id == task.id,
            tasks.c.lease_owner == worker_id,
            tasks.c.state == TaskState.RUNNING.value,
            tasks.c.generation == task.generation,
        )

    def renew(self, task: Task, worker_id: str, lease_seconds: float) -> bool:
        """Extend the lease only; False when the task is no longer ours."""
        with self.engine.begin() as conn:
            renewed = conn.execute(
                tasks.update()
                .where(self._fence(task, worker_id))
                .values(lease_expires_at=time.time() + lease_seconds)
            )
        return renewed.rowcount == 1

    def heartbeat(
        self, task: Task, worker_id: str, lease_seconds: float, progress: float, message: str
    ) -> bool:
        """Extend the lease and report progress; False when the task is no longer ours."""
        with self.engine.begin() as conn:
            renewed = conn.execute(
                tasks.update()
                .where(self._fence(task, worker_id))
                .values(lease_expires_at=time.time() + lease_seconds, updated_at_ms=now_ms())
            )
            if renewed.rowcount != 1:
                return False
            conn.execute(
                documents.update()
                .where(documents.c.id == task.document_id)
                .values(progress=progress, progress_msg=message, updated_at_ms=now_ms())
            )
        return True

    def complete(
        self, task: Task, worker_id: str, chunk_count: int, token_count: int, message: str
    ) -> Completion | None:
        """Make the task's generation the searchable one, in one transaction with the fence.

        Returns the generation it replaced (for cleanup), or None if the task is no longer ours.
        """
        with self.engine.begin() as conn:
            done = conn.execute(
                tasks.update()
                .where(self._fence(task, worker_id))
                .values(state=TaskState.DONE.value, lease_owner=None, updated_at_ms=now_ms())
            )
            if done.rowcount != 1:
                return None
            previous = conn.execute(
                sa.select(documents.c.active_generation).where(documents.c.id == task.document_id)
            ).scalar()
            conn.execute(
                documents.update()
                .where(documents.c.id == task.document_id)
                .values(active_generation=task.generation, chunk_count=chunk_count)
                .values(token_count=token_count)
            )
            _finish_document(conn, task.document_id, RunStatus.DONE, 1.0, message)
            bump_dataset_version(conn, task.dataset_id)
        return Completion(previous_generation=None if previous is None else int(previous))

    def fail(self, task: Task, worker_id: str, error: str) -> bool:
        """A permanent failure (corrupt file...): the document shows FAIL with the reason."""
        with self.engine.begin() as conn:
            failed = conn.execute(
                tasks.update()
                .where(self._fence(task, worker_id))
                .values(state=TaskState.FAILED.value, error=error, lease_owner=None)
            )
            if failed.rowcount != 1:
                return False
            _finish_document(conn, task.document_id, RunStatus.FAIL, -1.0, f"Failed: {error}")
        return True

    def release(self, task: Task, worker_id: str) -> bool:
        """Give the task back (shutdown): queued again, this attempt not counted."""
        with self.engine.begin() as conn:
            released = conn.execute(
                tasks.update()
                .where(self._fence(task, worker_id))
                .values(
                    state=TaskState.QUEUED.value,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=tasks.c.attempts - 1,
                    updated_at_ms=now_ms(),
                )
            )
            if released.rowcount == 1:
                conn.execute(
                    documents.update()
                    .where(documents.c.id == task.document_id)
                    .values(
                        progress=0.0, progress_msg="Task returned to the queue (worker stopped)."
                    )
                )
        return released.rowcount == 1

    def get(self, task_id: str) -> Task | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
        if row is None:
            return None
        return Task(
            id=row["id"],
            document_id=row["document_id"],
            dataset_id=row["dataset_id"],
            state=TaskState(row["state"]),
            attempts=int(row["attempts"]),
            generation=int(row["generation"]),
            lease_owner=row["lease_owner"],
            lease_expires_at=row["lease_expires_at"],
        )

    def tasks_for_document(self, document_id: str) -> list[Task]:
        with self.engine.connect() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    sa.select(tasks.c.id)
                    .where(tasks.c.document_id == document_id)
                    .order_by(tasks.c.created_at_ms)
                )
            ]
        return [t for t in (self.get(i) for i in ids) if t is not None]

    def depth(self) -> dict[str, int]:
        """Tasks per active state (for ragflow_ingest_queue_depth)."""
        query = (
            sa.select(tasks.c.state, sa.func.count())
            .where(tasks.c.state.in_(ACTIVE_STATES))
            .group_by(tasks.c.state)
        )
        counts = {state: 0 for state in ACTIVE_STATES}
        with self.engine.connect() as conn:
            for state, count in conn.execute(query):
                counts[state] = int(count)
        return counts


def _finish_document(
    conn: sa.Connection, document_id: str, run: RunStatus, progress: float, message: str
) -> None:
    begin = conn.execute(
        sa.select(documents.c.process_begin_at_ms).where(documents.c.id == document_id)
    ).scalar()
    stamp = now_ms()
    duration = (stamp - begin) / 1000.0 if begin else 0.0
    conn.execute(
        documents.update()
        .where(documents.c.id == document_id)
        .values(
            run=run.value,
            progress=progress,
            progress_msg=message,
            process_duration=duration,
            updated_at_ms=stamp,
        )
    )
