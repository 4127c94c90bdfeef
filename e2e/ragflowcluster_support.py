"""Helpers for the RagFlowCluster cluster tests and benchmarks: the operator as a subprocess,
CRD installation (from e2e/support.py), CR manifests, polling, and counting the operator's
writes in the audit log.

Used by e2e/test_ragflowcluster*.py and tests/bench/bench_operator*.py. The operator runs as
`python -m ragflow_operator run -A` with KUBECONFIG pointing at the test cluster; it is stopped
by its own PID (SIGTERM, then SIGKILL), never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import yaml

from e2e.controlplane.cluster import Cluster
from e2e.support import eventually
from e2e.support import install_crds as install_crds  # re-exported for tests and benchmarks

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_AGENTS = ("ragflow-operator/", "kopf/")
T = TypeVar("T")


class OperatorProcess:
    """`ragflow-operator run -A` in a child process, logging to a file."""

    def __init__(self, cluster: Cluster, log_path: Path, resync_seconds: float = 3.0) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.resync_seconds = resync_seconds
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **self.cluster.env(),
            "RAGFLOW_OPERATOR_RESYNC_SECONDS": str(self.resync_seconds),
            # as in the operator image (Dockerfile): fewer malloc arenas, less RSS per cluster
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "operator"), os.environ.get("PYTHONPATH", "")]
            ),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ragflow_operator", "run", "-A", "--log-format", "plain"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no clean-up at all (crash simulation)."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def cluster_manifest(name: str, namespace: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "ragflow.operator.dev/v1alpha1",
            "kind": "RagFlowCluster",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def external_spec() -> dict[str, Any]:
    """A light cluster: every dependency external (no StatefulSets, no PVCs)."""
    return {
        "database": {"external": {"host": "pg.example", "credentialsSecret": {"name": "pg"}}},
        "cache": {"external": {"url": "redis://cache.example:6379/0"}},
        "vectorStore": {"external": {"uri": "http://milvus.example:19530"}},
        "monitoring": {"serviceMonitor": False},
        "api": {"replicas": 1},
        "podDisruptionBudget": {"enabled": False},
    }


def create_secret(cluster: Cluster, namespace: str, name: str, **values: str) -> None:
    args = [f"--from-literal={k}={v}" for k, v in values.items()]
    cluster.kubectl("create", "secret", "generic", name, "-n", namespace, *args)


def create_volumes(cluster: Cluster, prefix: str, count: int = 3, size: str = "200Gi") -> list[str]:
    """Static hostPath PVs so managed dependencies' PVCs bind without a provisioner."""
    names = [f"{prefix}-{i}" for i in range(count)]
    documents = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": "",
                "hostPath": {"path": f"/tmp/{name}"},
            },
        }
        for name in names
    ]
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
    return names


def get_json(cluster: Cluster, *args: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    import json

    return json.loads(result.stdout)  # type: ignore[no-any-return]


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return item  # type: ignore[no-any-return]
    return {}


def wait_ready(
    cluster: Cluster, namespace: str, name: str, timeout: float = 120.0
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = get_json(cluster, "rfc", name, "-n", namespace)
        ready = condition(obj, "Ready")
        observed = (obj or {}).get("status", {}).get("observedGeneration")
        fresh = obj and observed == obj["metadata"]["generation"]
        return obj if ready.get("status") == "True" and fresh else None

    return eventually(f"RagFlowCluster {namespace}/{name} Ready=True", probe, timeout)


def wait_quiet(cluster: Cluster, namespace: str, quiet_for: float, timeout: float = 120.0) -> int:
    """Wait until the operator has written nothing in `namespace` for `quiet_for` seconds.

    Returns the audit offset where that quiet stretch began (later writes are after it).
    """
    offset, quiet_since = cluster.audit_offset(), time.monotonic()
    deadline = quiet_since + timeout
    while time.monotonic() - quiet_since < quiet_for:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the operator kept writing in {namespace} for {timeout:.0f}s")
        writes = operator_writes(cluster, offset)
        if any(e["objectRef"].get("namespace") == namespace for e in writes):
            offset, quiet_since = cluster.audit_offset(), time.monotonic()
        time.sleep(0.25)
    return offset


def operator_writes(cluster: Cluster, since: int) -> list[dict[str, Any]]:
    """Write requests (audit events) made by the operator (our client or kopf) after `since`."""
    return [
        event
        for event in cluster.audit_events(since)
        if str(event.get("userAgent", "")).startswith(OPERATOR_AGENTS)
        and event.get("stage") in (None, "ResponseComplete")
    ]
