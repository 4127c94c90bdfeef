"""Deadlines: a destination that stops answering is abandoned for the rest of the run.

Wraps each retrying destination built by ``factory`` (outermost layer). Two limits:

- ``call_timeout``: one operation, retries included. A store that accepts the connection and
  then says nothing (a stopped process, a black-holed network) would otherwise hold every
  caller for read-timeout x attempts, on every later call too.
- ``budget``: the destination's whole share of one run (backup, verify, restore, prune),
  counted from its first operation; the BackupPolicy's ``destinationTimeoutSeconds``.

Either way the call is answered with ``DestinationAbandoned`` (permanent), every later call
fails the same way at once without reaching the store, and ``on_abandon`` tells the retry layer
underneath to stop retrying the call still in flight. Each call runs in a daemon thread, so a
call that never returns cannot keep the process alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from ragruntime.backup.destinations.base import Destination, DestinationError, ObjectInfo

T = TypeVar("T")
DEFAULT_BUDGET_S = 3600.0  # one destination's share of a run
DEFAULT_CALL_TIMEOUT_S = 120.0  # one operation including its retries (objects are <= 4 MiB)


class DestinationAbandoned(DestinationError):
    """The destination missed a deadline; it is not called again in this run."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class DeadlineDestination:
    def __init__(
        self,
        inner: Destination,
        *,
        budget_s: float = DEFAULT_BUDGET_S,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        on_abandon: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if budget_s <= 0 or call_timeout_s <= 0:
            raise ValueError("destination time budget and call timeout must be positive")
        self.inner = inner
        self.name = inner.name
        self.budget_s = budget_s
        self.call_timeout_s = call_timeout_s
        self.on_abandon = on_abandon
        self.clock = clock
        self.deadline: float | None = None
        self.abandoned = ""

    def describe(self) -> str:
        return self.inner.describe()

    def _abandon(self, why: str) -> DestinationAbandoned:
        if not self.abandoned:
            self.abandoned = f"destination {self.name} abandoned for this run: {why}"
            self.on_abandon()
        return DestinationAbandoned(self.abandoned)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        if self.abandoned:
            raise DestinationAbandoned(self.abandoned)
        now = self.clock()
        if self.deadline is None:
            self.deadline = now + self.budget_s
        remaining = self.deadline - now
        if remaining <= 0:
            raise self._abandon(f"its time budget of {self.budget_s:g} s is spent")
        timeout = min(self.call_timeout_s, remaining)
        outcome: dict[str, object] = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name=f"call-{self.name}", daemon=True).start()
        if not done.wait(timeout):
            if timeout < self.call_timeout_s:
                raise self._abandon(f"its time budget of {self.budget_s:g} s ran out during {what}")
            raise self._abandon(f"{what} got no answer within {self.call_timeout_s:g} s")
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["value"]  # type: ignore[return-value]

    def put(self, key: str, data: bytes) -> None:
        self._call(f"put {key}", lambda: self.inner.put(key, data))

    def get(self, key: str) -> bytes:
        return self._call(f"get {key}", lambda: self.inner.get(key))

    def stat(self, key: str) -> ObjectInfo | None:
        return self._call(f"stat {key}", lambda: self.inner.stat(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(self._call(f"list {prefix}", lambda: list(self.inner.list(prefix))))

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", lambda: self.inner.delete(key))
