"""Retention: which committed backups to keep, which to forget, and why. Pure functions.

Called by ``prune``. Semantics follow restic's ``forget``: every rule that matches a backup keeps
it (the union), each kept backup lists its reasons, and ages are counted back from the newest
backup of the schedule (never from a time later than ``now``), so a stretch of failed backups
does not make retention delete the last good ones. Backups are ordered by when their snapshot
was taken (``started_at``), not by when their upload finished. Whatever the policy, the newest
backup of each schedule and the newest backup overall are kept. Backups of a schedule without a
policy (e.g. on-demand ones) are kept. Objects are protected separately: prune only removes data
that no kept backup references.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping

from ragruntime.backup.format import CatalogEntry

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|y)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(text: str) -> dt.timedelta:
    """``90m``, ``24h``, ``30d``, ``2w``, ``1y`` (365 days) → timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and one of s, m, h, d, w, y")
    return dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclasses.dataclass(frozen=True)
class RetentionPolicy:
    """``max_age``: keep backups at most this old; ``count``: keep the newest N. Either or both."""

    max_age: dt.timedelta | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("retention count must be at least 1")

    @classmethod
    def from_raw(cls, raw: Mapping[str, object] | None) -> RetentionPolicy:
        raw = raw or {}
        max_age = raw.get("maxAge")
        count = raw.get("count")
        return cls(
            max_age=parse_duration(str(max_age)) if max_age else None,
            count=int(str(count)) if count is not None else None,
        )

    @property
    def empty(self) -> bool:
        return self.max_age is None and self.count is None


@dataclasses.dataclass(frozen=True)
class Decision:
    keep: tuple[CatalogEntry, ...]
    remove: tuple[CatalogEntry, ...]
    reasons: Mapping[str, tuple[str, ...]]  # backup id -> why it is kept (or why removed)


def apply_policy(
    backups: Iterable[CatalogEntry],
    policies: Mapping[str, RetentionPolicy],
    now: dt.datetime,
) -> Decision:
    """Split committed backups into keep/remove, with reasons for every decision."""
    ordered = sorted(backups, key=lambda b: (b.started_at, b.backup_id), reverse=True)
    reasons: dict[str, list[str]] = {b.backup_id: [] for b in ordered}
    if ordered:
        reasons[ordered[0].backup_id].append("newest backup")
    by_schedule: dict[str, list[CatalogEntry]] = {}
    for backup in ordered:
        by_schedule.setdefault(backup.schedule, []).append(backup)
    for schedule, group in by_schedule.items():
        policy = policies.get(schedule)
        if policy is None or policy.empty:
            for backup in group:
                reasons[backup.backup_id].append(f"no retention policy for schedule {schedule!r}")
            continue
        reasons[group[0].backup_id].append(f"newest of schedule {schedule!r}")
        if policy.count is not None:
            for backup in group[: policy.count]:
                reasons[backup.backup_id].append(f"within the newest {policy.count}")
        if policy.max_age is not None:
            reference = min(now, parse_time(group[0].started_at))
            for backup in group:
                if reference - parse_time(backup.started_at) <= policy.max_age:
                    reasons[backup.backup_id].append(f"within {policy.max_age} of the newest")
    keep = tuple(b for b in ordered if reasons[b.backup_id])
    remove = tuple(b for b in ordered if not reasons[b.backup_id])
    for backup in remove:
        reasons[backup.backup_id].append("matched no keep rule")
    return Decision(keep, remove, {k: tuple(v) for k, v in reasons.items()})
