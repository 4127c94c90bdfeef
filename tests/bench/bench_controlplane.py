"""Benchmark of the local control plane: cold start vs the median of warm starts (the baseline
beside it), per start phase, and peak memory of all components during a Deployment roll-out.

Run with ``make bench`` or ``pytest tests/bench/bench_controlplane.py -s``; the same figures come
from ``python -m e2e.controlplane bench`` as JSON.
"""

from __future__ import annotations

from pathlib import Path

from e2e.controlplane import bench
from tests.bench.harness import print_report

WARM_STARTS = 5


def test_control_plane_start_times_and_peak_memory(tmp_path: Path) -> None:
    report = bench.run(warm_starts=WARM_STARTS, work_dir=tmp_path / "controlplane")
    cold = report["cold_start_phases"]
    warm = report["warm_start_median_phases"]
    print_report(
        "local control plane start (seconds)",
        {
            "warm starts": report["warm_start_seconds"],
            "stop (median)": f"{report['stop_seconds_median']} s",
        },
        ["phase", "cold start", f"warm start (median of {WARM_STARTS})"],
        [(phase, cold[phase], warm[phase]) for phase in cold],
    )
    print_report(
        "local control plane memory (MiB, RSS)",
        {
            "roll-out": f"{report['rollout_replicas']} Pods in {report['rollout_seconds']} s",
            "per component peak": report["peak_rss_mib_per_component"],
        },
        ["state", "all components"],
        [
            ("idle after start", report["idle_rss_mib"]),
            ("peak during roll-out", report["peak_rss_mib_sampled"]),
        ],
    )
    assert len(report["warm_start_seconds"]) == WARM_STARTS
    assert 0 < report["warm_start_median_seconds"] < 120
    assert report["peak_rss_mib_sampled"] >= report["idle_rss_mib"] > 0
