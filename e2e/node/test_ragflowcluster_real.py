"""The chart's operator image reconciles a RagFlowCluster into real runtime pods on a real node.

``helm install`` runs the operator image (in-cluster, reaching the API through the
``kubernetes`` Service); the RagFlowCluster's managed PostgreSQL, Redis and vector store run from
the node images (Debian PostgreSQL 15 and Redis, Milvus Lite for Milvus), its API and worker pods
from the runtime image, all under the restricted Pod Security Standard. The runtime's startup,
readiness and liveness probes pass for real before the cluster is Ready; a document uploaded
through the API Service is parsed by the worker and retrieved; a killed API pod is replaced and
answers again.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.node import premises
from e2e.node.conftest import NodeCluster, node_logs
from e2e.support import apply, eventually, install_crds

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(3000)]

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "ragflow-operator"
OPERATOR_NAMESPACE = "ragflow-system"
READY_SECONDS = 900.0
"""Two shared cores: three dependencies plus two runtime pods loading torch and the model."""
DOCUMENT = b"Kubernetes operators reconcile custom resources into running workloads."


def helm() -> str:
    cache = Path(os.environ.get("RAGFLOW_CACHE", Path.home() / ".cache" / "ragflow-operator"))
    found = cache / "bin" / "helm"
    if not found.is_file():
        pytest.fail(f"helm not found at {found}: run scripts/install.d/50-helm.sh")
    return str(found)


class PermissiveVolumes:
    """Make the built-in host-path provisioner's directories writable by any pod user.

    The controller-manager's development provisioner creates /tmp/hostpath_pv/<uuid> for root
    only, and fsGroup does not apply to hostPath volumes, so PostgreSQL (uid 70) could not
    write its data. kind's local-path provisioner creates its directories 0777; this thread does
    the same for the PersistentVolumes bound in ``namespace``.
    """

    def __init__(self, node_cluster: NodeCluster, namespace: str) -> None:
        self.cluster = node_cluster.cluster
        self.namespace = namespace
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="pv-permissions")

    def _run(self) -> None:
        while not self.done.wait(1.0):
            raw = self.cluster.kubectl("get", "pv", "-o", "json", check=False)
            if raw.returncode:
                continue
            for volume in json.loads(raw.stdout)["items"]:
                claim = volume["spec"].get("claimRef") or {}
                path = (volume["spec"].get("hostPath") or {}).get("path")
                if claim.get("namespace") == self.namespace and path and Path(path).is_dir():
                    Path(path).chmod(0o777)

    def __enter__(self) -> PermissiveVolumes:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def operator_release(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, NodeCluster]]:
    """The chart installed with the operator image; yields the namespace it watches and the node.

    Checks the runtime tier's own premise before the node starts (a skip then costs nothing).
    """
    reason = premises.why_not_runtime(tmp_path_factory.getbasetemp())
    if reason:
        pytest.skip(reason)
    node_cluster: NodeCluster = request.getfixturevalue("node_cluster")
    node_cluster.load_project_images()
    cluster = node_cluster.cluster
    namespace = "rfc-real"
    for name in (OPERATOR_NAMESPACE, namespace):
        cluster.kubectl("create", "namespace", name)
        cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    install_crds(cluster)
    repository, tag = node_cluster.images["operator"].rsplit(":", 1)
    result = subprocess.run(
        [helm(), "install", "ragflow-operator", str(CHART), "--namespace", OPERATOR_NAMESPACE,
         "--kubeconfig", str(cluster.kubeconfig), "--skip-crds",
         "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
         "--set", "image.pullPolicy=Never", "--set", "watch.allNamespaces=false",
         "--set", f"watch.namespaces={{{namespace}}}", "--wait", "--timeout", "5m"],
        capture_output=True, text=True, check=False, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{node_logs(node_cluster)}"
    yield namespace, node_cluster
    # The RagFlowCluster goes while its operator still runs (kopf removes its finalizer), and
    # its pods (torch, the model) stop now rather than when the node stops.
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    deadline = time.monotonic() + 180
    while (
        time.monotonic() < deadline
        and cluster.kubectl(
            "get", "pods", "-n", namespace, "-o", "name", check=False
        ).stdout.strip()
    ):
        time.sleep(2)
    subprocess.run(
        [helm(), "uninstall", "ragflow-operator", "--namespace", OPERATOR_NAMESPACE,
         "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, check=False, timeout=120,
    )  # fmt: skip


def ragflowcluster(namespace: str, images: dict[str, str]) -> dict[str, Any]:
    repository, tag = images["runtime"].rsplit(":", 1)
    return {
        "apiVersion": "ragflow.operator.dev/v1alpha1",
        "kind": "RagFlowCluster",
        "metadata": {"name": "docs", "namespace": namespace},
        "spec": {
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            "api": {"replicas": 1},
            "workers": {"replicas": 1},
            "database": {"managed": {"image": images["postgres"], "storage": "1Gi"}},
            "cache": {"managed": {"image": images["redis"], "storage": "1Gi"}},
            "vectorStore": {"managed": {"image": images["milvus"], "storage": "1Gi"}},
        },
    }


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for item in obj.get("status", {}).get("conditions") or []:
        if item.get("type") == kind:
            return str(item.get("status"))
    return None


def get_json(node_cluster: NodeCluster, *args: str) -> dict[str, Any]:
    return dict(json.loads(node_cluster.cluster.kubectl("get", *args, "-o", "json").stdout))


def api_pods(node_cluster: NodeCluster, namespace: str) -> list[dict[str, Any]]:
    listing = get_json(
        node_cluster, "pods", "-n", namespace, "-l", "app.kubernetes.io/component=api"
    )
    return [pod for pod in listing["items"] if not pod["metadata"].get("deletionTimestamp")]


def diagnostics(node_cluster: NodeCluster, namespace: str) -> str:
    def kubectl(*args: str) -> str:
        return node_cluster.cluster.kubectl(*args, check=False).stdout[-4000:]

    return "\n".join(
        [
            kubectl("get", "pods,pvc,ragflowclusters", "-n", namespace, "-o", "wide"),
            kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp"),
            kubectl("logs", "-n", OPERATOR_NAMESPACE, "deployment/ragflow-operator", "--tail=40"),
            node_logs(node_cluster),
        ]
    )


def retrieve(base: str, key: str) -> int:
    """Create a dataset, upload and parse DOCUMENT, return the retrieved chunk count."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as api:
        dataset = api.post("/api/v1/datasets", json={"name": f"real-{time.time_ns()}"})
        dataset_id = dataset.json()["data"]["id"]
        files = {"file": ("operators.txt", DOCUMENT, "text/plain")}
        docs = api.post(f"/api/v1/datasets/{dataset_id}/documents", files=files).json()["data"]
        ids = [doc["id"] for doc in docs]
        api.post(f"/api/v1/datasets/{dataset_id}/chunks", json={"document_ids": ids})

        def parsed() -> bool:
            listed = api.get(f"/api/v1/datasets/{dataset_id}/documents").json()["data"]
            return all(doc.get("run") == "DONE" for doc in listed["docs"])

        eventually("the worker parsed the document", parsed, 300, interval=2)
        found = api.post(
            "/api/v1/retrieval",
            json={"question": "what do operators reconcile?", "dataset_ids": [dataset_id]},
        ).json()
        assert found["code"] == 0, found
        return len(found["data"]["chunks"])


def test_operator_image_runs_real_runtime_pods_that_serve_and_recover(
    operator_release: tuple[str, NodeCluster],
) -> None:
    namespace, node_cluster = operator_release
    with PermissiveVolumes(node_cluster, namespace):
        apply(node_cluster.cluster, ragflowcluster(namespace, node_cluster.images))

        def ready() -> bool:
            obj = get_json(node_cluster, "ragflowcluster", "docs", "-n", namespace)
            return condition(obj, "Ready") == "True"

        try:
            eventually("RagFlowCluster docs is Ready", ready, READY_SECONDS, interval=5)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{diagnostics(node_cluster, namespace)}") from None

    (pod,) = api_pods(node_cluster, namespace)
    statuses = pod["status"]["containerStatuses"]
    assert all(status["ready"] and status["started"] for status in statuses), statuses
    container = pod["spec"]["containers"][0]
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= container.keys()

    service = get_json(node_cluster, "service", "docs-api", "-n", namespace)
    port = service["spec"]["ports"][0]["port"]
    base = f"http://{service['spec']['clusterIP']}:{port}"
    secret = get_json(node_cluster, "secret", "docs-api-key", "-n", namespace)
    key = base64.b64decode(secret["data"]["api-key"]).decode()
    try:
        assert retrieve(base, key) >= 1
    except (AssertionError, httpx.HTTPError) as error:
        raise AssertionError(f"{error}\n{diagnostics(node_cluster, namespace)}") from None

    old = pod["metadata"]["name"]
    node_cluster.cluster.kubectl("delete", "pod", old, "-n", namespace, "--wait=false")

    def replaced_and_ready() -> bool:
        pods = api_pods(node_cluster, namespace)
        return bool(pods) and all(
            p["metadata"]["name"] != old
            and all(s["ready"] for s in p["status"].get("containerStatuses") or [{"ready": 0}])
            for p in pods
        )

    eventually("a new API pod is Ready", replaced_and_ready, 600, interval=3)

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    eventually("the API Service answers again", answers, 120, interval=2)
    assert retrieve(base, key) >= 1
