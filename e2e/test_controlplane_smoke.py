"""Smoke tests proving the local control plane is a real Kubernetes: controllers, scheduler,
kwok nodes, server-side apply, CRD validation and Pod Security admission all behave as in a
production cluster. They run unchanged against kind via ``RAGFLOW_E2E_KUBECONFIG``.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from e2e.controlplane.cluster import Cluster
from e2e.support import eventually

pytestmark = pytest.mark.cluster


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any], *extra: str) -> str:
    return cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", *extra, stdin=json.dumps(manifest)
    ).stdout


def configmap(name: str, data: dict[str, str], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, **metadata},
        "data": data,
    }


def test_deployment_becomes_available_with_pods_running_on_kwok_nodes(
    cluster: Cluster, namespace: str
) -> None:
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]},
            },
        },
    }
    apply(cluster, namespace, deployment)
    cluster.kubectl(
        "wait", "-n", namespace, "deployment/web", "--for=condition=Available", "--timeout=60s"
    )

    def all_running() -> bool:
        pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app=web")["items"]
        return len(pods) == 3 and all(pod["status"].get("phase") == "Running" for pod in pods)

    eventually("3 Pods are Running", all_running)
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app=web")["items"]
    nodes = {pod["spec"]["nodeName"] for pod in pods}
    node_objects = cluster.kubectl_json("get", "nodes")["items"]
    kwok_nodes = {
        node["metadata"]["name"]
        for node in node_objects
        if node["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") == "fake"
    }
    if cluster.is_local:
        assert nodes <= kwok_nodes, f"pods scheduled on {nodes}, kwok nodes are {kwok_nodes}"
    status = cluster.kubectl_json("get", "deployment", "web", "-n", namespace)["status"]
    assert status["availableReplicas"] == 3
    assert status["readyReplicas"] == 3


def test_deleting_an_owner_garbage_collects_its_dependent(cluster: Cluster, namespace: str) -> None:
    apply(cluster, namespace, configmap("owner", {"role": "owner"}))
    owner = cluster.kubectl_json("get", "configmap", "owner", "-n", namespace)
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    apply(
        cluster,
        namespace,
        configmap("dependent", {"role": "dependent"}, ownerReferences=[reference]),
    )
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")

    def dependent_gone() -> bool:
        found = cluster.kubectl("get", "configmap", "dependent", "-n", namespace, check=False)
        return found.returncode != 0 and "NotFound" in found.stderr

    eventually("the garbage collector deletes the dependent ConfigMap", dependent_gone)


def test_server_side_apply_reports_a_field_conflict_between_managers(
    cluster: Cluster, namespace: str
) -> None:
    apply(
        cluster,
        namespace,
        configmap("shared", {"owner": "alice"}),
        "--server-side",
        "--field-manager=alice",
    )
    with pytest.raises(subprocess.CalledProcessError) as conflict:
        apply(
            cluster,
            namespace,
            configmap("shared", {"owner": "bob"}),
            "--server-side",
            "--field-manager=bob",
        )
    assert 'conflict with "alice": .data.owner' in conflict.value.stderr

    apply(
        cluster,
        namespace,
        configmap("shared", {"owner": "bob"}),
        "--server-side",
        "--field-manager=bob",
        "--force-conflicts",
    )
    live = cluster.kubectl_json(
        "get", "configmap", "shared", "-n", namespace, "--show-managed-fields"
    )
    assert live["data"] == {"owner": "bob"}
    owners = {
        entry["manager"]
        for entry in live["metadata"]["managedFields"]
        if "f:owner" in json.dumps(entry.get("fieldsV1", {}))
    }
    assert owners == {"bob"}


def crd(group_suffix: str, schema: dict[str, Any]) -> dict[str, Any]:
    group = f"{group_suffix}.smoke.ragflow.test"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def test_crd_with_structural_schema_is_served_and_non_structural_one_rejected(
    cluster: Cluster, namespace: str
) -> None:
    structural = crd(
        namespace,
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"size": {"type": "integer", "minimum": 1}},
                }
            },
        },
    )
    name = structural["metadata"]["name"]
    try:
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(structural))
        cluster.kubectl("wait", f"crd/{name}", "--for=condition=Established", "--timeout=30s")
        widget = {
            "apiVersion": f"{structural['spec']['group']}/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 2, "unknown": "pruned"},
        }
        # Field validation off, so the unknown field reaches the server, which must prune it.
        apply(cluster, namespace, widget, "--validate=ignore")
        stored = cluster.kubectl_json(
            "get", f"widgets.{structural['spec']['group']}", "w", "-n", namespace
        )
        assert stored["spec"] == {"size": 2}, "unknown fields are pruned by a structural schema"
        widget["spec"] = {"size": 0}
        invalid = cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=json.dumps(widget), check=False
        )
        assert invalid.returncode != 0
        assert "spec.size" in invalid.stderr
    finally:
        cluster.kubectl("delete", f"crd/{name}", "--wait=false", check=False)

    non_structural = crd(
        f"{namespace}-bad",
        {"type": "object", "properties": {"spec": {"properties": {"size": {"minimum": 1}}}}},
    )
    rejected = cluster.kubectl("apply", "-f", "-", stdin=json.dumps(non_structural), check=False)
    assert rejected.returncode != 0, "a non-structural schema must be rejected"
    assert "type: Required value" in rejected.stderr


def pod(name: str, container_security: dict[str, Any], pod_security: dict[str, Any]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": pod_security,
            "containers": [
                {
                    "name": "main",
                    "image": "example.invalid/app:1",
                    "securityContext": container_security,
                }
            ],
        },
    }


def test_restricted_namespace_rejects_a_privileged_pod_and_admits_a_compliant_one(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    privileged = pod("privileged", {"privileged": True}, {})
    rejected = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=json.dumps(privileged), check=False
    )
    assert rejected.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in rejected.stderr
    assert "privileged" in rejected.stderr

    compliant = pod(
        "compliant",
        {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
    )
    apply(cluster, namespace, compliant)
    cluster.kubectl(
        "wait", "-n", namespace, "pod/compliant", "--for=condition=Ready", "--timeout=60s"
    )


def test_statefulset_claims_are_provisioned_bound_and_its_pods_run(
    cluster: Cluster, namespace: str
) -> None:
    labels = {"app": "db"}
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db",
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "db",
                            "image": "example.invalid/db:1",
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }
    apply(cluster, namespace, statefulset)

    def ready() -> bool:
        status = cluster.kubectl_json("get", "statefulset", "db", "-n", namespace)["status"]
        return status.get("readyReplicas") == 2

    eventually("both StatefulSet replicas are ready", ready)
    claims = cluster.kubectl_json("get", "pvc", "-n", namespace)["items"]
    assert sorted(claim["metadata"]["name"] for claim in claims) == ["data-db-0", "data-db-1"]
    assert {claim["status"]["phase"] for claim in claims} == {"Bound"}


def test_job_pods_succeed_and_the_job_completes(cluster: Cluster, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "once", "image": "example.invalid/job:1"}],
                }
            },
        },
    }
    apply(cluster, namespace, job)
    cluster.kubectl(
        "wait", "-n", namespace, "job/once", "--for=condition=Complete", "--timeout=60s"
    )
    status = cluster.kubectl_json("get", "job", "once", "-n", namespace)["status"]
    assert status["succeeded"] == 1
