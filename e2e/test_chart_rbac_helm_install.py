"""`helm install` of the chart into a real API server: every object is accepted server-side.

kubernetes-validate (tests/unit/delivery) checks the rendered objects against OpenAPI schemas;
this test lets the API server itself admit them (CRDs, RBAC, the Deployment with its security
context, the metrics Service, and the ServiceMonitor once its CRD exists), then waits until the
operator Deployment is available (kwok runs the pod on the local control plane) and uninstalls.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest
import yaml

from e2e.controlplane.cluster import Cluster
from e2e.test_chart_rbac import find_helm

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "ragflow-operator"
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"


def helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    home = cluster.kubeconfig.parent / "helm-home"
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run(
        [str(find_helm()), *args], capture_output=True, text=True, env=env, timeout=240, check=False
    )


def service_monitor_crd() -> str:
    """A minimal structural ServiceMonitor CRD (the Prometheus Operator's is not installed)."""
    return yaml.safe_dump(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": SERVICE_MONITOR_CRD},
            "spec": {
                "group": "monitoring.coreos.com",
                "scope": "Namespaced",
                "names": {
                    "kind": "ServiceMonitor",
                    "listKind": "ServiceMonitorList",
                    "plural": "servicemonitors",
                    "singular": "servicemonitor",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )


def test_helm_install_is_admitted_and_the_operator_becomes_available(
    cluster: Cluster, namespace: str
) -> None:
    present = cluster.kubectl("get", "crd", SERVICE_MONITOR_CRD, check=False).returncode == 0
    if not present:  # keep an existing (real) ServiceMonitor CRD as it is
        cluster.kubectl("apply", "-f", "-", stdin=service_monitor_crd())
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{SERVICE_MONITOR_CRD}")
    release = f"chart-{secrets.token_hex(3)}"
    install = helm(
        cluster,
        "install", release, str(CHART), "--namespace", namespace,
        "--set", "watch.allNamespaces=false", "--set", f"watch.namespaces={{{namespace}}}",
        "--set", "metrics.serviceMonitor.enabled=true",
        # Helm 4 applies CRDs server-side; other tests applied them with kubectl (same content).
        "--force-conflicts",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    try:
        assert install.returncode == 0, install.stderr
        deployment = cluster.kubectl_json(
            "get", "deployment", f"{release}-ragflow-operator", "-n", namespace
        )
        assert deployment["status"].get("availableReplicas") == 1
        for crd in ("ragflowclusters", "backuppolicies", "alertpolicies"):
            cluster.kubectl("get", "crd", f"{crd}.ragflow.operator.dev")
        monitors = cluster.kubectl_json("get", "servicemonitors", "-n", namespace)["items"]
        assert [m["metadata"]["name"] for m in monitors] == [f"{release}-ragflow-operator"]
        status = helm(cluster, "status", release, "--namespace", namespace)
        assert "STATUS: deployed" in status.stdout, status.stdout + status.stderr
    finally:
        uninstall = helm(cluster, "uninstall", release, "--namespace", namespace, "--wait")
        cluster.kubectl("delete", "clusterrole", f"{release}-ragflow-operator", check=False)
        if not present:  # other tests discover optional APIs: leave the cluster as it was
            cluster.kubectl("delete", "crd", SERVICE_MONITOR_CRD, check=False)
    assert uninstall.returncode == 0, uninstall.stderr
    # Helm leaves CRDs in place on uninstall (deleting them would delete every custom resource).
    cluster.kubectl("get", "crd", "ragflowclusters.ragflow.operator.dev")
