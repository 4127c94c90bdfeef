"""The operator's own metrics (ragflow_operator.metrics): values, series hygiene, exposition.

Starts the real metrics HTTP server on a free loopback port, reads /metrics over HTTP and runs
`promtool check metrics` on it (Prometheus' naming conventions).
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ragflow_operator import errors, metrics

from tests.fixtures.services import free_port

LAST_SUCCESS = "ragflow_operator_backup_last_success_timestamp_seconds"
LAST_FAILURE = "ragflow_operator_backup_last_failure_timestamp_seconds"


def sample(name: str, labels: dict[str, str]) -> float | None:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return None if value is None else float(value)


def test_reconcile_timer_counts_success_and_error_with_reason() -> None:
    kind = "TimerTestKind"
    with metrics.reconcile_timer(kind):
        pass
    with pytest.raises(errors.InvalidSpec), metrics.reconcile_timer(kind):
        raise errors.InvalidSpec("bad", reason="InvalidRule")
    assert sample("ragflow_operator_reconcile_total", {"kind": kind, "result": "success"}) == 1
    assert sample("ragflow_operator_reconcile_total", {"kind": kind, "result": "error"}) == 1
    assert (
        sample("ragflow_operator_reconcile_errors_total", {"kind": kind, "reason": "InvalidRule"})
        == 1
    )
    assert sample("ragflow_operator_reconcile_duration_seconds_count", {"kind": kind}) == 2


def test_children_applied_are_counted_per_child_kind() -> None:
    metrics.record_children_applied("ChildTestKind", [{"kind": "ConfigMap"}, {"kind": "ConfigMap"}])
    labels = {"kind": "ChildTestKind", "child_kind": "ConfigMap"}
    assert sample("ragflow_operator_children_applied_total", labels) == 2


def test_a_deleted_policys_backup_series_are_forgotten() -> None:
    who = {"namespace": "shop", "cluster": "docs", "policy": "nightly-metrics-test"}
    failed = {
        "lastBackup": {"job": "n-1", "succeeded": False, "finishedAt": "2026-01-02T00:00:00Z"}
    }
    metrics.observe_backup_policy(**who, previous={}, status=failed)
    assert sample(LAST_FAILURE, who) == datetime(2026, 1, 2, tzinfo=UTC).timestamp()
    assert sample("ragflow_operator_backup_outcomes_total", {**who, "result": "failed"}) == 1

    metrics.forget_backup_policy(**who)
    assert sample(LAST_FAILURE, who) is None
    assert sample("ragflow_operator_backup_outcomes_total", {**who, "result": "failed"}) is None


def test_metrics_endpoint_passes_promtool_check_metrics() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: scripts/install.d/10-apt.sh installs prometheus"
    done = {"job": "e-1", "succeeded": True, "finishedAt": "2001-09-09T01:46:40Z"}
    metrics.observe_backup_policy(
        namespace="shop",
        cluster="docs",
        policy="endpoint-test",
        previous={},
        status={"lastBackup": done, "lastSuccessfulBackup": done},
    )
    with metrics.reconcile_timer("EndpointTestKind"):
        metrics.record_children_applied("EndpointTestKind", [{"kind": "PrometheusRule"}])
    port = free_port()
    server = metrics.start_metrics_server(port, address="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read()
    finally:
        server.shutdown()
        server.server_close()
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {
        "ragflow_operator_reconcile",
        "ragflow_operator_reconcile_duration_seconds",
        "ragflow_operator_children_applied",
        "ragflow_operator_backup_outcomes",
        "ragflow_operator_backup_last_success_timestamp_seconds",
        "process_cpu_seconds",
    } <= names
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_backup_policy_status_is_exported_and_each_finished_backup_counted_once() -> None:
    who = {"namespace": "shop", "cluster": "docs", "policy": "status-export-test"}
    succeeded = {
        "lastBackup": {"job": "hourly-1", "succeeded": True, "finishedAt": "2026-01-02T00:00:00Z"},
        "lastSuccessfulBackup": {"job": "hourly-1", "finishedAt": "2026-01-02T00:00:00Z"},
    }
    failed = {
        "lastBackup": {"job": "hourly-2", "succeeded": False, "finishedAt": "2026-01-02T01:00:00Z"},
        "lastSuccessfulBackup": succeeded["lastSuccessfulBackup"],
    }
    metrics.observe_backup_policy(**who, previous={}, status=succeeded)
    metrics.observe_backup_policy(**who, previous=succeeded, status=succeeded)  # a resync
    metrics.observe_backup_policy(**who, previous=succeeded, status=failed)
    success_at = datetime(2026, 1, 2, tzinfo=UTC).timestamp()
    assert sample(LAST_SUCCESS, who) == success_at
    assert sample(LAST_FAILURE, who) == success_at + 3600
    assert sample("ragflow_operator_backup_outcomes_total", {**who, "result": "succeeded"}) == 1
    assert sample("ragflow_operator_backup_outcomes_total", {**who, "result": "failed"}) == 1
    metrics.forget_backup_policy(**who)
