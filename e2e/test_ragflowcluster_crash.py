"""The operator killed (SIGKILL) at random points of a reconcile converges after a restart.

A fresh operator process is started and killed repeatedly while clusters are being created and
updated; the last one runs to completion. The end state must equal the desired state: every
child exists exactly once (names are deterministic), owner references intact, generated Secrets
created once and never rotated by the restarts, Ready=True.
"""

from __future__ import annotations

import random
import time

import pytest

from e2e.ragflowcluster_support import (
    OperatorProcess,
    cluster_manifest,
    create_secret,
    external_spec,
    get_json,
    install_crds,
    wait_ready,
)

pytestmark = pytest.mark.cluster
KINDS = "configmap,secret,service,deployment,networkpolicy,replicaset"


def test_operator_killed_at_random_points_converges_without_duplicates(
    cluster, namespace, tmp_path
):
    install_crds(cluster)
    rng = random.Random(20260526)
    create_secret(cluster, namespace, "pg", username="u", password="p")
    names = [f"crash-{i}" for i in range(3)]
    log = tmp_path / "operator.log"
    spec = external_spec()
    for name in names:
        cluster.kubectl("apply", "-f", "-", stdin=cluster_manifest(name, namespace, spec))
    api_keys: dict[str, dict] = {}
    for round_ in range(6):
        process = OperatorProcess(cluster, log).start()
        time.sleep(rng.uniform(0.8, 3.0))  # import + startup take ~1s: kills land mid-reconcile
        process.kill()
        if round_ == 2:  # change the spec between crashes: the new generation must win
            spec = {**external_spec(), "workers": {"replicas": 2}}
            for name in names:
                cluster.kubectl("apply", "-f", "-", stdin=cluster_manifest(name, namespace, spec))
        for name in names:
            secret = get_json(cluster, "secret", f"{name}-api-key", "-n", namespace)
            if secret and name not in api_keys:
                api_keys[name] = secret["data"]
    final = OperatorProcess(cluster, log).start()
    try:
        for name in names:
            rfc = wait_ready(cluster, namespace, name, timeout=90)
            assert rfc["status"]["observedGeneration"] == rfc["metadata"]["generation"]
    finally:
        final.stop()
    items = get_json(cluster, KINDS, "-n", namespace)["items"]
    for name in names:
        owned = [
            i
            for i in items
            if i["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == name
        ]
        refs = [f"{i['kind']}/{i['metadata']['name']}" for i in owned if i["kind"] != "ReplicaSet"]
        assert len(refs) == len(set(refs))
        assert sorted(refs) == sorted(
            [
                f"ConfigMap/{name}-config",
                f"Secret/{name}-api-key",
                f"Service/{name}-api",
                f"Service/{name}-worker",
                f"Deployment/{name}-api",
                f"Deployment/{name}-worker",
                f"NetworkPolicy/{name}-api",
                f"NetworkPolicy/{name}-worker",
            ]
        )
        worker = get_json(cluster, "deployment", f"{name}-worker", "-n", namespace)
        assert worker["spec"]["replicas"] == 2
        secret = get_json(cluster, "secret", f"{name}-api-key", "-n", namespace)
        if name in api_keys:
            assert secret["data"] == api_keys[name], "a restart rotated the generated API key"
