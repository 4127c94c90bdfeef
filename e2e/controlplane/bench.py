"""Measure the control plane: cold and warm start times, and peak memory under a roll-out.

Called by ``python -m e2e.controlplane bench`` and tests/bench/bench_controlplane.py. The cold
start is the first start in this process (binaries possibly not yet in the page cache, fresh
certificates and an empty etcd, like every start); the warm starts repeat the same with the
binaries cached, and their median is the figure to compare. Memory is sampled (sum of the
components' RSS) while a Deployment of ``ROLLOUT_REPLICAS`` Pods rolls out on the kwok nodes.
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from e2e.controlplane import launcher, memory, readiness

ROLLOUT_REPLICAS = 50
ROLLOUT_TIMEOUT_SECONDS = 180.0
BENCH_NAMESPACE = "bench"


def _start_stop(work_dir: Path, index: int) -> tuple[launcher.ControlPlane, dict[str, float]]:
    plane = launcher.ControlPlane(work_dir / f"start-{index}")
    info = plane.start()
    return plane, dict(info.phase_seconds)


def _stop_timed(plane: launcher.ControlPlane) -> float:
    clock = time.monotonic()
    plane.stop()
    return time.monotonic() - clock


def _rollout(plane: launcher.ControlPlane, replicas: int) -> float:
    """Create a Deployment of ``replicas`` Pods and wait until all are available; seconds taken."""
    client = plane.admin_client()
    client.json(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BENCH_NAMESPACE}},
    )
    labels = {"app": "rollout"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "rollout"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
            },
        },
    }
    path = f"/apis/apps/v1/namespaces/{BENCH_NAMESPACE}/deployments"
    readiness.wait_for(
        "ServiceAccount bench/default",
        readiness.answers_ok(
            client, f"/api/v1/namespaces/{BENCH_NAMESPACE}/serviceaccounts/default"
        ),
        [],
        30.0,
    )
    clock = time.monotonic()
    client.json("POST", path, deployment)

    def available() -> bool:
        status = client.json("GET", f"{path}/rollout").get("status", {})
        return bool(status.get("availableReplicas") == replicas)

    readiness.wait_for(f"{replicas} available replicas", available, [], ROLLOUT_TIMEOUT_SECONDS)
    return time.monotonic() - clock


def run(warm_starts: int, work_dir: Path) -> dict[str, Any]:
    """Cold start, ``warm_starts`` warm starts, then a roll-out with memory sampling."""
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    plane, cold = _start_stop(work_dir, 0)
    stop_seconds = [_stop_timed(plane)]
    warm: list[dict[str, float]] = []
    for index in range(1, warm_starts + 1):
        plane, phases = _start_stop(work_dir, index)
        warm.append(phases)
        if index < warm_starts:
            stop_seconds.append(_stop_timed(plane))
    if not warm:
        plane, _ = _start_stop(work_dir, 1)
    idle = plane.memory()
    sampler = memory.PeakSampler(plane).start()
    try:
        rollout_seconds = _rollout(plane, ROLLOUT_REPLICAS)
        time.sleep(2.0)
    finally:
        sampler.stop()
        stop_seconds.append(_stop_timed(plane))
    shutil.rmtree(work_dir, ignore_errors=True)
    mib = 2**20
    return {
        "cold_start_seconds": round(cold["total"], 2),
        "cold_start_phases": {key: round(value, 2) for key, value in cold.items()},
        "warm_start_seconds": [round(phases["total"], 2) for phases in warm],
        "warm_start_median_seconds": (
            round(statistics.median(phases["total"] for phases in warm), 2) if warm else None
        ),
        "warm_start_median_phases": {
            key: round(statistics.median(phases[key] for phases in warm), 2)
            for key in (warm[0] if warm else {})
        },
        "stop_seconds_median": round(statistics.median(stop_seconds), 2),
        "idle_rss_mib": round(idle.current_total / mib),
        "rollout_replicas": ROLLOUT_REPLICAS,
        "rollout_seconds": round(rollout_seconds, 2),
        "peak_rss_mib_sampled": round(sampler.peak_total_bytes / mib),
        "peak_rss_mib_per_component": {
            name: round(peak / mib) for name, peak in sampler.peak_per_component.items()
        },
    }
