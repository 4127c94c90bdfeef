"""The chart's operator image reconciles a RagFlowCluster into real runtime pods on a real node.

``helm install`` runs the operator image (in-cluster, reaching the API through the
``kubernetes`` Service); the RagFlowCluster's managed PostgreSQL, Redis and vector store run from
the node images (Debian PostgreSQL 15 and Redis, Milvus Lite for Milvus), its API and worker pods
from the runtime image, all under the restricted Pod Security Standard. The runtime's startup,
readiness and liveness probes pass for real before the cluster is Ready; a document uploaded
through the API Service is parsed by the worker and retrieved; a killed API pod is replaced and
answers again.

Backup and restore on the same pods: a BackupPolicy's on-demand backup runs as a real Job pod
(the runtime image) writing an encrypted backup to an S3 emulator (moto_server on the host's
address, which pods reach through the pod bridge), the operator reads the Job's summary from its
termination message into the policy's status, and a new RagFlowCluster with
``spec.restoreFrom`` restores it through its real restore Job before its API pod starts, then
answers the same question with the same chunks.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.node import node, premises
from e2e.node.conftest import NodeCluster, node_logs
from e2e.support import apply, eventually, install_crds
from tests.integration.backup import emulators

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(3000)]

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "ragflow-operator"
OPERATOR_NAMESPACE = "ragflow-system"
READY_SECONDS = 900.0
"""Two shared cores: three dependencies plus two runtime pods loading torch and the model."""
DOCUMENT = b"Kubernetes operators reconcile custom resources into running workloads."
QUESTION = "what do operators reconcile?"
BACKUP_SECONDS = 600.0
BACKUP_BUCKET, BACKUP_PREFIX = "ragflow-backups", "real-node"


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


def ragflowcluster(
    namespace: str, images: dict[str, str], name: str = "docs", **spec: Any
) -> dict[str, Any]:
    repository, tag = images["runtime"].rsplit(":", 1)
    return {
        "apiVersion": "ragflow.operator.dev/v1alpha1",
        "kind": "RagFlowCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            "api": {"replicas": 1},
            "workers": {"replicas": 1},
            "database": {"managed": {"image": images["postgres"], "storage": "1Gi"}},
            "cache": {"managed": {"image": images["redis"], "storage": "1Gi"}},
            "vectorStore": {"managed": {"image": images["milvus"], "storage": "1Gi"}},
            **spec,
        },
    }


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for item in obj.get("status", {}).get("conditions") or []:
        if item.get("type") == kind:
            return str(item.get("status"))
    return None


def get_json(node_cluster: NodeCluster, *args: str) -> dict[str, Any]:
    return dict(json.loads(node_cluster.cluster.kubectl("get", *args, "-o", "json").stdout))


def api_pods(
    node_cluster: NodeCluster, namespace: str, cluster: str = "docs"
) -> list[dict[str, Any]]:
    listing = get_json(
        node_cluster,
        "pods",
        "-n",
        namespace,
        "-l",
        f"app.kubernetes.io/component=api,app.kubernetes.io/instance={cluster}",
    )
    return [pod for pod in listing["items"] if not pod["metadata"].get("deletionTimestamp")]


def diagnostics(node_cluster: NodeCluster, namespace: str) -> str:
    def kubectl(*args: str) -> str:
        return node_cluster.cluster.kubectl(*args, check=False).stdout[-4000:]

    return "\n".join(
        [
            kubectl(
                "get", "pods,pvc,jobs,ragflowclusters,backuppolicies", "-n", namespace, "-o", "wide"
            ),
            kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp"),
            kubectl(
                "logs", "-n", namespace, "-l", "app.kubernetes.io/component=backup", "--tail=40"
            ),
            kubectl("logs", "-n", OPERATOR_NAMESPACE, "deployment/ragflow-operator", "--tail=40"),
            node_logs(node_cluster),
        ]
    )


def wait_ready(node_cluster: NodeCluster, namespace: str, name: str) -> None:
    def ready() -> bool:
        obj = get_json(node_cluster, "ragflowcluster", name, "-n", namespace)
        return condition(obj, "Ready") == "True"

    try:
        eventually(f"RagFlowCluster {name} is Ready", ready, READY_SECONDS, interval=5)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnostics(node_cluster, namespace)}") from None


@dataclass(frozen=True)
class RuntimeApi:
    """The API Service of one RagFlowCluster, with its generated API key."""

    base: str
    key: str

    @classmethod
    def of(cls, node_cluster: NodeCluster, namespace: str, name: str) -> RuntimeApi:
        service = get_json(node_cluster, "service", f"{name}-api", "-n", namespace)
        port = service["spec"]["ports"][0]["port"]
        secret = get_json(node_cluster, "secret", f"{name}-api-key", "-n", namespace)
        key = base64.b64decode(secret["data"]["api-key"]).decode()
        return cls(f"http://{service['spec']['clusterIP']}:{port}", key)

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def ingest(self) -> str:
        """Create a dataset, upload and parse DOCUMENT; return the dataset's id."""
        with self.client() as api:
            dataset = api.post("/api/v1/datasets", json={"name": f"real-{time.time_ns()}"})
            dataset_id = str(dataset.json()["data"]["id"])
            files = {"file": ("operators.txt", DOCUMENT, "text/plain")}
            docs = api.post(f"/api/v1/datasets/{dataset_id}/documents", files=files).json()
            ids = [doc["id"] for doc in docs["data"]]
            api.post(f"/api/v1/datasets/{dataset_id}/chunks", json={"document_ids": ids})

            def parsed() -> bool:
                listed = api.get(f"/api/v1/datasets/{dataset_id}/documents").json()["data"]
                return all(doc.get("run") == "DONE" for doc in listed["docs"])

            eventually("the worker parsed the document", parsed, 300, interval=2)
        return dataset_id

    def ask(self, dataset_id: str) -> list[dict[str, Any]]:
        """The chunks retrieved for QUESTION from one dataset."""
        with self.client() as api:
            found = api.post(
                "/api/v1/retrieval", json={"question": QUESTION, "dataset_ids": [dataset_id]}
            ).json()
        assert found["code"] == 0, found
        return list(found["data"]["chunks"])

    def retrieve(self) -> int:
        """Ingest DOCUMENT into a new dataset and return the number of chunks retrieved."""
        return len(self.ask(self.ingest()))


@pytest.fixture(scope="module")
def docs_cluster(
    operator_release: tuple[str, NodeCluster],
) -> Iterator[tuple[str, NodeCluster, RuntimeApi]]:
    """The RagFlowCluster ``docs``, Ready on real pods, shared by this module's tests."""
    namespace, node_cluster = operator_release
    with PermissiveVolumes(node_cluster, namespace):
        apply(node_cluster.cluster, ragflowcluster(namespace, node_cluster.images))
        wait_ready(node_cluster, namespace, "docs")
        yield namespace, node_cluster, RuntimeApi.of(node_cluster, namespace, "docs")


def test_operator_image_runs_real_runtime_pods_that_serve_and_recover(
    docs_cluster: tuple[str, NodeCluster, RuntimeApi],
) -> None:
    namespace, node_cluster, api = docs_cluster
    (pod,) = api_pods(node_cluster, namespace)
    statuses = pod["status"]["containerStatuses"]
    assert all(status["ready"] and status["started"] for status in statuses), statuses
    container = pod["spec"]["containers"][0]
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= container.keys()

    try:
        assert api.retrieve() >= 1
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
            return httpx.get(f"{api.base}/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    eventually("the API Service answers again", answers, 120, interval=2)
    assert api.retrieve() >= 1


@pytest.fixture(scope="module")
def s3_emulator() -> Iterator[emulators.Emulator]:
    """moto_server on the host's address: the pods reach it through the pod bridge."""
    emulator = emulators.start_s3(bucket=BACKUP_BUCKET, host=node.host_address())
    yield emulator
    emulator.stop()


def secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": data}


def backup_policy(namespace: str, endpoint: str) -> dict[str, Any]:
    """Suspended schedules (only the on-demand backup runs), one S3 destination."""
    s3 = {
        "bucket": BACKUP_BUCKET,
        "prefix": BACKUP_PREFIX,
        "region": "us-east-1",
        "endpoint": endpoint,
        "credentialsSecret": {"name": "backup-s3"},
    }
    return {
        "apiVersion": "ragflow.operator.dev/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": {"name": "docs-backups", "namespace": namespace},
        "spec": {
            "clusterRef": {"name": "docs"},
            "suspend": True,
            "schedules": [{"name": "daily", "schedule": "0 2 * * *"}],
            "destinations": [{"name": "emulator", "s3": s3}],
            "encryption": {"keySecret": {"name": "backup-keys"}},
        },
    }


def stored_objects(emulator: emulators.Emulator) -> list[bytes]:
    """Every object the backups wrote (the repository root is ``<prefix>/<cluster>``)."""
    client = emulators.s3_client(emulator.config["s3"]["endpoint"])
    listing = client.list_objects_v2(Bucket=BACKUP_BUCKET, Prefix=f"{BACKUP_PREFIX}/docs/")
    return [
        client.get_object(Bucket=BACKUP_BUCKET, Key=item["Key"])["Body"].read()
        for item in listing.get("Contents") or []
    ]


def answer(chunks: list[dict[str, Any]]) -> list[tuple[str, str, str, float]]:
    """What must survive a restore: which chunks, in which order, how similar (to 4 places)."""
    return [
        (c["id"], c["document_id"], c["content"], round(float(c["similarity"]), 4)) for c in chunks
    ]


def test_backup_job_to_s3_and_restore_into_a_new_cluster_on_real_pods(
    docs_cluster: tuple[str, NodeCluster, RuntimeApi], s3_emulator: emulators.Emulator
) -> None:
    namespace, node_cluster, api = docs_cluster
    cluster = node_cluster.cluster
    dataset_id = api.ingest()
    original = answer(api.ask(dataset_id))
    assert original, "the original cluster retrieved nothing"

    keyring = base64.b64encode(os.urandom(32)).decode()
    for body in (
        secret(namespace, "backup-keys", {"keyring": keyring}),
        secret(
            namespace,
            "backup-s3",
            {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        ),
        backup_policy(namespace, s3_emulator.config["s3"]["endpoint"]),
    ):
        apply(cluster, body)
    cluster.kubectl(
        "annotate", "backuppolicy", "docs-backups", "-n", namespace, "--overwrite",
        "ragflow.operator.dev/backup-now=real-node-1",
    )  # fmt: skip

    def backed_up() -> dict[str, Any] | None:
        policy = get_json(node_cluster, "backuppolicy", "docs-backups", "-n", namespace)
        state = condition(policy, "LastBackupSucceeded")
        if state == "False":
            raise AssertionError(f"backup failed: {policy['status']}")
        return dict(policy["status"]) if state == "True" else None

    try:
        status = eventually("the on-demand backup succeeded", backed_up, BACKUP_SECONDS, 3)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnostics(node_cluster, namespace)}") from None
    last = status["lastBackup"]
    assert last["succeeded"] is True, last
    assert last["destinations"] == [{"name": "emulator", "state": "succeeded", "error": ""}]
    assert status["lastSuccessfulBackup"]["id"] == last["id"]
    assert status["onDemand"]["job"] == last["job"]
    objects = stored_objects(s3_emulator)
    assert objects, "nothing was written to the S3 emulator"
    assert not any(DOCUMENT in blob for blob in objects), "the backup holds plaintext"

    restored_spec = {
        "workers": {"replicas": 0},
        "restoreFrom": {"backupPolicy": "docs-backups", "latest": True},
    }
    apply(cluster, ragflowcluster(namespace, node_cluster.images, "restored", **restored_spec))
    wait_ready(node_cluster, namespace, "restored")
    restored = get_json(node_cluster, "ragflowcluster", "restored", "-n", namespace)
    assert condition(restored, "Restored") == "True", restored["status"]
    job = get_json(node_cluster, "job", "restored-restore", "-n", namespace)
    assert job["status"].get("succeeded") == 1, job["status"]

    copy = RuntimeApi.of(node_cluster, namespace, "restored")
    assert copy.key != api.key
    assert answer(copy.ask(dataset_id)) == original
