"""Retention decisions, checked against golden files (restic style) plus edge cases."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ragruntime.backup.format import CatalogEntry
from ragruntime.backup.retention import RetentionPolicy, apply_policy, parse_duration

GOLDEN = Path(__file__).parent / "testdata" / "retention_cases.json"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def entry(backup_id: str, schedule: str, finished: dt.datetime) -> CatalogEntry:
    stamp = finished.isoformat().replace("+00:00", "Z")
    return CatalogEntry(backup_id, "full", None, schedule, stamp, stamp, 1, 1, "x", "k")


def hourly_backups(hours: int, *, last: dt.datetime = NOW) -> list[CatalogEntry]:
    return [entry(f"h{i:03d}", "hourly", last - dt.timedelta(hours=i)) for i in range(hours)]


@pytest.mark.parametrize("case", json.loads(GOLDEN.read_text()), ids=lambda c: c["name"])
def test_golden_cases(case: dict) -> None:
    backups = [
        entry(b["id"], b["schedule"], NOW - dt.timedelta(hours=b["ageHours"]))
        for b in case["backups"]
    ]
    policies = {k: RetentionPolicy.from_raw(v) for k, v in case["policies"].items()}
    decision = apply_policy(backups, policies, NOW)
    assert sorted(b.backup_id for b in decision.keep) == sorted(case["keep"])
    assert sorted(b.backup_id for b in decision.remove) == sorted(case["remove"])


def test_every_decision_has_a_reason() -> None:
    decision = apply_policy(hourly_backups(30), {"hourly": RetentionPolicy(count=3)}, NOW)
    assert all(decision.reasons[b.backup_id] for b in (*decision.keep, *decision.remove))
    assert "matched no keep rule" in decision.reasons["h010"]


def test_max_age_counts_back_from_the_newest_backup_so_an_outage_deletes_nothing() -> None:
    # Backups stopped 10 days ago; a 24h max age must still keep the last day of them.
    stopped = NOW - dt.timedelta(days=10)
    decision = apply_policy(
        hourly_backups(48, last=stopped),
        {"hourly": RetentionPolicy(max_age=parse_duration("24h"))},
        NOW,
    )
    assert len(decision.keep) == 25  # ages 0..24 hours inclusive of the newest


def test_newest_backup_is_kept_whatever_the_policy() -> None:
    backups = [entry("only", "daily", NOW - dt.timedelta(days=400))]
    decision = apply_policy(backups, {"daily": RetentionPolicy(max_age=parse_duration("1d"))}, NOW)
    assert [b.backup_id for b in decision.keep] == ["only"]


def test_future_dated_backup_does_not_shift_the_age_window() -> None:
    backups = [entry("future", "hourly", NOW + dt.timedelta(days=30)), *hourly_backups(5)]
    decision = apply_policy(backups, {"hourly": RetentionPolicy(max_age=parse_duration("2h"))}, NOW)
    assert {b.backup_id for b in decision.keep} == {"future", "h000", "h001", "h002"}


@pytest.mark.parametrize("text", ["", "5", "1x", "-1d", "h"])
def test_invalid_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_zero_count_is_rejected() -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(count=0)
