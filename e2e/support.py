"""Helpers shared by the cluster tests in e2e/: polling (`eventually`: until a condition holds;
`holds`: while a property must stay true), reading and applying objects, installing
CRDs, and running operator handlers in-process with kopf against the local control plane.

Used by e2e/test_alertpolicy.py, e2e/test_backup_policy.py, e2e/test_standby.py,
e2e/test_chart_rbac.py, e2e/test_invalid_resources.py and e2e/test_ragflowcluster.py (`holds`),
and e2e/ragflowcluster_support.py (which re-exports `install_crds` for its own callers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import kopf
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes.config import kube_config
from ragflow_operator.handlers import register_handlers
from ragflow_operator.settings import OperatorSettings

from e2e.controlplane.cluster import Cluster

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "crds"
WAIT_SECONDS = 90.0
T = TypeVar("T")


def eventually(
    what: str, check: Callable[[], T | None], timeout: float = WAIT_SECONDS, interval: float = 0.3
) -> T:
    """Call `check` until it returns something truthy and return that; fail after `timeout`
    with `what` and the last answer. The one way the e2e tests wait for a condition."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting until {what} (last: {value!r:.300})"
            )
        time.sleep(interval)


def holds(what: str, check: Callable[[], Any], seconds: float, interval: float = 0.3) -> None:
    """Call `check` for `seconds`, failing at the first falsy answer: `what` must stay true.

    For properties over a stretch of time (nothing is written, an object keeps its content):
    the window is the property, and a violation fails at once instead of at the window's end.
    """
    deadline = time.monotonic() + seconds
    while True:
        if not check():
            raise AssertionError(f"no longer true: {what}")
        if time.monotonic() >= deadline:
            return
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    """The object as JSON, or None when the API server does not have it."""
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def apply(cluster: Cluster, manifest: dict[str, Any]) -> None:
    """Server-side apply of one object as the test's kubectl field manager."""
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps(manifest)
    )


def install_crd(cluster: Cluster, path: Path, *, force_conflicts: bool = True) -> None:
    """Apply the CRD in `path` (server-side) and wait until it is Established."""
    conflicts = ["--force-conflicts"] if force_conflicts else []
    cluster.kubectl("apply", "--server-side", *conflicts, "-f", str(path))
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")


def install_crds(cluster: Cluster) -> None:
    """Apply every CRD in crds/ and wait until each is Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    for path in sorted(CRDS.glob("*.yaml")):
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")


@contextmanager
def kopf_handlers(
    cluster: Cluster, namespace: str, handlers: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The operator module `handlers` (with lifecycle's startup) in kopf, in this process, for
    one namespace, with the settings the environment gives (read now, as `run` does).

    Fails on leaving when kopf itself ended with an exception, showing its output.
    """
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    # kopf logs in through the kubernetes package, whose default kubeconfig path was read from
    # $KUBECONFIG when it was first imported (before the test ran).
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(cluster.kubeconfig))
    registry = kopf.OperatorRegistry()  # a fresh one has no login handler: kopf's own, then ours
    kopf.on.login(registry=registry)(kopf.login_via_client)
    register_handlers(registry, OperatorSettings.from_environment(), modules=[handlers])
    args = ["run", "--standalone", "--namespace", namespace]
    with KopfRunner(args, timeout=60, registry=registry) as runner:
        yield
    assert runner.exception is None, runner.output


def stage_finished_job(
    cluster: Cluster,
    namespace: str,
    name: str,
    labels: dict[str, str],
    summary: dict[str, Any],
    *,
    failed: bool = False,
    stamp: str | None = None,
) -> None:
    """A finished Job and its pod, left as the Job controller and kubelet would leave them.

    No pod runs on the local control plane, so the test plays the runtime: the Job is managed
    by a stand-in controller (`spec.managedBy`, so the Job controller leaves it alone), its
    status says Complete/Failed at `stamp` (default now), and its pod carries `summary` as the
    container's termination message, as `ragruntime backup run` / `standby sync` write it.
    """
    stamp = stamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    container = {"name": "backup", "image": "x"}
    apply(
        cluster,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "managedBy": "ragflow.test/stand-in",
                "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            },
        },
    )
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-pod",
                "namespace": namespace,
                "labels": {"batch.kubernetes.io/job-name": name},
            },
            "spec": {"schedulerName": "none", "restartPolicy": "Never", "containers": [container]},
        },
    )
    terminated = {"exitCode": 1 if failed else 0, "message": json.dumps(summary)}
    pod_status = {
        "status": {
            "phase": "Failed" if failed else "Succeeded",
            "containerStatuses": [
                {
                    **container,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        }
    }
    cluster.kubectl(
        "patch",
        "pod",
        f"{name}-pod",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(pod_status),
    )
    if failed:
        reason = "BackoffLimitExceeded"
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": stamp, "reason": reason}
            for kind in ("FailureTarget", "Failed")
        ]
    else:
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": stamp}
            for kind in ("SuccessCriteriaMet", "Complete")
        ]
    job_status: dict[str, Any] = {
        "startTime": stamp,
        "conditions": conditions,
        "failed" if failed else "succeeded": 1,
    }
    if not failed:
        job_status["completionTime"] = stamp
    cluster.kubectl(
        "patch",
        "job",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": job_status}),
    )
