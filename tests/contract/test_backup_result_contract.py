"""The backup Job's result: what ``ragruntime backup`` writes is what the operator parses.

Runs the real commands (``backup run``, ``backup verify``, and a run that fails before it has a
result) against a local destination, with only the runtime snapshot replaced by in-memory data;
takes the termination message they write, hands it to the operator as a finished Job's pod would,
and checks the BackupPolicy status keeps every field ``ragflow_contract.backup_result`` names.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ragflow_operator.backup_status import job_result, record_results
from ragflow_operator.conditions import StatusEditor

from ragflow_contract import backup_result
from ragruntime.backup import snapshot
from ragruntime.backup.engine import SourceEntry
from ragruntime.cli import main

Json = dict[str, Any]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class TinySnapshot:
    """Two small documents instead of a captured runtime (no database, no Milvus)."""

    def entries(self) -> Iterator[SourceEntry]:
        for path in ("a", "b"):
            body = path.encode() * 100
            yield SourceEntry("files", path, lambda b=body: contextlib.closing(io.BytesIO(b)), 1)

    def counts(self) -> dict[str, int]:
        return {"files": 2}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    @contextlib.contextmanager
    def capture(*_args: Any, **_kwargs: Any) -> Iterator[TinySnapshot]:
        yield TinySnapshot()

    monkeypatch.setattr(snapshot, "capture", capture)
    (tmp_path / "keyring").write_text(base64.b64encode(os.urandom(32)).decode())
    path = tmp_path / "backup.json"
    path.write_text(
        json.dumps(
            {
                "cluster": "docs",
                "keyringFile": str(tmp_path / "keyring"),
                "destinations": [{"name": "disk", "local": {"path": str(tmp_path / "repo")}}],
                "schedules": [{"name": "hourly", "type": "full"}],
            }
        )
    )
    return path


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Exit code and termination message of `ragruntime backup <args>`."""
    log = tmp_path / "termination-log"
    log.unlink(missing_ok=True)
    code = main(["backup", *args, "--termination-log", str(log)])
    return code, log.read_text()


def finished(job: str, message: str, *, failed: bool = False) -> Json:
    """The operator's parse of a finished Job whose pod reported `message`."""
    condition = {"type": "Failed" if failed else "Complete", "status": "True", "reason": "X"}
    body = {
        "metadata": {"name": job},
        "status": {"completionTime": "2026-03-01T11:00:00Z", "conditions": [condition]},
    }
    pod = {
        "metadata": {"creationTimestamp": "2026-03-01T10:59:00Z"},
        "status": {"containerStatuses": [{"state": {"terminated": {"message": message}}}]},
    }
    result = job_result(body, [pod])
    assert result is not None
    return result


def status_of(kind: str, result: Json) -> Json:
    editor = StatusEditor(1, {}, NOW)
    record_results(editor, [(kind, result)])
    return editor.status


def test_a_backup_runs_summary_lands_in_last_backup_field_by_field(tmp_path, config) -> None:
    code, message = run(tmp_path, "run", "--config", str(config), "--schedule", "hourly")
    assert code == 0
    summary = json.loads(message)
    assert summary["kind"] == backup_result.KIND_BACKUP
    assert len(message) <= backup_result.TERMINATION_LIMIT
    assert set(backup_result.BACKUP_FIELDS) <= set(summary), set(backup_result.BACKUP_FIELDS) - set(
        summary
    )

    last = status_of("backup", finished("docs-hourly-1", message))["lastBackup"]
    for field in backup_result.BACKUP_FIELDS:
        assert last[field] == summary[field] or field == "finishedAt", field
    assert last["succeeded"] is True and last["schedule"] == "hourly"
    for written, kept in zip(summary["destinations"], last["destinations"], strict=True):
        assert set(backup_result.DESTINATION_FIELDS) <= set(written)
        assert kept == {f: written[f] for f in backup_result.DESTINATION_FIELDS}


def test_a_validations_summary_lands_in_last_validation(tmp_path, config) -> None:
    assert run(tmp_path, "run", "--config", str(config))[0] == 0
    code, message = run(tmp_path, "verify", "--config", str(config), "--tests", "integrity")
    assert code == 0
    summary = json.loads(message)
    assert summary["kind"] == backup_result.KIND_VALIDATION
    assert set(backup_result.VALIDATION_FIELDS) <= set(summary)

    validation = status_of("validation", finished("docs-validate-1", message))["lastValidation"]
    assert validation["ok"] is True and validation["tests"] == ["integrity"]
    (written,) = summary["details"]
    (kept,) = validation["details"]
    assert set(backup_result.VALIDATION_DETAIL_FIELDS) <= set(written)
    assert kept == {f: written[f] for f in backup_result.VALIDATION_DETAIL_FIELDS}


def test_a_run_that_fails_early_still_reports_why(tmp_path, config) -> None:
    (tmp_path / "keyring").unlink()
    code, message = run(tmp_path, "run", "--config", str(config))
    assert code == 2
    last = status_of("backup", finished("docs-hourly-2", message, failed=True))["lastBackup"]
    assert last["succeeded"] is False
    assert "keyring" in last["error"]
