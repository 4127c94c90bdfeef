"""`promtool test rules` for every built-in alerting rule, generated from the builder's output.

The rules file is written from `build_rule_groups` (never a hand-copied expression); each rule gets
a promtool unit test with synthetic series: above its threshold the alert is silent before `for`
has elapsed and fires after it; below the threshold (and for another cluster's series) it stays
silent. Annotations are removed for the unit tests (promtool compares rendered annotations) and
checked separately with `promtool check rules`, which parses their templates.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ragflow_operator.builders import alerts
from ragflow_operator.model.alert_policy import AlertPolicyModel

NAMESPACE = "shop"
CLUSTER = "docs"
API = (
    f'namespace="{NAMESPACE}",service="{CLUSTER}-api",job="{CLUSTER}-api",instance="10.0.0.1:9380"'
)
OTHER_API = 'namespace="shop",service="other-api",job="other-api",instance="10.0.0.9:9380"'
POD = f'namespace="{NAMESPACE}",pod="{CLUSTER}-api-7d9f8b6c5d-x2x4k",container="ragflow"'
BACKUP = f'namespace="{NAMESPACE}",cluster="{CLUSTER}",policy="nightly"'
LAST_SUCCESS = "ragflow_operator_backup_last_success_timestamp_seconds"
LAST_FAILURE = "ragflow_operator_backup_last_failure_timestamp_seconds"
CRASH_LOOP = 'kube_pod_container_status_waiting_reason{%s,reason="CrashLoopBackOff"}'
OTHER_BACKUP = f'namespace="{NAMESPACE}",cluster="other",policy="nightly"'
STANDBY = f'namespace="{NAMESPACE}",cluster="{CLUSTER}"'
OTHER_STANDBY = f'namespace="{NAMESPACE}",cluster="other"'
STANDBY_LAG = "ragflow_operator_standby_lag_seconds"
STANDBY_MAX_LAG = "ragflow_operator_standby_max_lag_seconds"
STANDBY_FAILED = "ragflow_operator_standby_sync_failed"
ALERT_LABELS = {"severity": "", "ragflow_cluster": CLUSTER}  # severity filled from the rule


def policy() -> AlertPolicyModel:
    """Defaults from the CRD: the thresholds and durations the cases below are designed for."""
    return AlertPolicyModel.from_body(
        {
            "metadata": {"name": "prod", "namespace": NAMESPACE},
            "spec": {"clusterRef": {"name": CLUSTER}},
        }
    )


def latency_buckets(selector: str, slow_from: float) -> list[dict[str, str]]:
    """60 requests a minute, all slower than `slow_from` seconds (cumulative buckets)."""
    edges = ["0.1", "0.5", "1", "2", "5", "10", "+Inf"]
    return [
        {
            "series": f'ragflow_query_latency_seconds_bucket{{{selector},le="{edge}"}}',
            "values": "0+60x60" if edge == "+Inf" or float(edge) > slow_from else "0x60",
        }
        for edge in edges
    ]


def queries(selector: str, ok_per_min: int, errors_per_min: int) -> list[dict[str, str]]:
    return [
        {
            "series": f'ragflow_query_total{{{selector},status="success",model="m"}}',
            "values": f"0+{ok_per_min}x60",
        },
        {
            "series": f'ragflow_query_total{{{selector},status="error",model="m"}}',
            "values": f"0+{errors_per_min}x60",
        },
    ]


def audit(selector: str, failures_per_min: int, denials_per_min: int) -> list[dict[str, str]]:
    """Audit events: authentication failures, authorization denials and (ignored) successes."""
    series = "ragflow_audit_events_total{%s,category=%s,outcome=%s}"
    return [
        {
            "series": series % (selector, '"authentication"', '"failure"'),
            "values": f"0+{failures_per_min}x60",
        },
        {
            "series": series % (selector, '"authorization"', '"denied"'),
            "values": f"0+{denials_per_min}x60",
        },
        {"series": series % (selector, '"data_access"', '"success"'), "values": "0+600x60"},
    ]


def memory(working_set: int, limit: int) -> list[dict[str, str]]:
    return [
        {"series": f"container_memory_working_set_bytes{{{POD}}}", "values": f"{working_set}x60"},
        {
            "series": f'kube_pod_container_resource_limits{{{POD},resource="memory",unit="byte"}}',
            "values": f"{limit}x60",
        },
    ]


@dataclass(frozen=True)
class Case:
    """Synthetic series for one rule, times in minutes, the alert's own labels when firing."""

    above: list[dict[str, str]]
    below: list[dict[str, str]]
    quiet_at: int
    fires_at: int
    labels: dict[str, str]
    interval: str = "1m"


NS = {"namespace": NAMESPACE}
POD_LABELS = {**NS, "pod": f"{CLUSTER}-api-7d9f8b6c5d-x2x4k", "container": "ragflow"}
BACKUP_LABELS = {**NS, "cluster": CLUSTER}
DAY_PLUS = 26 * 60  # maxAge 26h in minutes

CASES: dict[str, Case] = {
    # p95 > 3s: every request in the (2, 5] bucket -> p95 = 4.85s; below: in (0.1, 0.5] -> 0.48s.
    "RagFlowHighQueryLatency": Case(
        above=latency_buckets(API, slow_from=2),
        below=latency_buckets(API, slow_from=0.1) + latency_buckets(OTHER_API, slow_from=5),
        quiet_at=4,
        fires_at=15,
        labels=NS,
    ),
    # error ratio > 5%: 10 of 110 (9%) vs 2 of 102 (2%).
    "RagFlowHighErrorRate": Case(
        above=queries(API, 100, 10),
        below=queries(API, 100, 2) + queries(OTHER_API, 10, 100),
        quiet_at=4,
        fires_at=15,
        labels=NS,
    ),
    # refused requests > 0.5/s: 60 unknown keys + 30 denials a minute (1.5/s) vs 12 (0.2/s).
    "RagFlowAccessDenied": Case(
        above=audit(API, failures_per_min=60, denials_per_min=30),
        below=audit(API, failures_per_min=6, denials_per_min=6)
        + audit(OTHER_API, failures_per_min=600, denials_per_min=0),
        quiet_at=4,
        fires_at=15,
        labels=NS,
    ),
    # working set > 90% of the limit: 950/1000 vs 500/1000.
    "RagFlowHighMemory": Case(
        above=memory(950, 1000),
        below=memory(500, 1000),
        quiet_at=4,
        fires_at=15,
        labels=POD_LABELS,
    ),
    # more than 3 restarts in 15m: one a minute vs none.
    "RagFlowPodCrashLooping": Case(
        above=[
            {"series": f"kube_pod_container_status_restarts_total{{{POD}}}", "values": "0+1x60"}
        ],
        below=[
            {"series": f"kube_pod_container_status_restarts_total{{{POD}}}", "values": "2x60"},
            {
                "series": CRASH_LOOP % POD,
                "values": "0x60",
            },
        ],
        quiet_at=4,
        fires_at=15,
        labels=POD_LABELS,
    ),
    # depth > 100 and growing vs a large but stable queue.
    "RagFlowIngestionBacklogGrowing": Case(
        above=[
            {"series": f'ragflow_ingest_queue_depth{{{API},state="queued"}}', "values": "140+5x60"},
            {"series": f'ragflow_ingest_queue_depth{{{API},state="running"}}', "values": "10x60"},
        ],
        below=[
            {"series": f'ragflow_ingest_queue_depth{{{API},state="queued"}}', "values": "150x60"}
        ],
        quiet_at=14,
        fires_at=25,
        labels=NS,
    ),
    # newest success at t=0 (older than 26h at 26h10m) vs always one hour old.
    "RagFlowBackupStale": Case(
        above=[
            {
                "series": f"{LAST_SUCCESS}{{{BACKUP}}}",
                "values": "0x200",
            }
        ],
        below=[
            {
                "series": f"{LAST_SUCCESS}{{{BACKUP}}}",
                "values": "-3600+600x200",
            }
        ],
        quiet_at=DAY_PLUS - 10,
        fires_at=DAY_PLUS + 10,
        labels=BACKUP_LABELS,
        interval="10m",
    ),
    # no success known for this cluster (only for another one) vs one recorded.
    "RagFlowBackupMissing": Case(
        above=[
            {
                "series": f"{LAST_SUCCESS}{{{OTHER_BACKUP}}}",
                "values": "0x200",
            }
        ],
        below=[
            {
                "series": f"{LAST_SUCCESS}{{{BACKUP}}}",
                "values": "0x200",
            }
        ],
        quiet_at=DAY_PLUS - 10,
        fires_at=DAY_PLUS + 10,
        labels=BACKUP_LABELS,
        interval="10m",
    ),
    # latest failure newer than the latest success vs older.
    "RagFlowBackupFailed": Case(
        above=[
            {
                "series": f"{LAST_SUCCESS}{{{BACKUP}}}",
                "values": "500x60",
            },
            {
                "series": f"{LAST_FAILURE}{{{BACKUP}}}",
                "values": "1000x60",
            },
        ],
        below=[
            {
                "series": f"{LAST_SUCCESS}{{{BACKUP}}}",
                "values": "2000x60",
            },
            {
                "series": f"{LAST_FAILURE}{{{BACKUP}}}",
                "values": "1000x60",
            },
        ],
        quiet_at=0,
        fires_at=10,
        labels=BACKUP_LABELS,
    ),
    # the served backup 1200s old vs maxLagSeconds 900 (for 5m) vs 300s old; the other
    # cluster's lag never counts.
    "RagFlowStandbyLagging": Case(
        above=[
            {"series": f"{STANDBY_LAG}{{{STANDBY}}}", "values": "1200x30"},
            {"series": f"{STANDBY_MAX_LAG}{{{STANDBY}}}", "values": "900x30"},
        ],
        below=[
            {"series": f"{STANDBY_LAG}{{{STANDBY}}}", "values": "300x30"},
            {"series": f"{STANDBY_MAX_LAG}{{{STANDBY}}}", "values": "900x30"},
            {"series": f"{STANDBY_LAG}{{{OTHER_STANDBY}}}", "values": "5000x30"},
            {"series": f"{STANDBY_MAX_LAG}{{{OTHER_STANDBY}}}", "values": "900x30"},
        ],
        quiet_at=2,
        fires_at=10,
        labels=BACKUP_LABELS,
    ),
    # the newest sync failed (for 5m) vs it succeeded.
    "RagFlowStandbySyncFailing": Case(
        above=[{"series": f"{STANDBY_FAILED}{{{STANDBY}}}", "values": "1x30"}],
        below=[{"series": f"{STANDBY_FAILED}{{{STANDBY}}}", "values": "0x30"}],
        quiet_at=2,
        fires_at=10,
        labels=BACKUP_LABELS,
    ),
}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: scripts/install.d/10-apt.sh installs the prometheus package"
    return path


def rules_without_annotations(groups: dict[str, Any], alert: str) -> dict[str, Any]:
    """Only `alert`, without annotations (promtool compares rendered annotations exactly)."""
    result = copy.deepcopy(groups)
    for group in result["groups"]:
        group["rules"] = [rule for rule in group["rules"] if rule["alert"] == alert]
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return result


def unit_test_file(rule: dict[str, Any], case: Case) -> dict[str, Any]:
    expected = {**case.labels, **ALERT_LABELS, "severity": rule["labels"]["severity"]}
    firing = [{"exp_labels": expected}]
    has_for = alerts.duration_seconds(rule.get("for", "0s")) > 0
    above_checks = [
        {"eval_time": f"{case.fires_at}m", "alertname": rule["alert"], "exp_alerts": firing}
    ]
    if has_for or case.quiet_at > 0:
        above_checks.insert(
            0, {"eval_time": f"{case.quiet_at}m", "alertname": rule["alert"], "exp_alerts": []}
        )
    silent = [
        {"eval_time": f"{minute}m", "alertname": rule["alert"], "exp_alerts": []}
        for minute in (case.quiet_at, case.fires_at)
    ]
    return {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "above threshold",
                "interval": case.interval,
                "input_series": case.above,
                "alert_rule_test": above_checks,
            },
            {
                "name": "below threshold",
                "interval": case.interval,
                "input_series": case.below,
                "alert_rule_test": silent,
            },
        ],
    }


def builtin_rules() -> list[dict[str, Any]]:
    return alerts.build_rule_groups(policy())["groups"][0]["rules"]


def test_every_builtin_rule_has_a_promtool_case() -> None:
    assert sorted(rule["alert"] for rule in builtin_rules()) == sorted(CASES)


def test_generated_rules_pass_promtool_check_rules(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(alerts.build_rule_groups(policy())))
    result = subprocess.run(
        [promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(CASES)} rules found" in result.stdout


@pytest.mark.parametrize("alert", sorted(CASES))
def test_rule_fires_above_threshold_after_for_and_stays_silent_below(
    alert: str, tmp_path: Path
) -> None:
    groups = alerts.build_rule_groups(policy())
    (rule,) = [rule for rule in groups["groups"][0]["rules"] if rule["alert"] == alert]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules_without_annotations(groups, alert)))
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(unit_test_file(rule, CASES[alert])))
    result = subprocess.run(
        [promtool(), "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alert", ["RagFlowBackupStale", "RagFlowBackupMissing"])
def test_a_following_standby_raises_no_backup_freshness_alert(alert: str, tmp_path: Path) -> None:
    """Its BackupPolicy is suspended until promotion: no backup is expected, none is missed."""
    groups = alerts.build_rule_groups(policy())
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules_without_annotations(groups, alert)))
    series = [{"series": f"{STANDBY_MAX_LAG}{{{STANDBY}}}", "values": "900x200"}]
    if alert == "RagFlowBackupStale":  # a backup from before it became a standby, long ago
        series.append({"series": f"{LAST_SUCCESS}{{{BACKUP}}}", "values": "0x200"})
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "standby",
                "interval": "10m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": f"{DAY_PLUS + 10}m", "alertname": alert, "exp_alerts": []}
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [promtool(), "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
