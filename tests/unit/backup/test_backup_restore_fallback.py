"""Restore without a chosen destination finds an intact copy and never leaves half a target."""

from __future__ import annotations

import os

import pytest
from backup_helpers import DictSink, DictSnapshot, digest

from ragruntime.backup import crypto
from ragruntime.backup.destinations.memory import MemoryDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.backup.format import manifest_path
from ragruntime.backup.repository import Repository
from ragruntime.backup.restore import RestoreFailed, TargetNotEmpty, restore_from_any

OPTIONS = BackupOptions(cluster="demo", object_size=1024, chunk_size=256)


@pytest.fixture
def keyring() -> crypto.Keyring:
    return crypto.Keyring.from_keys([os.urandom(32)])


def backed_up(keyring) -> tuple[list[MemoryDestination], dict, str]:
    data = {("files", f"doc{i}.txt"): os.urandom(3000) for i in range(4)}
    dests = [MemoryDestination("first"), MemoryDestination("second")]
    result = run_backup(DictSnapshot(data), dests, keyring, OPTIONS)
    assert result.succeeded
    return dests, data, result.backup_id


def repos(dests) -> list[Repository]:
    return [Repository(d, "demo") for d in dests]


def last_object(dest: MemoryDestination) -> str:
    return sorted(k for k in dest.objects if k.startswith("data/"))[-1]


@pytest.mark.parametrize("damage", ["manifest", "missing object", "flipped object"])
def test_restore_skips_a_damaged_copy_and_says_why(keyring, damage: str) -> None:
    dests, data, backup_id = backed_up(keyring)
    first = dests[0]
    if damage == "manifest":
        first.objects[manifest_path(backup_id)] = b'{"formatVersion": 1, "trunc'
    elif damage == "missing object":
        first.delete(last_object(first))
    else:
        key = last_object(first)
        first.objects[key] = first.objects[key][:-1] + bytes([first.objects[key][-1] ^ 1])
    sink = DictSink()
    outcome = restore_from_any(repos(dests), None, keyring, sink)
    assert outcome.destination == "second" and outcome.manifest.backup_id == backup_id
    assert [name for name, _ in outcome.skipped] == ["first"]
    assert digest(sink.data) == digest(data)


def test_a_restore_no_copy_can_finish_leaves_an_empty_target(keyring) -> None:
    dests, _, backup_id = backed_up(keyring)
    for dest in dests:
        dest.delete(last_object(dest))
    sink = DictSink()
    with pytest.raises(RestoreFailed) as failed:
        restore_from_any(repos(dests), backup_id, keyring, sink)
    assert "first:" in str(failed.value) and "second:" in str(failed.value)
    assert sink.data == {}


def test_wrong_key_is_reported_for_every_destination(keyring) -> None:
    dests, _, _ = backed_up(keyring)
    other = crypto.Keyring.from_keys([os.urandom(32)])
    with pytest.raises(RestoreFailed, match="not in the keyring"):
        restore_from_any(repos(dests), None, other, DictSink())


def test_a_non_empty_target_is_never_overwritten_or_discarded(keyring) -> None:
    dests, _, _ = backed_up(keyring)
    sink = DictSink()
    sink.data[("files", "mine.txt")] = b"precious"
    with pytest.raises(TargetNotEmpty):
        restore_from_any(repos(dests), None, keyring, sink)
    assert sink.data == {("files", "mine.txt"): b"precious"}
