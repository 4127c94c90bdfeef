"""The ingestion worker loop: claim a task, keep its lease alive, run it, repeat.

Runs in background threads of ``ragruntime serve --role worker|all`` (started and stopped by the
app lifespan) or directly from Python. ``stop()`` makes the loop stop claiming; the task in hand
may finish within ``shutdown_grace_seconds``, after that it is released back to the queue at
the next checkpoint, so a stopping worker never loses a task and never leaves it half-done.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from ragruntime.errors import ShutdownRequested, TaskLost
from ragruntime.ingest.pipeline import Outcome, run_task
from ragruntime.models import Task
from ragruntime.runtime import Runtime

log = logging.getLogger(__name__)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """Renews a task's lease every third of its length; notices when it is lost."""

    def __init__(self, runtime: Runtime, task: Task, worker_id: str) -> None:
        self.runtime, self.task, self.worker_id = runtime, task, worker_id
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        lease = self.runtime.settings.task_lease_seconds
        while not self._done.wait(lease / 3):
            try:
                if not self.runtime.queue.renew(self.task, self.worker_id, lease):
                    self.lost.set()
                    return
            except Exception:
                log.warning("lease renewal failed", exc_info=True)


class Worker:
    """``threads`` loops sharing one runtime; each processes one task at a time."""

    def __init__(self, runtime: Runtime, threads: int = 1) -> None:
        self.runtime = runtime
        self.worker_id = worker_identity()
        self._stop = threading.Event()
        self._stop_deadline = float("inf")
        self._threads = [
            threading.Thread(target=self._loop, name=f"ingest-worker-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        log.info("ingest worker started", extra={"worker": self.worker_id})

    def stop(self, grace_seconds: float) -> None:
        """Stop claiming; let the current task finish within the grace period, else release it."""
        self._stop_deadline = time.monotonic() + grace_seconds
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=grace_seconds + 30)
        log.info("ingest worker stopped", extra={"worker": self.worker_id})

    def run_once(self) -> Outcome | None:
        """Claim and process one task if there is one (tests and benchmarks drive this)."""
        task = self.runtime.queue.claim(self.worker_id, self.runtime.claim_policy)
        if task is None:
            return None
        return self._process(task)

    def _loop(self) -> None:
        poll = self.runtime.settings.worker_poll_seconds
        while not self._stop.is_set():
            try:
                outcome = self.run_once()
            except Exception:
                log.exception("ingest worker iteration failed")
                outcome = None
            if outcome is None:
                self._stop.wait(poll)

    def _process(self, task: Task) -> Outcome:
        with LeaseKeeper(self.runtime, task, self.worker_id) as keeper:

            def checkpoint(progress: float, message: str) -> None:
                if keeper.lost.is_set():
                    raise TaskLost(task.id)
                if self._stop.is_set() and time.monotonic() >= self._stop_deadline:
                    raise ShutdownRequested(task.id)
                lease = self.runtime.settings.task_lease_seconds
                if not self.runtime.queue.heartbeat(task, self.worker_id, lease, progress, message):
                    raise TaskLost(task.id)

            try:
                outcome = run_task(self.runtime, task, self.worker_id, checkpoint)
            except TaskLost:
                outcome = Outcome("lost")
            except ShutdownRequested:
                released = self.runtime.queue.release(task, self.worker_id)
                log.info("task returned to the queue", extra={"task": task.id})
                outcome = Outcome("released" if released else "lost")
        if outcome.status in ("done", "failed"):
            self.runtime.metrics.documents_processed.labels(status=outcome.status).inc()
        log.info(
            "ingest task finished",
            extra={"task": task.id, "document": task.document_id, "status": outcome.status},
        )
        return outcome
