"""Engine, verify, restore and prune over in-memory destinations: round trips and faults."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from backup_helpers import (
    DictSink,
    DictSnapshot,
    DownDestination,
    FailAfterDestination,
    FakeClock,
    digest,
)

from ragruntime.backup import crypto
from ragruntime.backup.destinations.memory import MemoryDestination
from ragruntime.backup.destinations.retry import RetryingDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.backup.prune import prune
from ragruntime.backup.repository import Repository, UnknownBackup
from ragruntime.backup.restore import TargetNotEmpty, restore_backup
from ragruntime.backup.retention import RetentionPolicy
from ragruntime.backup.verify import verify_integrity, verify_restore

OBJ = 1024
OPTIONS = BackupOptions(cluster="demo", object_size=OBJ, chunk_size=256)


@pytest.fixture
def keyring() -> crypto.Keyring:
    return crypto.Keyring.from_keys([os.urandom(32)])


def state(files: int = 5, size: int = 3000) -> dict[tuple[str, str], bytes]:
    data = {("files", f"doc{i}.txt"): os.urandom(size) for i in range(files)}
    data[("database", "ragflow.db")] = os.urandom(5 * OBJ)
    return data


def restore(dest: MemoryDestination, backup_id: str | None, keyring: crypto.Keyring) -> dict:
    sink = DictSink()
    restore_backup(Repository(dest, "demo"), backup_id, keyring, sink)
    return sink.data


def test_full_backup_restores_identical_data_from_every_destination(keyring) -> None:
    data = state()
    dests = [MemoryDestination("a"), MemoryDestination("b")]
    result = run_backup(DictSnapshot(data), dests, keyring, OPTIONS)
    assert result.succeeded, result.error
    assert [d.state for d in result.destinations] == ["succeeded", "succeeded"]
    for dest in dests:
        assert digest(restore(dest, result.backup_id, keyring)) == digest(data)
        assert verify_integrity(Repository(dest, "demo"), result.backup_id, keyring).ok


def test_plaintext_and_names_never_reach_storage(keyring) -> None:
    secret = b"top-secret-marker" * 100
    dest = MemoryDestination()
    run_backup(DictSnapshot({("files", "secret.txt"): secret}), [dest], keyring, OPTIONS)
    blob = b"".join(dest.objects.values())
    assert b"top-secret-marker" not in blob
    assert (
        b"secret.txt"
        in dest.objects[
            "backups/"
            + next(iter(k.split("/")[1] for k in dest.objects if k.startswith("backups/")))
            + "/manifest.json"
        ]
    )  # paths live in the authenticated manifest, content never does


def test_incremental_uploads_only_changes_and_restores_like_a_full(keyring) -> None:
    data = state()
    dest = MemoryDestination()
    full = run_backup(DictSnapshot(data), [dest], keyring, OPTIONS)
    data[("files", "doc0.txt")] = os.urandom(3000)
    data[("files", "new.txt")] = b"brand new"
    incremental = run_backup(
        DictSnapshot(data),
        [dest],
        keyring,
        BackupOptions(**{**OPTIONS.__dict__, "type": "incremental"}),
    )
    assert incremental.succeeded and incremental.type == "incremental"
    assert incremental.parent_id == full.backup_id
    uploaded = incremental.destinations[0].objects
    assert 0 < uploaded <= 4  # doc0 (3 objects) + new.txt (1 object)
    assert incremental.stored_bytes < full.stored_bytes / 3
    assert digest(restore(dest, incremental.backup_id, keyring)) == digest(data)
    assert verify_integrity(Repository(dest, "demo"), incremental.backup_id, keyring).ok


def test_incremental_without_a_parent_is_taken_as_full(keyring) -> None:
    options = BackupOptions(**{**OPTIONS.__dict__, "type": "incremental"})
    result = run_backup(DictSnapshot(state()), [MemoryDestination()], keyring, options)
    assert result.succeeded and result.type == "full" and result.parent_id is None


def test_key_rotation_keeps_old_backups_restorable_and_new_ones_need_only_the_new_key(
    keyring,
) -> None:
    data = state()
    dest = MemoryDestination()
    old = run_backup(DictSnapshot(data), [dest], keyring, OPTIONS)
    rotated = crypto.Keyring.from_keys([os.urandom(32), *keyring.keys.values()])
    options = BackupOptions(**{**OPTIONS.__dict__, "type": "incremental"})
    incremental = run_backup(DictSnapshot(data), [dest], rotated, options)
    # object names derive from the active key, so a rotation starts fresh objects
    assert incremental.destinations[0].objects == old.destinations[0].objects
    assert digest(restore(dest, old.backup_id, rotated)) == digest(data)
    new_only = crypto.Keyring.from_keys([rotated.active])
    assert digest(restore(dest, incremental.backup_id, new_only)) == digest(data)
    with pytest.raises(crypto.KeyNotFound):
        restore(dest, old.backup_id, new_only)


def test_unreachable_destination_is_retried_then_recorded_failed(keyring) -> None:
    sleeps: list[float] = []
    down = RetryingDestination(DownDestination(), backoff=(1, 2), sleep=sleeps.append)
    good = MemoryDestination("good")
    result = run_backup(DictSnapshot(state()), [good, down], keyring, OPTIONS)
    assert result.succeeded
    states = {d.name: (d.state, d.error) for d in result.destinations}
    assert states["good"] == ("succeeded", "")
    assert states["down"][0] == "failed" and "connection refused" in states["down"][1]
    assert sleeps == [1, 2]


def test_too_few_destinations_fail_the_backup_and_leave_catalogs_alone(keyring) -> None:
    good = MemoryDestination("good")
    first = run_backup(DictSnapshot(state()), [good], keyring, OPTIONS)
    options = BackupOptions(**{**OPTIONS.__dict__, "min_successful": 2})
    result = run_backup(DictSnapshot(state()), [good, DownDestination()], keyring, options)
    assert not result.succeeded and "2 required" in result.error
    catalog = Repository(good, "demo").load_catalog()
    assert [e.backup_id for e in catalog.entries] == [first.backup_id]


def test_crash_mid_upload_keeps_catalog_and_old_backups_and_next_backup_works(keyring) -> None:
    data = state()
    dest = FailAfterDestination("flaky", budget=10_000)
    good = run_backup(DictSnapshot(data), [dest], keyring, OPTIONS)
    dest.budget = 2
    broken = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    assert not broken.succeeded
    catalog = Repository(dest, "demo").load_catalog()
    assert [e.backup_id for e in catalog.entries] == [good.backup_id]
    dest.budget = 10_000
    again = run_backup(DictSnapshot(data), [dest], keyring, OPTIONS)
    assert again.succeeded
    assert digest(restore(dest, good.backup_id, keyring)) == digest(data)


def test_corrupted_and_truncated_objects_are_named_by_verify(keyring) -> None:
    dest = MemoryDestination()
    result = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    keys = sorted(k for k in dest.objects if k.startswith("data/"))
    corrupt, truncate = keys[0], keys[1]
    body = bytearray(dest.objects[corrupt])
    body[-1] ^= 0xFF
    dest.objects[corrupt] = bytes(body)
    dest.objects[truncate] = dest.objects[truncate][:-10]
    report = verify_integrity(Repository(dest, "demo"), result.backup_id, keyring)
    assert not report.ok
    text = "\n".join(report.problems)
    for key in (corrupt, truncate):
        assert key.rsplit("/", 1)[1].split(".")[0] in text
    with pytest.raises(Exception, match="checksum"):
        restore(dest, result.backup_id, keyring)


def test_tampered_manifest_is_rejected(keyring) -> None:
    dest = MemoryDestination()
    result = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    key = f"backups/{result.backup_id}/manifest.json"
    dest.objects[key] = dest.objects[key].replace(b'"schedule":"on-demand"', b'"schedule":"evil"')
    report = verify_integrity(Repository(dest, "demo"), result.backup_id, keyring)
    assert not report.ok and "manifest" in report.problems[0]


def test_wrong_key_and_unknown_backup_give_clear_errors(keyring) -> None:
    dest = MemoryDestination()
    result = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    with pytest.raises(crypto.KeyNotFound, match="not in the keyring"):
        restore(dest, result.backup_id, crypto.Keyring.from_keys([os.urandom(32)]))
    with pytest.raises(UnknownBackup, match="nope"):
        restore(dest, "nope", keyring)
    with pytest.raises(UnknownBackup):
        restore(MemoryDestination(), None, keyring)


def test_destination_wiped_under_a_kept_backup_other_destination_restores(keyring) -> None:
    data = state()
    a, b = MemoryDestination("a"), MemoryDestination("b")
    result = run_backup(DictSnapshot(data), [a, b], keyring, OPTIONS)
    for key in [k for k in a.objects if k.startswith("data/")]:
        del a.objects[key]
    report = verify_integrity(Repository(a, "demo"), result.backup_id, keyring)
    assert not report.ok and "missing" in report.problems[0]
    assert digest(restore(b, result.backup_id, keyring)) == digest(data)
    # the next incremental must not lean on objects that vanished from a
    options = BackupOptions(**{**OPTIONS.__dict__, "type": "incremental"})
    following = run_backup(DictSnapshot(data), [a, b], keyring, options)
    assert verify_integrity(Repository(a, "demo"), following.backup_id, keyring).ok


def test_restore_refuses_a_non_empty_target_unless_forced(keyring) -> None:
    dest = MemoryDestination()
    result = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    sink = DictSink()
    sink.data[("x", "y")] = b"old"
    repo = Repository(dest, "demo")
    with pytest.raises(TargetNotEmpty):
        restore_backup(repo, result.backup_id, keyring, sink)
    restore_backup(repo, result.backup_id, keyring, sink, force=True)
    assert ("x", "y") not in sink.data


def test_restore_verification_compares_counts(keyring) -> None:
    dest = MemoryDestination()
    result = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    report = verify_restore(Repository(dest, "demo"), result.backup_id, keyring, DictSink)
    assert report.ok and report.counts == {"files": 5, "database": 1} and report.mb_per_s > 0


def test_prune_forgets_by_policy_and_keeps_objects_kept_backups_reference(keyring) -> None:
    dest = MemoryDestination()
    repo = Repository(dest, "demo")
    data = state()
    inc = BackupOptions(**{**OPTIONS.__dict__, "type": "incremental", "schedule": "hourly"})
    ids = []
    clock = FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    for step in range(4):
        clock.advance(hours=1)
        data[("files", f"step{step}.txt")] = os.urandom(2000)
        ids.append(run_backup(DictSnapshot(data), [dest], keyring, inc, clock).backup_id)
    now = clock.now
    report = prune(repo, {"hourly": RetentionPolicy(count=2)}, now)
    assert sorted(report.removed) == sorted(ids[:2]) and report.swept
    assert report.deleted_objects == 0  # every object of the full is still referenced
    for kept in ids[2:]:
        assert verify_integrity(repo, kept, keyring).ok
    data.pop(("database", "ragflow.db"))
    full = BackupOptions(**{**OPTIONS.__dict__, "schedule": "hourly"})
    clock.advance(hours=1)
    last = run_backup(DictSnapshot(data), [dest], keyring, full, clock)
    later = clock.now + dt.timedelta(hours=2)  # past the sweep's grace period
    report = prune(repo, {"hourly": RetentionPolicy(count=1)}, later)
    assert report.deleted_objects > 0 and report.kept == [last.backup_id]
    assert digest(restore(dest, last.backup_id, keyring)) == digest(data)
    referenced = set(repo.committed_manifest(last.backup_id).objects)
    assert {k for k in dest.objects if k.startswith("data/")} == referenced


def test_prune_waits_for_running_backups_and_rebuilds_a_lost_catalog(keyring) -> None:
    dest = MemoryDestination()
    repo = Repository(dest, "demo")
    result = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    now = dt.datetime.now(dt.UTC)
    repo.write_lock("running", now)
    assert "running" in prune(repo, {}, now).sweep_skipped
    later = now + dt.timedelta(days=1)  # the lock of a killed run has gone stale
    assert prune(repo, {}, later).swept
    dest.delete("catalog.json")  # lost (or overwritten by a concurrent writer)
    report = prune(repo, {}, later)
    assert report.kept == [result.backup_id]  # rebuilt from the commit markers
    assert [e.backup_id for e in repo.load_catalog().entries] == [result.backup_id]
    assert verify_integrity(repo, result.backup_id, keyring).ok
    dest.delete("catalog.json")
    dest.delete(f"backups/{result.backup_id}/committed")  # nothing left to rebuild from
    report = prune(repo, {}, later)
    assert not report.swept and "catalog" in report.sweep_skipped
    assert f"backups/{result.backup_id}/manifest.json" in dest.objects


def test_uncommitted_manifests_are_removed_only_when_old(keyring) -> None:
    dest = MemoryDestination()
    repo = Repository(dest, "demo")
    good = run_backup(DictSnapshot(state()), [dest], keyring, OPTIONS)
    options = BackupOptions(**{**OPTIONS.__dict__, "min_successful": 2})
    failed = run_backup(DictSnapshot(state()), [dest, DownDestination()], keyring, options)
    assert not failed.succeeded
    orphan = f"backups/{failed.backup_id}/manifest.json"
    assert orphan in dest.objects
    now = dt.datetime.now(dt.UTC)
    assert prune(repo, {}, now).deleted_objects == 0  # within the grace period
    first = prune(repo, {}, now + dt.timedelta(hours=2))
    assert first.deleted_manifests == [] and first.deleted_objects > 0  # its data is unreferenced
    report = prune(repo, {}, now + dt.timedelta(days=1))
    assert report.deleted_manifests == [failed.backup_id] and orphan not in dest.objects
    assert verify_integrity(repo, good.backup_id, keyring).ok


def test_prune_dry_run_changes_nothing(keyring) -> None:
    dest = MemoryDestination()
    options = BackupOptions(**{**OPTIONS.__dict__, "schedule": "daily"})
    for _ in range(3):
        run_backup(DictSnapshot(state(files=1)), [dest], keyring, options)
    before = dict(dest.objects)
    report = prune(
        Repository(dest, "demo"),
        {"daily": RetentionPolicy(count=1)},
        dt.datetime.now(dt.UTC),
        dry_run=True,
    )
    assert len(report.to_remove) == 2 and report.removed == [] and dest.objects == before
