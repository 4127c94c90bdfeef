"""Metric names match DESIGN.md and pass promtool's exposition linter."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ragruntime.metrics import RuntimeMetrics


class FakeQueue:
    def depth(self) -> dict[str, int]:
        return {"queued": 3, "running": 1}


def _exposition() -> str:
    metrics = RuntimeMetrics()
    metrics.bind_queue(FakeQueue())
    metrics.query_latency.observe(0.3)
    metrics.query_total.labels(status="success", model="m").inc()
    metrics.documents_processed.labels(status="done").inc()
    metrics.chunks_embedded.inc(5)
    metrics.record_cache("l1", "hit")
    return metrics.render().decode()


def test_the_design_metric_names_are_exposed() -> None:
    text = _exposition()
    for name in (
        'ragflow_query_latency_seconds_bucket{le="0.1"}',
        'ragflow_query_latency_seconds_bucket{le="10.0"}',
        'ragflow_query_total{model="m",status="success"} 1.0',
        "ragflow_active_connections 0.0",
        "ragflow_memory_usage_bytes ",
        "ragflow_cpu_usage_percent ",
        'ragflow_documents_processed_total{status="done"} 1.0',
        "ragflow_chunks_embedded_total 5.0",
        'ragflow_ingest_queue_depth{state="queued"} 3.0',
        'ragflow_cache_requests_total{layer="l1",result="hit"} 1.0',
    ):
        assert name in text


def test_each_app_gets_its_own_registry() -> None:
    first, second = RuntimeMetrics(), RuntimeMetrics()
    first.query_total.labels(status="error", model="m").inc()
    assert "ragflow_query_total" not in second.render().decode().replace(
        "# HELP ragflow_query_total", ""
    ).replace("# TYPE ragflow_query_total", "")


def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not installed (scripts/install.d/10-apt.sh installs it)")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=_exposition(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
