"""Operator benchmark on the local control plane, with `kubectl apply --server-side` beside it.

Figures printed (run: `pytest tests/bench/bench_operator.py -s`):
- median create->Ready seconds of one RagFlowCluster (operator) vs. `kubectl apply
  --server-side` of the same rendered children until their Deployments are Available;
- seconds to bring N clusters (default 200, env RAGFLOW_BENCH_CLUSTERS) to Ready, and the
  operator's peak RSS (VmHWM), vs. one `kubectl apply --server-side` of all their children;
- write requests per no-op resync (audit log) vs. re-applying the unchanged children with
  kubectl (what a GitOps loop doing `kubectl apply` does each period);
- `test_operator_memory_at_scale`: the operator's RSS with N clusters (default 1000, env
  RAGFLOW_BENCH_MEMORY_CLUSTERS; API and workers scaled to 0 so the control plane only stores
  objects), measured at N/4 and N: MiB per cluster and the peak, which must stay under 300 MB.
Clusters use external dependencies so that 200 of them fit a 2-core machine (2 Deployments,
2 pods, 9 objects each).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
import yaml
from ragflow_operator.builders.registry import render_cluster
from ragflow_operator.builders.render import dump_manifests
from ragflow_operator.capabilities import Capabilities

from e2e.controlplane.flags import fake_node
from e2e.ragflowcluster_support import (
    OperatorProcess,
    cluster_manifest,
    create_secret,
    external_spec,
    get_json,
    install_crds,
    operator_writes,
    wait_for,
    wait_ready,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]
CLUSTERS = int(os.environ.get("RAGFLOW_BENCH_CLUSTERS", "200"))
RESYNC_SECONDS = 20.0


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found")


def rendered_children(name: str, namespace: str) -> str:
    """The children the operator would apply, exactly as `ragflow-operator render` prints them."""
    cr = yaml.safe_load(cluster_manifest(name, namespace, external_spec()))
    return dump_manifests(render_cluster(cr, Capabilities()).manifests)


def deployments_available(cluster, namespace: str, expected: int) -> bool:
    items = get_json(cluster, "deployments", "-n", namespace)["items"]
    ready = [
        d
        for d in items
        if (d.get("status") or {}).get("availableReplicas", 0) >= d["spec"]["replicas"]
    ]
    return len(items) == expected and len(ready) == expected


def kubectl_apply_ready_seconds(cluster, namespace: str, manifests: str, deployments: int) -> float:
    start = time.monotonic()
    cluster.kubectl(
        "apply", "--server-side", "-n", namespace, "-f", "-", stdin=manifests, timeout=600
    )
    wait_for(
        "deployments available",
        lambda: deployments_available(cluster, namespace, deployments),
        timeout=900,
        interval=0.5,
    )
    return time.monotonic() - start


def add_nodes(cluster, count: int) -> None:
    """More kwok nodes: 110 pods each, and both sides of the benchmark run 2 pods per cluster."""
    nodes = [fake_node(f"kwok-bench-{i}", i) for i in range(count)]
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(nodes))


def test_operator_against_kubectl_server_side_apply(cluster, tmp_path):
    install_crds(cluster)
    add_nodes(cluster, (4 * CLUSTERS + 40) // 110 + 1)
    operator = OperatorProcess(
        cluster, tmp_path / "operator.log", resync_seconds=RESYNC_SECONDS
    ).start()
    try:
        # 1. one cluster at a time, 5 times
        singles, manual = [], []
        for i in range(5):
            ns = f"bench-one-{i}"
            cluster.kubectl("create", "namespace", ns)
            create_secret(cluster, ns, "pg", username="u", password="p")
            start = time.monotonic()
            cluster.kubectl("apply", "-f", "-", stdin=cluster_manifest("docs", ns, external_spec()))
            wait_ready(cluster, ns, "docs", timeout=120)
            singles.append(time.monotonic() - start)
            base_ns = f"bench-kubectl-{i}"
            cluster.kubectl("create", "namespace", base_ns)
            create_secret(cluster, base_ns, "pg", username="u", password="p")
            manual.append(
                kubectl_apply_ready_seconds(cluster, base_ns, rendered_children("docs", base_ns), 2)
            )

        # 2. N clusters at once
        ns = "bench-many"
        cluster.kubectl("create", "namespace", ns)
        create_secret(cluster, ns, "pg", username="u", password="p")
        crs = "".join(
            "---\n" + cluster_manifest(f"c{i:03d}", ns, external_spec()) for i in range(CLUSTERS)
        )
        start = time.monotonic()
        cluster.kubectl("apply", "--server-side", "-f", "-", stdin=crs, timeout=600)

        def all_ready():
            items = get_json(cluster, "rfc", "-n", ns)["items"]
            ready = [
                i
                for i in items
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (i.get("status") or {}).get("conditions", [])
                )
            ]
            return len(ready) == CLUSTERS

        wait_for(f"{CLUSTERS} clusters Ready", all_ready, timeout=1800, interval=2.0)
        many_seconds = time.monotonic() - start
        rss_after_create = peak_rss_mib(operator.pid)

        # 3. no-op resyncs: count the operator's writes over >= 2 resync periods
        time.sleep(RESYNC_SECONDS)
        offset = cluster.audit_offset()
        window = 2 * RESYNC_SECONDS + 5
        time.sleep(window)
        writes = [
            e for e in operator_writes(cluster, offset) if e["objectRef"].get("namespace") == ns
        ]
        resyncs = CLUSTERS * int(window // RESYNC_SECONDS)
        rss = peak_rss_mib(operator.pid)
    finally:
        operator.stop()

    base_ns = "bench-kubectl-many"
    cluster.kubectl("create", "namespace", base_ns)
    create_secret(cluster, base_ns, "pg", username="u", password="p")
    all_children = "".join(rendered_children(f"c{i:03d}", base_ns) for i in range(CLUSTERS))
    manual_many = kubectl_apply_ready_seconds(cluster, base_ns, all_children, 2 * CLUSTERS)
    offset = cluster.audit_offset()
    cluster.kubectl(
        "apply", "--server-side", "-n", base_ns, "-f", "-", stdin=all_children, timeout=600
    )
    kubectl_writes = [
        e for e in cluster.audit_events(offset) if e["objectRef"].get("namespace") == base_ns
    ]

    print("\n=== operator benchmark (local control plane: kube-apiserver 1.34 + kwok) ===")
    print(
        f"create->Ready, one cluster      operator median {statistics.median(singles):6.2f}s "
        f"(runs {', '.join(f'{s:.2f}' for s in singles)})"
    )
    print(
        f"                                kubectl SSA median {statistics.median(manual):6.2f}s "
        f"(runs {', '.join(f'{s:.2f}' for s in manual)})"
    )
    print(
        f"{CLUSTERS} clusters to Ready           operator {many_seconds:7.1f}s; "
        f"kubectl SSA of the same children until Available {manual_many:7.1f}s"
    )
    print(
        f"operator peak RSS               {rss_after_create:6.1f} MiB after creating, "
        f"{rss:6.1f} MiB after resyncs"
    )
    print(
        f"writes per no-op resync         operator {len(writes) / resyncs:.3f} "
        f"({len(writes)} writes over {resyncs} cluster resyncs); "
        f"kubectl re-apply {len(kubectl_writes) / CLUSTERS:.1f} per cluster "
        f"({len(kubectl_writes)} writes)"
    )
    assert writes == [], [(e["verb"], e["objectRef"]) for e in writes[:10]]


MEMORY_CLUSTERS = int(os.environ.get("RAGFLOW_BENCH_MEMORY_CLUSTERS", "1000"))
MEMORY_LIMIT_MIB = 300 * 1000**2 / 2**20  # 300 MB


def ready_count(cluster, namespace: str) -> int:
    items = get_json(cluster, "rfc", "-n", namespace)["items"]
    return sum(
        1
        for item in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (item.get("status") or {}).get("conditions", [])
        )
    )


def test_operator_memory_at_scale(cluster, tmp_path):
    """RSS of the operator with N clusters: what grows per cluster, and the peak."""
    install_crds(cluster)
    operator = OperatorProcess(
        cluster, tmp_path / "operator.log", resync_seconds=RESYNC_SECONDS
    ).start()
    ns = "bench-memory"
    cluster.kubectl("create", "namespace", ns)
    create_secret(cluster, ns, "pg", username="u", password="p")
    spec = {**external_spec(), "api": {"replicas": 0}, "workers": {"replicas": 0}}
    points: list[tuple[int, float, float, float]] = []
    created = 0
    try:
        for target in (max(1, MEMORY_CLUSTERS // 4), MEMORY_CLUSTERS):
            crs = "".join(
                "---\n" + cluster_manifest(f"m{i:04d}", ns, spec) for i in range(created, target)
            )
            start = time.monotonic()
            cluster.kubectl("apply", "--server-side", "-f", "-", stdin=crs, timeout=900)
            created = target
            wait_for(
                f"{target} clusters Ready",
                lambda n=target: ready_count(cluster, ns) == n,
                timeout=3600,
                interval=5.0,
            )
            seconds = time.monotonic() - start
            time.sleep(RESYNC_SECONDS * 1.5)  # at least one resync of every cluster
            points.append((target, seconds, rss_mib(operator.pid), peak_rss_mib(operator.pid)))
    finally:
        operator.stop()
    (n1, _, rss1, _), (n2, _, rss2, peak) = points
    per_cluster_kib = (rss2 - rss1) * 1024 / max(1, n2 - n1)
    print("\n=== operator memory (local control plane; API/workers at 0 replicas) ===")
    for n, seconds, rss, hwm in points:
        print(
            f"{n:5d} clusters: Ready after {seconds:7.1f}s, RSS {rss:6.1f} MiB, peak {hwm:6.1f} MiB"
        )
    print(f"growth per cluster              {per_cluster_kib:6.1f} KiB")
    assert peak < MEMORY_LIMIT_MIB, f"peak RSS {peak:.1f} MiB at {n2} clusters"
