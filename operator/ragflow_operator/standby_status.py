"""Pure status of a standby RagFlowCluster: `status.standby` and the `StandbyReady` condition.

`following(...)` turns the sync Jobs' results (their termination-message summaries, whose
fields `ragflow_contract.standby_result` names, read by handlers/backup_policy.py
`finished_results`) and the previous `status.standby` into the new one; `promoted(...)` records
a promotion once. Both return a `StandbyView` that
handlers/cluster.py folds into the status it writes (`fold`), plus the Events the change calls
for. `now` is passed in: the lag (age of the served backup) is recomputed on every reconcile.
No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ragflow_contract import standby_result as summary
from ragflow_operator import conditions
from ragflow_operator.model.standby import StandbyModel

Json = dict[str, Any]

CONDITION = "StandbyReady"
FOLLOWING = "Following"
LAGGING = "Lagging"
SYNC_FAILED = "SyncFailed"
NO_BACKUP = "NoBackup"
WAITING = "WaitingForSync"
#: Reasons of the Events a standby records.
EVENT_SKIPPED = "BackupSkipped"
EVENT_SYNC_FAILED = "SyncFailed"
EVENT_PROMOTED = "Promoted"


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class StandbyView:
    """What a reconcile writes about the standby."""

    #: The new `status.standby`.
    status: Json
    #: (status, reason, message) of StandbyReady; None removes the condition (promoted).
    condition: tuple[str, str, str] | None
    events: list[Event] = field(default_factory=list)

    @property
    def lag_seconds(self) -> int | None:
        value = self.status.get("lagSeconds")
        return int(value) if value is not None else None

    @property
    def sync_failed(self) -> bool:
        return self.status.get("lastSyncSucceeded") is False


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 time (`Z`, an offset, or none: UTC), None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def lag_seconds(backup_time: object, now: datetime) -> int | None:
    """Whole seconds from the served backup's time to now (never negative)."""
    taken = parse_time(backup_time)
    return None if taken is None else max(0, int((now - taken).total_seconds()))


def _finished_at(result: Mapping[str, Any]) -> datetime:
    return parse_time(result.get("finishedAt")) or datetime.max.replace(tzinfo=UTC)


def _usable(result: Mapping[str, Any]) -> bool:
    """A sync that succeeded AND reported its summary (a bare Complete Job tells nothing)."""
    return (
        bool(result.get("succeeded"))
        and summary.CURRENT in result
        and not result.get(summary.ERROR)
    )


def _error(result: Mapping[str, Any]) -> str:
    if result.get(summary.ERROR):
        return str(result[summary.ERROR])[:500]
    return "the sync Job finished without a summary in its termination message"


def _skipped(result: Mapping[str, Any]) -> list[Json]:
    return [
        {
            "backupId": str(s.get(summary.SKIPPED_BACKUP_ID) or ""),
            "reason": str(s.get(summary.SKIPPED_REASON) or "")[:300],
        }
        for s in result.get(summary.SKIPPED) or []
        if isinstance(s, Mapping)
    ]


def following(
    standby: StandbyModel,
    results: Sequence[Mapping[str, Any]],
    previous: Mapping[str, Any],
    now: datetime,
    *,
    cronjob: str,
) -> StandbyView:
    """Status of a following standby from its finished sync Jobs (oldest first)."""
    same = previous.get("enabled") and previous.get("source") == standby.source_cluster
    before: Mapping[str, Any] = previous if same else {}  # a new source starts afresh
    since = str(before.get("since") or conditions.timestamp(now))
    status: Json = {"enabled": True, "source": standby.source_cluster, "since": since}
    # Jobs that finished before this standby started following (an earlier life of the
    # cluster, another source) say nothing about it.
    start = parse_time(since)
    results = [r for r in results if start is None or _finished_at(r) >= start]
    for key in ("currentBackup", "currentBackupTime", "newestAvailable", "upToDate"):
        if before.get(key) is not None:
            status[key] = before[key]
    for key in ("lastSyncTime", "lastSyncJob", "lastSyncSucceeded", "lastError", "skipped"):
        if key in before:
            status[key] = before[key]
    events: list[Event] = []
    good = [r for r in results if _usable(r)]
    if good:
        last = good[-1]
        for key in ("currentBackup", "currentBackupTime", "newestAvailable"):
            status.pop(key, None)
        if last.get(summary.CURRENT) is not None:
            status["currentBackup"] = str(last[summary.CURRENT])
        if last.get(summary.NEWEST_AVAILABLE) is not None:
            status["newestAvailable"] = str(last[summary.NEWEST_AVAILABLE])
        taken = parse_time(last.get(summary.CURRENT_BACKUP_TIME))
        if taken is not None:  # RFC 3339 in UTC, as the status schema (date-time) requires
            status["currentBackupTime"] = conditions.timestamp(taken)
        status["upToDate"] = bool(last.get(summary.UP_TO_DATE))
        finished = parse_time(last.get("finishedAt"))
        if finished is not None:
            status["lastSyncTime"] = conditions.timestamp(finished)
        status["skipped"] = _skipped(last)
        known = {s.get("backupId") for s in before.get("skipped") or []}
        events += [
            Event("Warning", EVENT_SKIPPED, f"backup {s['backupId']} skipped: {s['reason']}")
            for s in status["skipped"]
            if s["backupId"] not in known
        ]
    if results:
        newest = results[-1]
        ok = _usable(newest)
        status["lastSyncJob"] = str(newest["job"])
        status["lastSyncSucceeded"] = ok
        status.pop("lastError", None)
        if not ok:
            status["lastError"] = _error(newest)
            if before.get("lastSyncJob") != newest["job"]:
                events.append(
                    Event("Warning", EVENT_SYNC_FAILED, f"{newest['job']}: {status['lastError']}")
                )
    lag = lag_seconds(status.get("currentBackupTime"), now)
    if lag is not None:
        status["lagSeconds"] = lag
    return StandbyView(status, _condition(standby, status, lag, cronjob), events)


def _condition(
    standby: StandbyModel, status: Mapping[str, Any], lag: int | None, cronjob: str
) -> tuple[str, str, str]:
    source = standby.source_cluster
    skipped = status.get("skipped") or []
    note = (
        f"; {len(skipped)} newer backup(s) skipped, see status.standby.skipped" if skipped else ""
    )
    if status.get("lastSyncSucceeded") is False:
        serving = f"; still serving {status['currentBackup']}" if "currentBackup" in status else ""
        return conditions.FALSE, SYNC_FAILED, f"{status.get('lastError')}{serving}"
    if "lastSyncJob" not in status:
        return (
            conditions.FALSE,
            WAITING,
            f"waiting for the first sync from {source} (CronJob {cronjob}, {standby.schedule!r})",
        )
    if "currentBackup" not in status:
        return conditions.FALSE, NO_BACKUP, f"no usable backup of {source} at the source{note}"
    served = f"serving backup {status['currentBackup']} of {source}"
    if lag is not None and lag > standby.max_lag_seconds:
        return (
            conditions.FALSE,
            LAGGING,
            f"{served}, {lag}s old (maxLagSeconds {standby.max_lag_seconds}){note}",
        )
    age = f", {lag}s old" if lag is not None else ""
    return conditions.TRUE, FOLLOWING, f"{served}{age}{note}"


def promoted(previous: Mapping[str, Any], now: datetime) -> StandbyView | None:
    """The status of a standby that was just promoted; None when it was not a standby.

    The served backup stays on record (what the promoted cluster started from) with the
    promotion time; the lag and the sync fields no longer apply.
    """
    if not previous.get("enabled"):
        return None
    keep = ("source", "currentBackup", "currentBackupTime")
    status: Json = {k: previous[k] for k in keep if previous.get(k) is not None}
    status.update(enabled=False, promotedAt=conditions.timestamp(now))
    served = previous.get("currentBackup") or "no backup"
    message = (
        f"promoted: stopped following {previous.get('source')}; serving {served} "
        f"(taken {previous.get('currentBackupTime') or 'n/a'}), now writable"
    )
    return StandbyView(status, None, [Event("Normal", EVENT_PROMOTED, message)])


def fold(status: Json, view: StandbyView, *, generation: int, now: datetime) -> Json:
    """`status` with `standby` and the StandbyReady condition set (or removed) from `view`."""
    editor = conditions.StatusEditor(generation, status, now)
    editor.status["standby"] = view.status
    if view.condition is None:
        editor.remove(CONDITION)
    else:
        value, reason, message = view.condition
        editor.set(CONDITION, value, reason, message)
    return editor.status
