"""A BackupPolicy's status from its finished Jobs: pure functions, no API calls, no clock.

The backup and validation Jobs report through their container's termination message (the JSON
summary of `ragruntime backup run|verify`). `job_result` parses one finished Job,
`record_results` folds them into the status (`lastBackup`, `lastSuccessfulBackup`,
`lastValidation` and their conditions) and returns the new failures for Events; `key_rotation`
and `next_runs` add the key-age condition and the schedules' next run times. Used by
handlers/backup_policy.py, which does the reads and writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from ragflow_contract import backup_result
from ragflow_operator import conditions
from ragflow_operator.conditions import StatusEditor
from ragflow_operator.model.backup_policy import BackupPolicyModel

Json = dict[str, Any]
BACKUP_KINDS = ("backup", "on-demand")


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_condition(job: Json, type_: str) -> Json:
    for item in (job.get("status") or {}).get("conditions") or []:
        if item.get("type") == type_ and item.get("status") == "True":
            return dict(item)
    return {}


def job_result(job: Json, pods: list[Json]) -> Json | None:
    """The parsed result of a finished Job (None while it runs).

    The summary comes from the container's termination message; a Job that failed without one
    (killed, evicted, deadline) still yields a failed result with the Job's own reason.
    """
    done, failed = job_condition(job, "Complete"), job_condition(job, "Failed")
    if not done and not failed:
        return None
    message: Json = {}
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            try:
                parsed = json.loads(terminated.get("message") or "")
            except ValueError:
                continue
            if isinstance(parsed, dict):
                message = parsed
    finished = (job.get("status") or {}).get("completionTime") or (done or failed).get(
        "lastTransitionTime", ""
    )
    result: Json = {"job": job["metadata"]["name"], "finishedAt": finished}
    result.update({k: v for k, v in message.items() if k not in ("job",)})
    result["finishedAt"] = finished or message.get("finishedAt", "")
    if failed:
        result["succeeded"] = False
        result.setdefault("ok", False)
        if not message.get("error"):
            reason = failed.get("reason") or "Failed"
            result["error"] = f"job {reason}: {failed.get('message') or 'no result reported'}"
    else:
        result.setdefault("succeeded", bool(message.get("succeeded", message.get("ok", True))))
    return result


def backup_status(result: Json) -> Json:
    keep = ("job", *backup_result.BACKUP_FIELDS)
    status = {k: result[k] for k in keep if k in result}
    status["destinations"] = [
        {"name": d.get("name"), "state": d.get("state"), "error": str(d.get("error") or "")[:300]}
        for d in result.get("destinations") or []
    ]
    return status


def validation_status(result: Json) -> Json:
    details = [
        {k: d[k] for k in backup_result.VALIDATION_DETAIL_FIELDS if k in d}
        for d in result.get("details") or []
    ]
    return {
        "job": result["job"],
        "finishedAt": result["finishedAt"],
        "ok": bool(result.get("ok")),
        "tests": result.get("tests", []),
        "details": details,
        **({"error": result["error"]} if result.get("error") else {}),
    }


def next_runs(model: BackupPolicyModel, now: datetime) -> dict[str, str]:
    """Next run time of each active schedule (suspended ones are left out)."""
    if model.suspend:
        return {}
    return {
        s.name: iso(croniter(s.cron, now).get_next(datetime))
        for s in model.schedules
        if not s.suspend
    }


def record_results(editor: StatusEditor, results: list[tuple[str, Json]]) -> list[Json]:
    """Fold the finished Jobs into the status; return the new failures (for Events)."""
    status, new_failures = editor.status, []
    backups = [r for kind, r in results if kind in BACKUP_KINDS]
    validations = [r for kind, r in results if kind == "validation"]
    if backups:
        newest = backups[-1]
        if (status.get("lastBackup") or {}).get("job") != newest["job"]:
            lost = [d for d in newest.get("destinations") or [] if d.get("state") == "failed"]
            if not newest.get("succeeded") or lost:
                new_failures.append(newest)
        status["lastBackup"] = backup_status(newest)
        good = [r for r in backups if r.get("succeeded")]
        if good:
            last = good[-1]
            status["lastSuccessfulBackup"] = {
                "id": last.get("id"),
                "finishedAt": last["finishedAt"],
                "job": last["job"],
            }
    last_backup = status.get("lastBackup")
    if last_backup:
        failed = [
            d["name"] for d in last_backup.get("destinations", []) if d["state"] != "succeeded"
        ]
        if last_backup.get("succeeded"):
            note = f"; destinations failed: {', '.join(failed)}" if failed else ""
            editor.set(
                "LastBackupSucceeded",
                conditions.TRUE,
                "BackupSucceeded",
                f"backup {last_backup.get('id')} ({last_backup['job']}){note}",
            )
        else:
            editor.set(
                "LastBackupSucceeded",
                conditions.FALSE,
                "BackupFailed",
                f"{last_backup['job']}: {last_backup.get('error') or 'failed'}",
            )
    if validations:
        newest = validations[-1]
        if (status.get("lastValidation") or {}).get("job") != newest["job"] and not newest.get(
            "ok"
        ):
            new_failures.append(newest)
        status["lastValidation"] = validation_status(newest)
    if status.get("lastValidation"):
        validation = status["lastValidation"]
        problems = [p for d in validation["details"] for p in d.get("problems", [])]
        editor.set(
            "LastValidationSucceeded",
            conditions.state(bool(validation["ok"])),
            "ValidationPassed" if validation["ok"] else "ValidationFailed",
            "; ".join(problems) or f"validated by {validation['job']}",
        )
    return new_failures


def key_rotation(editor: StatusEditor, rotation_days: int) -> None:
    first_used = (editor.status.get("lastBackup") or {}).get("keyFirstUsedAt")
    if not first_used:
        return
    age = editor.now - datetime.fromisoformat(str(first_used).replace("Z", "+00:00"))
    due = age > timedelta(days=rotation_days)
    editor.set(
        "KeyRotationDue",
        conditions.state(due),
        "KeyRotationDue" if due else "KeyFresh",
        f"active key in use for {age.days} days (rotate every "
        f"{rotation_days}): add a new first line to the keyring Secret",
    )
