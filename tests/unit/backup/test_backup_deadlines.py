"""Deadlines: a destination that stops answering is abandoned, not called again, and the
others finish on time (issue 16)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from backup_helpers import DictSink, DictSnapshot, digest

from ragruntime.backup import crypto
from ragruntime.backup.destinations.deadline import DeadlineDestination, DestinationAbandoned
from ragruntime.backup.destinations.memory import MemoryDestination
from ragruntime.backup.destinations.retry import RetryingDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.backup.repository import Repository
from ragruntime.backup.restore import restore_backup

OPTIONS = BackupOptions(cluster="demo", object_size=1024, chunk_size=256)


@pytest.fixture
def keyring() -> crypto.Keyring:
    return crypto.Keyring.from_keys([os.urandom(32)])


class HangingDestination(MemoryDestination):
    """Answers ``answered`` data uploads, then never answers again (a SIGSTOPped server)."""

    def __init__(self, name: str, answered: int) -> None:
        super().__init__(name)
        self.answered = answered
        self.calls_after_hang = 0
        self.hung = threading.Event()
        self.release = threading.Event()

    def _maybe_hang(self) -> None:
        if self.hung.is_set():
            self.calls_after_hang += 1
            self.release.wait(30)

    def put(self, key: str, data: bytes) -> None:
        if key.startswith("data/") and not self.hung.is_set():
            self.answered -= 1
            if self.answered < 0:
                self.hung.set()
        self._maybe_hang()
        super().put(key, data)

    def delete(self, key: str) -> None:
        self._maybe_hang()
        super().delete(key)

    def list(self, prefix: str):
        self._maybe_hang()
        return super().list(prefix)


def wrap(dest, call_timeout: float = 0.3, budget: float = 60.0) -> DeadlineDestination:
    stop = threading.Event()
    retrying = RetryingDestination(dest, (0.01, 0.01), stop=stop)
    return DeadlineDestination(
        retrying, budget_s=budget, call_timeout_s=call_timeout, on_abandon=stop.set
    )


def test_a_hung_destination_is_abandoned_and_the_others_finish(keyring) -> None:
    hanging, good = HangingDestination("hung", answered=3), MemoryDestination("good")
    data = {("files", f"doc{i}.txt"): os.urandom(3000) for i in range(6)}
    started = time.monotonic()
    try:
        result = run_backup(DictSnapshot(data), [wrap(hanging), wrap(good)], keyring, OPTIONS)
        elapsed = time.monotonic() - started
        calls = hanging.calls_after_hang
    finally:
        hanging.release.set()
    assert result.succeeded and elapsed < 5
    hung, ok = result.destinations
    assert hung.state == "failed" and "abandoned" in hung.error and "no answer" in hung.error
    assert ok.state == "succeeded"
    # only the calls in flight when it hung reached it: no lock removal, no listing afterwards
    assert calls <= OPTIONS.uploads_per_destination
    assert "locks/" + result.backup_id + ".json" in hanging.objects
    sink = DictSink()
    restore_backup(Repository(good, "demo"), result.backup_id, keyring, sink)
    assert digest(sink.data) == digest(data)


def test_the_time_budget_bounds_a_slow_destination(keyring) -> None:
    class Slow(MemoryDestination):
        def put(self, key: str, data: bytes) -> None:
            time.sleep(0.05)
            super().put(key, data)

    slow, good = wrap(Slow("slow"), call_timeout=5, budget=0.3), wrap(MemoryDestination("good"))
    data = {("files", f"doc{i}.txt"): os.urandom(3000) for i in range(10)}
    started = time.monotonic()
    result = run_backup(DictSnapshot(data), [slow, good], keyring, OPTIONS)
    assert time.monotonic() - started < 3
    assert result.succeeded and "time budget of 0.3 s" in result.destinations[0].error


def test_an_abandoned_destination_answers_at_once_without_calling_the_store() -> None:
    inner = HangingDestination("hung", answered=0)
    dest = wrap(inner, call_timeout=0.2)
    try:
        with pytest.raises(DestinationAbandoned, match=r"no answer within 0\.2 s"):
            dest.put("data/aa/x", b"x")
        started = time.monotonic()
        for call in (lambda: dest.get("catalog.json"), lambda: dest.delete("locks/x.json")):
            with pytest.raises(DestinationAbandoned):
                call()
        assert time.monotonic() - started < 0.5 and inner.calls_after_hang == 1
    finally:
        inner.release.set()


def test_deadline_settings_are_validated(tmp_path) -> None:
    from ragruntime.backup.settings import BackupConfig

    raw = {
        "destinations": [{"name": "d", "local": {"path": str(tmp_path)}}],
        "keyringFile": "k",
    }
    config = BackupConfig.from_raw({**raw, "destinationTimeoutSeconds": 90})
    assert config.destination_timeout == 90 and config.call_timeout == 120
    with pytest.raises(ValueError, match="destinationTimeoutSeconds must be positive"):
        BackupConfig.from_raw({**raw, "destinationTimeoutSeconds": 0})
    with pytest.raises(ValueError, match="callTimeoutSeconds must be a number"):
        BackupConfig.from_raw({**raw, "callTimeoutSeconds": "soon"})
