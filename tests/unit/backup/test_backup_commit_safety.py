"""A backup reported succeeded is restorable: damaged chunks, lost writes, failed commits,
damaged catalogs and prune racing a backup (issue 16)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from backup_helpers import DictSink, DictSnapshot, DownDestination, digest

from ragruntime.backup import crypto
from ragruntime.backup.destinations.local import LocalDestination
from ragruntime.backup.destinations.memory import MemoryDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.backup.format import CATALOG_NAME, CatalogEntry
from ragruntime.backup.prune import prune
from ragruntime.backup.repository import Repository
from ragruntime.backup.restore import restore_backup
from ragruntime.backup.retention import RetentionPolicy, apply_policy
from ragruntime.backup.verify import verify_integrity

OBJ = 1024
OPTIONS = BackupOptions(cluster="demo", object_size=OBJ, chunk_size=256)
INCREMENTAL = BackupOptions(cluster="demo", object_size=OBJ, chunk_size=256, type="incremental")


@pytest.fixture
def keyring() -> crypto.Keyring:
    return crypto.Keyring.from_keys([os.urandom(32)])


def state() -> dict[tuple[str, str], bytes]:
    data = {("files", f"doc{i}.txt"): os.urandom(3000) for i in range(4)}
    data[("database", "ragflow.db")] = os.urandom(5 * OBJ)
    return data


def restored(dest, backup_id: str | None, keyring) -> dict:
    sink = DictSink()
    restore_backup(Repository(dest, "demo"), backup_id, keyring, sink)
    return sink.data


class LossyDestination(MemoryDestination):
    """Acknowledges every data upload but keeps only some (a store that lost writes)."""

    def __init__(self, name: str, drop_every: int, losses: int = 1000) -> None:
        super().__init__(name)
        self.drop_every = drop_every
        self.losses = losses
        self.data_puts = 0

    def put(self, key: str, data: bytes) -> None:
        if key.startswith("data/"):
            self.data_puts += 1
            if self.data_puts % self.drop_every == 0 and self.losses > 0:
                self.losses -= 1
                return
        super().put(key, data)


class FailingMarkerDestination(MemoryDestination):
    """Takes data and manifests, but cannot write commit markers."""

    def put(self, key: str, data: bytes) -> None:
        if key.endswith("/committed"):
            from ragruntime.backup.destinations.base import DestinationError

            raise DestinationError("connection reset")
        super().put(key, data)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_incremental_reuploads_a_damaged_chunk_of_its_parent(tmp_path: Path, keyring, damage):
    dest = LocalDestination("local", tmp_path)
    data = state()
    run_backup(DictSnapshot(data), [dest], keyring, OPTIONS)
    chunk = sorted((tmp_path / "data").rglob("*.*"))[0]
    if damage == "flip":
        body = bytearray(chunk.read_bytes())
        body[10] ^= 0x01
        chunk.write_bytes(bytes(body))
    elif damage == "truncate":
        chunk.write_bytes(chunk.read_bytes()[:-7])
    else:
        chunk.unlink()
    inc = run_backup(DictSnapshot(data), [dest], keyring, INCREMENTAL)
    assert inc.succeeded and inc.type == "incremental"
    assert inc.destinations[0].objects == 1  # only the damaged chunk went up again
    assert verify_integrity(Repository(dest, "demo"), inc.backup_id, keyring).ok
    assert digest(restored(dest, inc.backup_id, keyring)) == digest(data)


def test_listing_md5_catches_a_flip_without_downloading(keyring) -> None:
    class Md5Memory(MemoryDestination):
        gets = 0

        def get(self, key: str) -> bytes:
            self.gets += key.startswith("data/")
            return super().get(key)

        def list(self, prefix):
            import hashlib

            from ragruntime.backup.destinations.base import ObjectInfo

            for info in super().list(prefix):
                md5 = hashlib.md5(self.objects[info.key], usedforsecurity=False).hexdigest()
                yield ObjectInfo(info.key, info.size, md5)

    dest = Md5Memory("md5")
    data = state()
    run_backup(DictSnapshot(data), [dest], keyring, OPTIONS)
    key = sorted(k for k in dest.objects if k.startswith("data/"))[0]
    body = bytearray(dest.objects[key])
    body[-1] ^= 0x80
    dest.objects[key] = bytes(body)
    inc = run_backup(DictSnapshot(data), [dest], keyring, INCREMENTAL)
    assert inc.succeeded and inc.destinations[0].objects == 1 and dest.gets == 0
    assert digest(restored(dest, inc.backup_id, keyring)) == digest(data)


def test_lost_acknowledged_writes_are_copied_from_a_sibling(keyring) -> None:
    lossy, good = LossyDestination("lossy", 3, losses=4), MemoryDestination("good")
    data = state()
    result = run_backup(DictSnapshot(data), [lossy, good], keyring, OPTIONS)
    assert result.succeeded and [d.state for d in result.destinations] == ["succeeded"] * 2
    assert lossy.losses == 0
    assert verify_integrity(Repository(lossy, "demo"), result.backup_id, keyring).ok
    assert digest(restored(lossy, result.backup_id, keyring)) == digest(data)


def test_lost_writes_without_a_copy_fail_the_destination_and_list_nothing(keyring) -> None:
    lossy = LossyDestination("lossy", drop_every=2)
    result = run_backup(DictSnapshot(state()), [lossy], keyring, OPTIONS)
    assert not result.succeeded
    assert "missing or damaged after upload" in result.destinations[0].error
    assert Repository(lossy, "demo").load_catalog().entries == ()


def test_a_failed_backup_is_listed_on_no_destination(keyring) -> None:
    first, second = MemoryDestination("first"), FailingMarkerDestination("second")
    options = BackupOptions(cluster="demo", object_size=OBJ, chunk_size=256, min_successful=2)
    result = run_backup(DictSnapshot(state()), [first, second], keyring, options)
    assert not result.succeeded and "nothing committed" in result.error
    for dest in (first, second):
        assert Repository(dest, "demo").load_catalog().entries == ()
        assert not any(k.endswith("/committed") for k in dest.objects)


@pytest.mark.parametrize("damage", [b"", b'{"formatVersion": 1, "clus', b"\x00garbage"])
def test_a_damaged_catalog_heals_and_blocks_nothing(keyring, damage: bytes) -> None:
    dest = MemoryDestination()
    repo = Repository(dest, "demo")
    data = state()
    first = run_backup(DictSnapshot(data), [dest], keyring, OPTIONS)
    dest.objects[CATALOG_NAME] = damage
    assert [e.backup_id for e in repo.load_catalog().entries] == [first.backup_id]
    assert digest(restored(dest, None, keyring)) == digest(data)
    second = run_backup(DictSnapshot(data), [dest], keyring, INCREMENTAL)
    assert second.succeeded and second.parent_id == first.backup_id
    assert prune(repo, {}, dt.datetime.now(dt.UTC)).swept
    dest.objects[CATALOG_NAME] = damage
    catalog, added, dropped = repo.repair_catalog()
    assert added == sorted([first.backup_id, second.backup_id]) and dropped == []
    assert dest.objects[CATALOG_NAME] == catalog.to_bytes()


def test_catalog_drops_entries_without_a_commit_marker(keyring) -> None:
    dest = MemoryDestination()
    repo = Repository(dest, "demo")
    result = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    dest.delete(f"backups/{result.backup_id}/committed")
    assert repo.load_catalog().entries == ()
    assert repo.repair_catalog()[2] == [result.backup_id]


def _entry(backup_id: str, started: str, finished: str) -> CatalogEntry:
    return CatalogEntry(
        backup_id=backup_id,
        type="full",
        parent_id=None,
        schedule="daily",
        started_at=started,
        finished_at=finished,
        plain_bytes=1,
        stored_bytes=1,
        manifest_sha256="",
        master_key_id="k",
    )


def test_retention_orders_by_snapshot_time_not_finish_time() -> None:
    slow = _entry("a", "2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z")  # older snapshot
    fast = _entry("b", "2026-01-01T01:00:00Z", "2026-01-01T01:10:00Z")  # newer snapshot
    decision = apply_policy(
        [slow, fast], {"daily": RetentionPolicy(count=1)}, dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    )
    assert [b.backup_id for b in decision.keep] == ["b"]
    assert [b.backup_id for b in decision.remove] == ["a"]


def test_prune_report_lists_as_removed_only_what_it_removed(keyring) -> None:
    dest = MemoryDestination()
    repo = Repository(dest, "demo")
    options = BackupOptions(cluster="demo", object_size=OBJ, chunk_size=256, schedule="daily")
    for _ in range(2):
        run_backup(DictSnapshot(state()), [dest], keyring, options)
    now = dt.datetime.now(dt.UTC)
    repo.write_lock("20990101T000000Z-abcdef", now)
    report = prune(repo, {"daily": RetentionPolicy(count=1)}, now)
    assert report.removed == [] and len(report.to_remove) == 1 and not report.swept
    assert report.summary()["removed"] == [] and len(report.summary()["wouldRemove"]) == 1


class RacingDestination(MemoryDestination):
    """Runs ``hook`` (once) when prune lists ``data/``: a backup that starts and finishes
    between prune's lock check and its sweep."""

    def __init__(self) -> None:
        super().__init__("racing")
        self.hook = None

    def list(self, prefix: str):
        if prefix == "data/" and self.hook is not None:
            hook, self.hook = self.hook, None
            hook()
        return super().list(prefix)


def test_prune_never_sweeps_a_backup_that_ran_during_it(keyring) -> None:
    dest = RacingDestination()
    repo = Repository(dest, "demo")
    options = BackupOptions(cluster="demo", object_size=OBJ, chunk_size=256, schedule="daily")
    run_backup(DictSnapshot(state()), [dest], keyring, options)
    racing: dict = {}
    data = state()

    def backup_now() -> None:
        racing["result"] = run_backup(DictSnapshot(data), [dest], keyring, options)

    dest.hook = backup_now
    report = prune(repo, {"daily": RetentionPolicy(count=1)}, dt.datetime.now(dt.UTC))
    result = racing["result"]
    assert result.succeeded and report.deleted_objects == 0
    assert verify_integrity(repo, result.backup_id, keyring).ok
    assert digest(restored(dest, result.backup_id, keyring)) == digest(data)


def test_prune_stops_when_a_backup_starts_after_its_first_lock_check(keyring) -> None:
    dest = MemoryDestination()
    repo = Repository(dest, "demo")
    options = BackupOptions(cluster="demo", object_size=OBJ, chunk_size=256, schedule="daily")
    for _ in range(2):
        run_backup(DictSnapshot(state()), [dest], keyring, options)
    now = dt.datetime.now(dt.UTC)
    original = repo.save_catalog

    def save_and_start_backup(catalog) -> None:  # a lock appears right after the forget
        original(catalog)
        repo.write_lock("20990101T000000Z-abcdef", now)

    repo.save_catalog = save_and_start_backup  # type: ignore[method-assign]
    report = prune(repo, {"daily": RetentionPolicy(count=1)}, now + dt.timedelta(hours=2))
    assert len(report.removed) == 1 and not report.swept
    assert "started during prune" in report.sweep_skipped


def test_a_damaged_lock_still_protects_and_still_expires(keyring) -> None:
    dest = MemoryDestination()
    repo = Repository(dest, "demo")
    run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    now = dt.datetime.now(dt.UTC)
    running = f"{now:%Y%m%dT%H%M%SZ}-abcdef"
    dest.put(f"locks/{running}.json", b"{truncated")
    assert repo.active_locks(now, dt.timedelta(hours=12)) == [running]
    assert repo.active_locks(now + dt.timedelta(days=1), dt.timedelta(hours=12)) == []


def test_down_destination_does_not_list_a_backup_the_other_committed(keyring) -> None:
    good, down = MemoryDestination("good"), DownDestination()
    result = run_backup(DictSnapshot(state()), [good, down], keyring, OPTIONS)
    assert result.succeeded
    assert [d.state for d in result.destinations] == ["succeeded", "failed"]
    assert [e.backup_id for e in Repository(good, "demo").load_catalog().entries] == [
        result.backup_id
    ]
