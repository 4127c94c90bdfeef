"""Fault injection against the real emulators: for every fault, over S3, GCS and Azure, the
faulted destination is either reported failed or restores to identical data (issue 16).

Each case backs up to the emulator through a ``FaultProxy`` plus a local sibling destination
(so the repair-from-a-copy path is exercised), then checks the emulator directly, without the
proxy. Retry and deadline settings are tight so the whole matrix takes about a minute.
"""

from __future__ import annotations

import copy
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulators import Emulator
from faultproxy import Fault, FaultProxy

from ragruntime.backup import crypto
from ragruntime.backup.destinations.base import Destination
from ragruntime.backup.destinations.factory import build_destinations
from ragruntime.backup.engine import BackupOptions, BackupResult, run_backup
from ragruntime.backup.repository import Repository
from ragruntime.backup.restore import restore_backup
from ragruntime.backup.verify import verify_integrity
from tests.unit.backup.backup_helpers import DictSink, DictSnapshot, digest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KINDS = ["s3", "gcs", "azure"]
OBJECT = 128 * 1024
CALL_TIMEOUT_S = 5.0
BACKOFF = (0.05, 0.1)


@pytest.fixture
def keyring() -> crypto.Keyring:
    return crypto.Keyring.from_keys([os.urandom(32)])


@pytest.fixture(params=KINDS)
def emulator(request) -> Emulator:
    return request.getfixturevalue(f"{request.param}_emulator")


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[FaultProxy]:
    proxy = FaultProxy(emulator.port)
    yield proxy
    proxy.close()


def state() -> dict[tuple[str, str], bytes]:
    data = {("files", f"doc{i}.bin"): os.urandom(OBJECT + 1000 * i) for i in range(6)}
    data[("database", "ragflow.db")] = os.urandom(3 * OBJECT)
    return data


def config_via(emulator: Emulator, proxy: FaultProxy | None) -> dict[str, Any]:
    raw = copy.deepcopy(emulator.config)
    if proxy is not None:
        block = raw[emulator.kind]
        block["endpoint"] = proxy.endpoint_for(block["endpoint"], emulator.port)
    return raw


def destinations(
    emulator: Emulator, proxy: FaultProxy | None, cluster: str, local: Path | None = None
) -> list[Destination]:
    raws = [config_via(emulator, proxy)]
    if local is not None:
        raws.append({"name": "local", "local": {"path": str(local)}})
    return build_destinations(
        raws, cluster, backoff=BACKOFF, budget_s=60, call_timeout_s=CALL_TIMEOUT_S
    )


def options(cluster: str, **kw: Any) -> BackupOptions:
    return BackupOptions(cluster=cluster, object_size=OBJECT, chunk_size=16384, **kw)


def assert_failed_or_identical(
    emulator: Emulator, cluster: str, result: BackupResult, data: dict, keyring
) -> str:
    """The invariant: reported failed (and listed nowhere there), or restorable and identical."""
    cloud = next(d for d in result.destinations if d.name == emulator.kind)
    direct = Repository(destinations(emulator, None, cluster)[0], cluster)
    listed = {e.backup_id for e in direct.load_catalog().entries}
    if cloud.state == "failed":
        assert cloud.error and result.backup_id not in listed
        return "failed"
    assert cloud.state == "succeeded" and result.backup_id in listed
    assert verify_integrity(direct, result.backup_id, keyring).ok
    sink = DictSink()
    restore_backup(direct, result.backup_id, keyring, sink)
    assert digest(sink.data) == digest(data)
    return "restored"


CONNECTION_FAULTS = {
    "reset-mid-upload": Fault("reset", "up", at_bytes=60_000, connections=3),
    "drop-mid-upload": Fault("drop", "up", at_bytes=90_000, connections=3),
    "reset-mid-reply": Fault("reset", "down", at_bytes=300, connections=3),
    "drop-every-connection-early": Fault("drop", "up", at_bytes=50_000, connections=-1),
    "slow": Fault("slow", "up", rate=4_000_000, connections=-1),
    "stall": Fault("stall", "up", at_bytes=100_000, connections=-1),
}


@pytest.mark.parametrize("fault_name", sorted(CONNECTION_FAULTS))
def test_connection_faults_fail_the_destination_or_keep_it_restorable(
    emulator: Emulator, proxy: FaultProxy, keyring, tmp_path: Path, fault_name: str
) -> None:
    cluster = f"fault-{uuid.uuid4().hex[:8]}"
    data = state()
    proxy.inject(copy.deepcopy(CONNECTION_FAULTS[fault_name]))
    started = time.monotonic()
    result = run_backup(
        DictSnapshot(data),
        destinations(emulator, proxy, cluster, tmp_path / "local"),
        keyring,
        options(cluster),
    )
    elapsed = time.monotonic() - started
    fired = proxy.triggered
    proxy.close()  # ends stalled requests: fake-gcs-server serves nothing while one is open
    assert fired > 0 or fault_name == "slow"  # the fault really happened
    assert result.succeeded  # the local copy always commits
    outcome = assert_failed_or_identical(emulator, cluster, result, data, keyring)
    if fault_name == "stall":
        assert outcome == "failed" and "abandoned" in result.destinations[0].error
        assert elapsed < 4 * CALL_TIMEOUT_S  # abandoned once, not waited on per call
    if fault_name == "slow":
        assert outcome == "restored"


def test_emulator_restart_mid_backup(emulator: Emulator, keyring, tmp_path: Path) -> None:
    cluster = f"restart-{uuid.uuid4().hex[:8]}"
    data = state()
    cloud, local = destinations(emulator, None, cluster, tmp_path / "local")
    puts = {"n": 0}
    inner_put = cloud.put

    def put_then_restart(key: str, body: bytes) -> None:
        inner_put(key, body)
        if key.startswith("data/"):
            puts["n"] += 1
            if puts["n"] == 4:
                emulator.restart()  # SIGKILL: writes it acknowledged may be lost

    cloud.put = put_then_restart  # type: ignore[method-assign]
    result = run_backup(DictSnapshot(data), [cloud, local], keyring, options(cluster))
    assert result.succeeded
    assert_failed_or_identical(emulator, cluster, result, data, keyring)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damage_at_rest_then_incremental(
    emulator: Emulator, keyring, tmp_path: Path, damage: str
) -> None:
    cluster = f"rest-{uuid.uuid4().hex[:8]}"
    data = state()
    (cloud,) = destinations(emulator, None, cluster)
    full = run_backup(DictSnapshot(data), [cloud], keyring, options(cluster))
    assert full.succeeded
    victim = sorted(i.key for i in cloud.list("data/"))[0]
    body = cloud.get(victim)
    if damage == "flip":
        cloud.put(victim, body[:100] + bytes([body[100] ^ 0x04]) + body[101:])
    elif damage == "truncate":
        cloud.put(victim, body[:-13])
    else:
        cloud.delete(victim)
    (cloud,) = destinations(emulator, None, cluster)
    inc = run_backup(DictSnapshot(data), [cloud], keyring, options(cluster, type="incremental"))
    assert inc.type == "incremental" and inc.destinations[0].objects == 1
    assert assert_failed_or_identical(emulator, cluster, inc, data, keyring) == "restored"
