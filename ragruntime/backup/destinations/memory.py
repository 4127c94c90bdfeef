"""In-memory destination: the reference backend for unit tests of the engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ragruntime.backup.destinations.base import NotFound, ObjectInfo


class MemoryDestination:
    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"memory:{self.name}"

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self.objects[key] = bytes(data)

    def get(self, key: str) -> bytes:
        with self._lock:
            if key not in self.objects:
                raise NotFound(f"{key} not found on {self.name}")
            return self.objects[key]

    def stat(self, key: str) -> ObjectInfo | None:
        with self._lock:
            data = self.objects.get(key)
        return None if data is None else ObjectInfo(key, len(data))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            items = sorted(self.objects.items())
        for key, data in items:
            if key.startswith(prefix):
                yield ObjectInfo(key, len(data))

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)
