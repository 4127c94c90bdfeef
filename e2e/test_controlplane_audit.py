"""The local control plane's audit log records write requests (and only those), so tests can count
the writes a controller makes between two points in time.
"""

from __future__ import annotations

import pytest

from e2e.controlplane.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_audit_log_records_each_write_once_and_no_reads(cluster: Cluster, namespace: str) -> None:
    if not cluster.is_local:
        pytest.skip("an external cluster (RAGFLOW_E2E_KUBECONFIG) exposes no audit log")
    offset = cluster.audit_offset()
    cluster.kubectl("create", "configmap", "audited", "-n", namespace, "--from-literal=k=v")
    cluster.kubectl("get", "configmap", "audited", "-n", namespace)
    cluster.kubectl("label", "configmap", "audited", "-n", namespace, "touched=yes")
    cluster.kubectl("delete", "configmap", "audited", "-n", namespace)

    ours = [
        event
        for event in cluster.audit_events(offset)
        if event.get("objectRef", {}).get("name") == "audited"
        and event.get("objectRef", {}).get("namespace") == namespace
    ]
    assert [event["verb"] for event in ours] == ["create", "patch", "delete"]
    assert all(event["stage"] == "ResponseComplete" for event in ours)
    assert all(event["level"] == "Metadata" for event in ours)
    assert all(event["user"]["username"] == "kubernetes-admin" for event in ours)
    assert all(event["responseStatus"]["code"] in (200, 201) for event in ours)
