"""The shared destination contract on the in-process backends, and the retry wrapper."""

from __future__ import annotations

import pytest
from backup_helpers import DownDestination
from destination_suite import check_destination_contract

from ragruntime.backup.destinations.base import DestinationError
from ragruntime.backup.destinations.local import LocalDestination
from ragruntime.backup.destinations.memory import MemoryDestination
from ragruntime.backup.destinations.retry import RetryingDestination


def test_memory_destination_meets_the_contract() -> None:
    check_destination_contract(MemoryDestination())


def test_local_destination_meets_the_contract(tmp_path) -> None:
    check_destination_contract(LocalDestination("local", tmp_path / "repo"))


def test_local_destination_refuses_keys_that_escape_its_root(tmp_path) -> None:
    with pytest.raises(DestinationError, match="escapes"):
        LocalDestination("local", tmp_path).put("../outside", b"x")


def test_retry_wrapper_meets_the_contract_and_retries_transient_errors() -> None:
    check_destination_contract(RetryingDestination(MemoryDestination(), sleep=lambda _: None))

    class Flaky(MemoryDestination):
        failures = 2

        def put(self, key: str, data: bytes) -> None:
            if self.failures:
                self.failures -= 1
                raise DestinationError("503 slow down")
            super().put(key, data)

    sleeps: list[float] = []
    flaky = RetryingDestination(Flaky(), backoff=(1, 2, 4), sleep=sleeps.append)
    flaky.put("k", b"v")
    assert sleeps == [1, 2] and flaky.get("k") == b"v"


def test_retry_wrapper_gives_up_after_the_backoff_and_never_retries_permanent_errors() -> None:
    sleeps: list[float] = []
    down = DownDestination()
    with pytest.raises(DestinationError, match="refused"):
        RetryingDestination(down, backoff=(1, 1, 1), sleep=sleeps.append).put("k", b"v")
    assert down.calls == 4 and sleeps == [1, 1, 1]
    memory = RetryingDestination(MemoryDestination(), backoff=(1,), sleep=sleeps.append)
    with pytest.raises(DestinationError):
        memory.get("missing")
    assert sleeps == [1, 1, 1]
