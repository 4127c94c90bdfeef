"""In-memory snapshot, sink and fault-injecting destinations shared by the backup unit tests,
and the setting of a standby that follows a primary's local repository (also used by
tests/contract)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from ragruntime.backup.destinations.base import DestinationError
from ragruntime.backup.destinations.memory import MemoryDestination
from ragruntime.backup.engine import SourceEntry
from ragruntime.backup.format import Entry, Manifest
from ragruntime.backup.restore import TargetNotEmpty


class DictSnapshot:
    """A snapshot whose entries are given as ``{(component, path): bytes}``."""

    def __init__(self, data: Mapping[tuple[str, str], bytes]) -> None:
        self.data = dict(data)

    def entries(self) -> Iterator[SourceEntry]:
        for (component, path), body in sorted(self.data.items()):
            yield SourceEntry(
                component, path, lambda body=body: contextlib.closing(io.BytesIO(body)), 1
            )

    def counts(self) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for component, _ in self.data:
            counts[component] = counts.get(component, 0) + 1
        return counts


class DictSink:
    """Restore target collecting entries in memory."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], bytes] = {}
        self.prepared = False

    def prepare(self, force: bool) -> None:
        if self.data and not force:
            raise TargetNotEmpty("sink holds data")
        self.data.clear()
        self.prepared = True

    def write(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        self.data[(entry.component, entry.path)] = b"".join(chunks)

    def finish(self, manifest: Manifest) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for component, _ in self.data:
            counts[component] = counts.get(component, 0) + 1
        return counts

    def discard(self) -> None:
        self.data.clear()


class DownDestination(MemoryDestination):
    """Every call fails like an unreachable endpoint."""

    def __init__(self, name: str = "down") -> None:
        super().__init__(name)
        self.calls = 0

    def put(self, key: str, data: bytes) -> None:
        self.calls += 1
        raise DestinationError(f"connection refused ({self.name})")

    def get(self, key: str) -> bytes:
        self.calls += 1
        raise DestinationError(f"connection refused ({self.name})")


class FailAfterDestination(MemoryDestination):
    """Accepts ``budget`` object uploads, then fails every data upload (a crash mid-upload)."""

    def __init__(self, name: str, budget: int) -> None:
        super().__init__(name)
        self.budget = budget

    def put(self, key: str, data: bytes) -> None:
        if key.startswith("data/"):
            if self.budget <= 0:
                raise DestinationError("connection reset", permanent=True)
            self.budget -= 1
        super().put(key, data)


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def digest(data: Mapping[tuple[str, str], bytes]) -> str:
    h = hashlib.sha256()
    for key, body in sorted(data.items()):
        h.update(repr(key).encode() + hashlib.sha256(body).digest())
    return h.hexdigest()


def local_standby(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, primary: str) -> Path:
    """Set up ``ragruntime standby sync`` of ``primary``; return its backup configuration's path.

    The primary's configuration has a fresh keyring (``tmp_path/keyring``) and one local
    destination (``disk``, under ``tmp_path/repo``); the standby's own stores are SQLite and
    Milvus Lite files in ``tmp_path/standby``.
    """
    monkeypatch.setenv("RAGFLOW_DATA_DIR", str(tmp_path / "standby"))
    monkeypatch.delenv("RAGFLOW_DATABASE_URL", raising=False)
    (tmp_path / "keyring").write_text(base64.b64encode(os.urandom(32)).decode())
    path = tmp_path / "backup.json"
    path.write_text(
        json.dumps(
            {
                "cluster": primary,
                "keyringFile": str(tmp_path / "keyring"),
                "destinations": [{"name": "disk", "local": {"path": str(tmp_path / "repo")}}],
            }
        )
    )
    return path
