"""How finished backup/validation Jobs become the BackupPolicy's status (pure parts)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

from ragflow_operator.backup_status import (
    job_result,
    key_rotation,
    next_runs,
    record_results,
)
from ragflow_operator.conditions import StatusEditor
from ragflow_operator.model.backup_policy import BackupPolicyModel
from test_backup_operator_builders import POLICY

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def job(name: str, condition: str, finished: str, reason: str = "") -> dict:
    return {
        "metadata": {"name": name},
        "status": {
            "completionTime": finished if condition == "Complete" else None,
            "conditions": [
                {
                    "type": condition,
                    "status": "True",
                    "reason": reason,
                    "lastTransitionTime": finished,
                }
            ],
        },
    }


def pod(message: dict | str) -> dict:
    text = message if isinstance(message, str) else json.dumps(message)
    return {
        "metadata": {"creationTimestamp": "2026-03-01T00:00:00Z"},
        "status": {"containerStatuses": [{"state": {"terminated": {"message": text}}}]},
    }


SUCCESS = {
    "kind": "backup",
    "id": "b1",
    "succeeded": True,
    "schedule": "hourly",
    "bytes": 10,
    "destinations": [
        {"name": "primary", "state": "succeeded", "error": ""},
        {"name": "secondary", "state": "failed", "error": "connection refused"},
    ],
    "keyId": "k-1",
    "keyFirstUsedAt": "2025-10-01T00:00:00Z",
}


def test_running_jobs_have_no_result() -> None:
    assert job_result({"metadata": {"name": "j"}, "status": {"active": 1}}, []) is None


def test_result_comes_from_the_termination_message() -> None:
    result = job_result(job("j1", "Complete", "2026-03-01T01:00:00Z"), [pod(SUCCESS)])
    assert result["id"] == "b1" and result["succeeded"] and result["job"] == "j1"
    assert result["finishedAt"] == "2026-03-01T01:00:00Z"


def test_failed_job_without_message_reports_the_jobs_reason() -> None:
    result = job_result(
        job("j2", "Failed", "2026-03-01T02:00:00Z", "DeadlineExceeded"), [pod("not json: killed")]
    )
    assert result["succeeded"] is False and "DeadlineExceeded" in result["error"]


def test_results_fill_last_backup_keep_last_success_and_report_new_failures() -> None:
    editor = StatusEditor(2, {}, NOW)
    ok = {**SUCCESS, "job": "j1", "finishedAt": "2026-03-01T01:00:00Z"}
    bad = {
        "job": "j2",
        "finishedAt": "2026-03-01T02:00:00Z",
        "succeeded": False,
        "error": "only 0 of 3 destinations took the backup",
    }
    failures = record_results(editor, [("backup", ok), ("on-demand", bad)])
    status = editor.status
    assert status["lastBackup"]["job"] == "j2" and status["lastBackup"]["succeeded"] is False
    assert status["lastSuccessfulBackup"] == {
        "id": "b1",
        "finishedAt": ok["finishedAt"],
        "job": "j1",
    }
    condition = next(c for c in status["conditions"] if c["type"] == "LastBackupSucceeded")
    assert condition["status"] == "False" and "only 0 of 3" in condition["message"]
    assert failures == [bad]
    # the same results again: nothing new to warn about
    assert (
        record_results(
            StatusEditor(2, copy.deepcopy(status), NOW), [("backup", ok), ("on-demand", bad)]
        )
        == []
    )


def test_a_successful_backup_with_a_failed_destination_is_warned_about() -> None:
    editor = StatusEditor(1, {}, NOW)
    ok = {**SUCCESS, "job": "j1", "finishedAt": "2026-03-01T01:00:00Z"}
    assert record_results(editor, [("backup", ok)]) == [ok]
    condition = next(c for c in editor.status["conditions"] if c["type"] == "LastBackupSucceeded")
    assert condition["status"] == "True" and "secondary" in condition["message"]
    assert editor.status["lastBackup"]["destinations"][1]["error"] == "connection refused"


def test_validation_results_and_key_rotation_conditions() -> None:
    editor = StatusEditor(1, {}, NOW)
    validation = {
        "job": "v1",
        "finishedAt": "2026-03-01T03:30:00Z",
        "ok": False,
        "tests": ["integrity"],
        "details": [
            {
                "destination": "primary",
                "test": "integrity",
                "ok": False,
                "problems": ["object abc missing"],
            }
        ],
    }
    ok = {**SUCCESS, "job": "j1", "finishedAt": "2026-03-01T01:00:00Z"}
    record_results(editor, [("backup", ok), ("validation", validation)])
    key_rotation(editor, 90)
    by_type = {c["type"]: c for c in editor.status["conditions"]}
    assert by_type["LastValidationSucceeded"]["status"] == "False"
    assert "object abc missing" in by_type["LastValidationSucceeded"]["message"]
    assert by_type["KeyRotationDue"]["status"] == "True"  # key in use since October: > 90 days


def test_next_runs_follow_the_cron_expressions_and_skip_suspended() -> None:
    body = copy.deepcopy(POLICY)
    body["spec"]["schedules"][1]["suspend"] = True
    runs = next_runs(BackupPolicyModel.from_body(body), NOW)
    assert runs == {"hourly": "2026-03-01T13:00:00Z"}
    body["spec"]["suspend"] = True
    assert next_runs(BackupPolicyModel.from_body(body), NOW) == {}
