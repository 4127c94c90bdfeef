"""Retry wrapper: repeats transient failures of any destination with a fixed backoff sequence.

Wraps every real destination built by ``factory``. The delays are a sequence (kopf's style), and
``sleep`` is injectable so tests run without waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from ragruntime.backup.destinations.base import Destination, DestinationError, ObjectInfo

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_BACKOFF: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # ~7.5 s in all before giving up


class RetryingDestination:
    def __init__(
        self,
        inner: Destination,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
        stop: threading.Event | None = None,
    ) -> None:
        """``stop``: set when the caller gave up on this destination (``deadline``); the call
        still in flight then makes no further attempt."""
        self.inner = inner
        self.stop = stop
        self.name = inner.name
        self.backoff = tuple(backoff)
        self.sleep = sleep
        self.attempts = 0

    def describe(self) -> str:
        return self.inner.describe()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        for attempt, delay in enumerate((*self.backoff, None), start=1):
            if self.stop is not None and self.stop.is_set():
                raise DestinationError(f"{what} on {self.name} cancelled", permanent=True)
            self.attempts += 1
            try:
                return fn()
            except DestinationError as exc:
                if exc.permanent or delay is None:
                    raise
                log.warning(
                    "backup destination operation failed, retrying",
                    extra={
                        "destination": self.name,
                        "op": what,
                        "attempt": attempt,
                        "delay_s": delay,
                        "error": str(exc),
                    },
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def put(self, key: str, data: bytes) -> None:
        self._call("put", lambda: self.inner.put(key, data))

    def get(self, key: str) -> bytes:
        return self._call("get", lambda: self.inner.get(key))

    def stat(self, key: str) -> ObjectInfo | None:
        return self._call("stat", lambda: self.inner.stat(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(self._call("list", lambda: list(self.inner.list(prefix))))

    def delete(self, key: str) -> None:
        self._call("delete", lambda: self.inner.delete(key))
