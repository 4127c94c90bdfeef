"""``ragruntime standby sync`` when nothing usable can be read: an empty repository, an
unreadable configuration, a backup without a database; always one JSON summary line, also in the
termination log, and never a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backup_helpers import DictSnapshot, local_standby

from ragflow_contract import standby_result
from ragruntime.backup import crypto
from ragruntime.backup.destinations.local import LocalDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.cli import main

FIELDS = {*standby_result.SUMMARY_FIELDS, standby_result.ERROR}


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    return local_standby(tmp_path, monkeypatch, "primary")


def _run(capsys, *args: str) -> tuple[int, dict]:
    code = main(["standby", "sync", *args])
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) == 1
    return code, json.loads(lines[0])


def test_an_empty_repository_is_reported_and_exits_1(config: Path, tmp_path, capsys) -> None:
    termination = tmp_path / "termination-log"
    code, summary = _run(capsys, "--config", str(config), "--termination-log", str(termination))
    assert code == 1 and set(summary) == FIELDS
    assert summary["error"] == "the primary's repository holds no backup yet"
    assert summary["upToDate"] is False and summary["applied"] is None
    assert json.loads(termination.read_text()) == summary


def test_bad_configuration_exits_2_with_the_summary_shape(tmp_path, capsys) -> None:
    code, summary = _run(capsys, "--config", str(tmp_path / "missing.json"))
    assert code == 2 and set(summary) == FIELDS and "cannot read" in summary["error"]


def test_a_backup_without_database_is_skipped_and_nothing_is_usable(
    config: Path, tmp_path, capsys
) -> None:
    keyring = crypto.Keyring.load(str(tmp_path / "keyring"))
    dest = LocalDestination("disk", tmp_path / "repo" / "primary")
    options = BackupOptions(cluster="primary", object_size=1024, chunk_size=256)
    backup_id = run_backup(
        DictSnapshot({("files", "a/b"): b"x" * 10}), [dest], keyring, options
    ).backup_id
    code, summary = _run(capsys, "--config", str(config))
    assert code == 1 and summary["newestAvailable"] == backup_id
    assert summary["skipped"] == [
        {"backupId": backup_id, "reason": f"disk: backup {backup_id} has no database component"}
    ]
    assert "no usable backup" in summary["error"]
    # remembered: the next pass does not download it again
    code, again = _run(capsys, "--config", str(config))
    assert code == 1 and again["skipped"] == [] and again["bytesFetched"] == 0
