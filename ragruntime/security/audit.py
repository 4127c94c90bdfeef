"""The audit trail: one JSON object per line, on stdout and optionally appended to a file.

Events (``category`` / ``outcome``):

- ``authentication`` / ``success`` | ``failure``: a request presented a key (or none);
- ``authorization`` / ``denied``: the key's role or dataset scope does not cover the route;
- ``data_access`` / ``success`` | ``failure``: an allowed read or write, with the dataset,
  document and chunk ids it named (never names, content or queries);
- ``configuration`` / ``success`` | ``failure``: datasets created, changed or deleted, keys
  created, rotated, revoked, or synced from Secrets.

Each carries ``request_id``, ``key_id`` (never the key), ``role`` and ``outcome``. Callers pass
ids only; ``AuditLog.record`` refuses nothing but writes only the fields it is given, so the
rule "no secrets" is kept by the callers (``ragruntime.api.auth``, the key routes, the CLI).
Each event also increments ``ragflow_audit_events_total{category,outcome}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

Counter = Callable[[str, str], None]


class AuditLog:
    """Thread-safe JSON-lines writer; ``stream`` is stdout unless a caller (the CLI) needs it."""

    def __init__(
        self,
        *,
        file: Path | None = None,
        stream: TextIO | None = None,
        count: Counter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stream = stream  # None: whatever sys.stdout is when an event is written
        self.file = file
        self._count = count or (lambda _category, _outcome: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._handle: TextIO | None = None
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(file, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def record(self, category: str, outcome: str, **fields: Any) -> dict[str, Any]:
        """Write one event; ``fields`` with a None value are left out."""
        now = self._clock()
        event: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now % 1 * 1000):03d}Z",
            "audit": True,
            "category": category,
            "outcome": outcome,
        }
        event.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(event, sort_keys=False, default=str) + "\n"
        with self._lock:
            stream = self._stream if self._stream is not None else sys.stdout
            stream.write(line)
            stream.flush()
            if self._handle is not None:
                self._handle.write(line)
        self._count(category, outcome)
        return event

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
