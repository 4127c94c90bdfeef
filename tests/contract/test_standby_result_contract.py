"""The standby sync Job's result: what ``ragruntime standby sync`` writes, the operator reads.

Runs the real command against a primary's local repository holding two backups made by the real
backup engine (an older one with a database, a newer one without: unusable), so one pass skips a
backup and applies another; and a run that fails before its pass. Takes the termination message
each writes, hands it to the operator as a finished sync Job's pod would, and checks that
``status.standby`` carries every field the operator reads, by the names
``ragflow_contract.standby_result`` gives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ragflow_operator import standby_status
from ragflow_operator.backup_status import job_result
from ragflow_operator.model.standby import StandbyModel

from ragflow_contract import backup_result, standby_result
from ragruntime.backup import crypto
from ragruntime.backup.destinations.local import LocalDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.cli import main
from ragruntime.store.metadata import SqlMetadataStore
from tests.unit.backup.backup_helpers import DictSnapshot, local_standby

Json = dict[str, Any]
PRIMARY = "docs-eu"
TAKEN = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
NOW = TAKEN + timedelta(hours=1)
STANDBY = StandbyModel(
    source_cluster=PRIMARY,
    destinations=(),
    key_secret="backup-keys",
    key_secret_key="keyring",
    schedule="* * * * *",
    max_lag_seconds=86400,
    resources={},
)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The primary's backup configuration, as the sync Job mounts it; the standby's own stores."""
    return local_standby(tmp_path, monkeypatch, PRIMARY)


def primary_database(tmp_path: Path) -> bytes:
    """A primary's metadata database: SQLite with the runtime's tables, no data."""
    SqlMetadataStore.open(f"sqlite:///{tmp_path / 'primary.db'}").close()
    return (tmp_path / "primary.db").read_bytes()


def back_up(tmp_path: Path, data: dict[tuple[str, str], bytes], taken: datetime) -> str:
    keyring = crypto.Keyring.load(str(tmp_path / "keyring"))
    destination = LocalDestination("disk", tmp_path / "repo" / PRIMARY)
    options = BackupOptions(cluster=PRIMARY)
    return run_backup(
        DictSnapshot(data), [destination], keyring, options, clock=lambda: taken
    ).backup_id


def sync(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Exit code and termination message of `ragruntime standby sync <args>`."""
    log = tmp_path / "termination-log"
    log.unlink(missing_ok=True)
    code = main(["standby", "sync", *args, "--termination-log", str(log)])
    return code, log.read_text()


def finished(job: str, message: str, *, failed: bool = False) -> Json:
    """The operator's parse of a finished sync Job whose pod reported `message`."""
    condition = {"type": "Failed" if failed else "Complete", "status": "True", "reason": "X"}
    stamp = NOW.isoformat().replace("+00:00", "Z")
    body = {
        "metadata": {"name": job},
        "status": {"completionTime": stamp, "conditions": [condition]},
    }
    pod = {
        "metadata": {"creationTimestamp": stamp},
        "status": {"containerStatuses": [{"state": {"terminated": {"message": message}}}]},
    }
    result = job_result(body, [pod])
    assert result is not None
    return result


def following(result: Json) -> standby_status.StandbyView:
    since = (TAKEN - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    previous = {"enabled": True, "source": PRIMARY, "since": since}
    return standby_status.following(STANDBY, [result], previous, NOW, cronjob="docs-standby-sync")


def test_a_pass_that_skips_one_backup_and_applies_another_lands_in_status(
    tmp_path: Path, config: Path
) -> None:
    good = back_up(tmp_path, {("database", "metadata.db"): primary_database(tmp_path)}, TAKEN)
    broken = back_up(tmp_path, {("files", "ds/doc"): b"x" * 64}, TAKEN + timedelta(minutes=5))

    code, message = sync(tmp_path, "--config", str(config))
    assert code == 0, message
    assert len(message) <= backup_result.TERMINATION_LIMIT
    summary = json.loads(message)
    assert set(summary) == set(standby_result.SUMMARY_FIELDS)
    assert summary[standby_result.APPLIED] == summary[standby_result.CURRENT] == good
    assert summary[standby_result.NEWEST_AVAILABLE] == broken
    (skipped,) = summary[standby_result.SKIPPED]
    assert set(skipped) == set(standby_result.SKIPPED_FIELDS)
    assert skipped[standby_result.SKIPPED_BACKUP_ID] == broken

    view = following(finished("docs-standby-sync-1", message))
    status = view.status
    assert status["currentBackup"] == summary[standby_result.CURRENT]
    assert datetime.fromisoformat(summary[standby_result.CURRENT_BACKUP_TIME]) == TAKEN
    assert status["currentBackupTime"] == "2026-03-01T11:00:00Z"
    assert status["lagSeconds"] == 3600
    assert status["newestAvailable"] == summary[standby_result.NEWEST_AVAILABLE]
    assert status["upToDate"] is summary[standby_result.UP_TO_DATE] is True
    assert status["skipped"] == [
        {"backupId": broken, "reason": skipped[standby_result.SKIPPED_REASON]}
    ]
    assert status["lastSyncSucceeded"] is True and "lastError" not in status
    assert [e.reason for e in view.events] == [standby_status.EVENT_SKIPPED]
    assert view.condition is not None and view.condition[1] == standby_status.FOLLOWING


def test_a_run_that_fails_before_its_pass_still_reports_why(tmp_path: Path, config: Path) -> None:
    (tmp_path / "keyring").unlink()
    code, message = sync(tmp_path, "--config", str(config))
    assert code == 2
    summary = json.loads(message)
    assert set(summary) == {*standby_result.SUMMARY_FIELDS, standby_result.ERROR}

    view = following(finished("docs-standby-sync-2", message, failed=True))
    assert view.status["lastSyncSucceeded"] is False
    assert view.status["lastError"] == summary[standby_result.ERROR][:500]
    assert "keyring" in view.status["lastError"]
    assert view.condition is not None and view.condition[1] == standby_status.SYNC_FAILED
