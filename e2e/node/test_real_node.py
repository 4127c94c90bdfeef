"""A real node: restricted pods run as containers, probes pass, Services route, pods reach the API.

The basics every later test of this tier relies on, each with the shortest workload that shows
it: the Node reports containerd and the control plane's kubelet version; a Deployment under the
restricted Pod Security Standard becomes Ready through real HTTP probes and answers through its
ClusterIP (kube-proxy); a Job pod reaches the API server through the ``kubernetes`` Service with
its ServiceAccount token; a deleted pod is replaced by a new container.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from e2e.controlplane import assets
from e2e.node import node
from e2e.node.conftest import NodeCluster, node_logs
from e2e.support import apply, eventually

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "readOnlyRootFilesystem": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def web_deployment(namespace: str, image: str) -> dict[str, Any]:
    """python3 -m http.server on 8080, with startup, readiness and liveness HTTP probes."""
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "command": ["python3", "-m", "http.server", "8080"],
                            "workingDir": "/etc",
                            "ports": [{"containerPort": 8080}],
                            "startupProbe": {**probe, "failureThreshold": 30},
                            "readinessProbe": probe,
                            "livenessProbe": probe,
                            "securityContext": RESTRICTED_CONTAINER,
                        }
                    ],
                },
            },
        },
    }


def deployment_ready(node_cluster: NodeCluster, namespace: str, name: str) -> bool:
    result = node_cluster.cluster.kubectl(
        "get", "deployment", name, "-n", namespace, "-o", "json", check=False
    )
    if result.returncode:
        return False
    status = json.loads(result.stdout).get("status", {})
    return bool(status.get("readyReplicas") == status.get("replicas") == 1)


def pod_names(node_cluster: NodeCluster, namespace: str, selector: str) -> list[str]:
    result = node_cluster.cluster.kubectl(
        "get", "pods", "-n", namespace, "-l", selector, "-o", "json"
    )
    return [
        item["metadata"]["name"]
        for item in json.loads(result.stdout)["items"]
        if not item["metadata"].get("deletionTimestamp")
    ]


def test_node_runs_containerd_and_the_control_planes_kubelet(node_cluster: NodeCluster) -> None:
    raw = node_cluster.cluster.kubectl("get", "node", node.NODE_NAME, "-o", "json").stdout
    info = json.loads(raw)["status"]["nodeInfo"]
    assert info["kubeletVersion"] == assets.KUBERNETES_VERSION
    assert info["containerRuntimeVersion"].startswith("containerd://")


def test_restricted_pod_passes_real_probes_and_serves_through_its_service(
    node_cluster: NodeCluster, node_namespace: str
) -> None:
    cluster = node_cluster.cluster
    apply(cluster, web_deployment(node_namespace, node_cluster.images["base"]))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": node_namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    apply(cluster, service)
    try:
        eventually(
            "web is Ready", lambda: deployment_ready(node_cluster, node_namespace, "web"), 180
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{node_logs(node_cluster)}") from None
    cluster_ip = json.loads(
        cluster.kubectl("get", "service", "web", "-n", node_namespace, "-o", "json").stdout
    )["spec"]["clusterIP"]

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://{cluster_ip}/hostname", timeout=3) as response:
                return response.status == 200
        except OSError:
            return False

    eventually(f"http://{cluster_ip}/ answers through kube-proxy", answers, 60)

    (old,) = pod_names(node_cluster, node_namespace, "app=web")
    cluster.kubectl("delete", "pod", old, "-n", node_namespace, "--wait=false")
    eventually(
        "a new web pod is Ready",
        lambda: (
            deployment_ready(node_cluster, node_namespace, "web")
            and old not in pod_names(node_cluster, node_namespace, "app=web")
        ),
        120,
    )
    eventually(f"http://{cluster_ip}/ answers again", answers, 60)


def test_pod_reaches_the_api_server_through_the_kubernetes_service(
    node_cluster: NodeCluster, node_namespace: str
) -> None:
    script = (
        "import os, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "context = ssl.create_default_context(cafile=f'{sa}/ca.crt')\n"
        "host = os.environ['KUBERNETES_SERVICE_HOST']\n"
        "token = open(f'{sa}/token').read()\n"
        "request = urllib.request.Request(f'https://{host}/version',"
        " headers={'Authorization': f'Bearer {token}'})\n"
        "print(urllib.request.urlopen(request, context=context, timeout=10).read().decode())\n"
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "api", "namespace": node_namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "api",
                            "image": node_cluster.images["base"],
                            "imagePullPolicy": "Never",
                            "command": ["python3", "-c", script],
                            "securityContext": RESTRICTED_CONTAINER,
                        }
                    ],
                }
            },
        },
    }
    apply(node_cluster.cluster, job)

    def finished() -> str | None:
        raw = node_cluster.cluster.kubectl("get", "job", "api", "-n", node_namespace, "-o", "json")
        status = json.loads(raw.stdout).get("status", {})
        if status.get("succeeded"):
            return "succeeded"
        return "failed" if status.get("failed") else None

    outcome = eventually("the api Job finishes", finished, 120)
    logs = node_cluster.cluster.kubectl("logs", "job/api", "-n", node_namespace, check=False)
    assert outcome == "succeeded", f"{logs.stdout}{logs.stderr}\n{node_logs(node_cluster)}"
    assert assets.KUBERNETES_VERSION in logs.stdout
