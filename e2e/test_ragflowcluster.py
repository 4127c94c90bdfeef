"""RagFlowCluster end to end on the real control plane (kube-apiserver 1.34 + kwok).

One operator subprocess for the module (resync every 3s), one namespace per test. Covers:
create -> children with owner refs -> Ready; schema/CEL rejections; missing Secret -> Ready=False
-> recovery; updates and the HPA replica hand-over; repair of a deleted child; zero writes on
no-op resyncs (audit log); garbage collection on delete.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from e2e.controlplane.cluster import Cluster
from e2e.ragflowcluster_support import (
    ROOT,
    OperatorProcess,
    cluster_manifest,
    condition,
    create_secret,
    create_volumes,
    external_spec,
    get_json,
    install_crds,
    operator_writes,
    wait_quiet,
    wait_ready,
)
from e2e.support import eventually, holds

pytestmark = pytest.mark.cluster
OWNED_KINDS = "configmap,secret,service,deployment,statefulset,hpa,pdb,networkpolicy,ingress"


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster)
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator") / "operator.log").start()
    try:
        yield process
    finally:
        process.stop()


def apply_cluster(cluster: Cluster, namespace: str, spec: dict, name: str = "docs"):
    return cluster.kubectl(
        "apply", "-f", "-", stdin=cluster_manifest(name, namespace, spec), check=False
    )


def children(cluster: Cluster, namespace: str) -> list[dict]:
    found = get_json(cluster, OWNED_KINDS, "-n", namespace, "-l", "app.kubernetes.io/instance=docs")
    return (found or {}).get("items", [])


def test_minimal_cluster_becomes_ready_with_owned_restricted_children(cluster, namespace, operator):
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    create_volumes(cluster, namespace)
    assert apply_cluster(cluster, namespace, {}).returncode == 0
    try:
        rfc = wait_ready(cluster, namespace, "docs", timeout=150)
    except AssertionError:
        print(operator.log_tail())
        raise
    assert rfc["status"]["phase"] == "Running"
    assert rfc["status"]["readyReplicas"] == 2
    for type_ in ("DatabaseReady", "CacheReady", "VectorStoreReady"):
        assert condition(rfc, type_)["status"] == "True"
    owned = children(cluster, namespace)
    kinds = {f"{c['kind']}/{c['metadata']['name']}" for c in owned}
    assert {
        "Deployment/docs-api",
        "Deployment/docs-worker",
        "StatefulSet/docs-postgres",
        "StatefulSet/docs-redis",
        "StatefulSet/docs-milvus",
        "Secret/docs-api-key",
        "NetworkPolicy/docs-dependencies",
        "PodDisruptionBudget/docs-api",
    } <= kinds
    for child in owned:
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "RagFlowCluster",
            rfc["metadata"]["uid"],
            True,
        )
    # The restricted Pod Security profile admitted every pod (the namespace enforces it).
    pods = get_json(cluster, "pods", "-n", namespace)["items"]
    assert len(pods) == 2 + 1 + 3 and all(p["status"]["phase"] == "Running" for p in pods)
    # ServiceMonitor is not served here: the reason is in the Ready message.
    assert "ServiceMonitor skipped" in condition(rfc, "Ready")["message"]
    table = cluster.kubectl("get", "rfc", "-n", namespace).stdout
    assert table.split()[:7] == [
        "NAME",
        "READY",
        "PHASE",
        "REPLICAS",
        "AVAILABLE",
        "ENDPOINT",
        "AGE",
    ]
    assert "docs   True    Running" in table
    explain = cluster.kubectl("explain", "rfc.spec.autoscaling").stdout
    assert "HorizontalPodAutoscaler" in explain and "latencyTargetSeconds" in explain


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
            "minReplicas must be <= spec.autoscaling.maxReplicas",
        ),
        (
            {
                "database": {
                    "managed": {},
                    "external": {"host": "h", "credentialsSecret": {"name": "s"}},
                }
            },
            "set exactly one of spec.database.managed or spec.database.external",
        ),
        (
            {"ingress": {"enabled": True, "tls": {"secretName": "x"}}},
            "spec.ingress.host is required",
        ),
        ({"api": {"replicas": -1}}, "spec.api.replicas"),
    ],
)
def test_invalid_specs_are_rejected_by_the_api_server(cluster, namespace, operator, spec, message):
    result = apply_cluster(cluster, namespace, spec)
    assert result.returncode != 0
    assert message in result.stderr


def test_missing_secret_sets_ready_false_creates_nothing_and_recovers(cluster, namespace, operator):
    assert apply_cluster(cluster, namespace, external_spec()).returncode == 0

    def failed():
        ready = condition(get_json(cluster, "rfc", "docs", "-n", namespace), "Ready")
        return ready if ready.get("reason") == "MissingSecret" else None

    ready = eventually("Ready=False/MissingSecret", failed, timeout=60)
    assert ready["status"] == "False" and "Secret pg" in ready["message"]
    assert children(cluster, namespace) == []
    create_secret(cluster, namespace, "pg", username="u", password="p")
    wait_ready(cluster, namespace, "docs", timeout=60)


def test_updates_follow_and_the_hpa_takes_replicas_over(cluster, namespace, operator):
    create_secret(cluster, namespace, "pg", username="u", password="p")
    spec = external_spec()
    spec["api"] = {"replicas": 3}
    apply_cluster(cluster, namespace, spec)
    wait_ready(cluster, namespace, "docs")
    deployment = lambda: get_json(cluster, "deployment", "docs-api", "-n", namespace)  # noqa: E731

    spec["api"] = {"replicas": 3, "resources": {"limits": {"cpu": "1500m", "memory": "3Gi"}}}
    spec["networkPolicy"] = {"enabled": False}
    spec["ingress"] = {"enabled": True, "host": "rag.example.com", "tls": {"clusterIssuer": "le"}}
    apply_cluster(cluster, namespace, spec)
    eventually(
        "resources to follow",
        lambda: (
            deployment()["spec"]["template"]["spec"]["containers"][0]["resources"].get("limits")
            == {"cpu": "1500m", "memory": "3Gi"}
        ),
    )
    eventually(
        "network policies removed",
        lambda: not get_json(cluster, "networkpolicy", "-n", namespace)["items"],
    )
    ingress = eventually(
        "ingress", lambda: get_json(cluster, "ingress", "docs-api", "-n", namespace)
    )
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "le"

    # HPA on: our manager lets go of spec.replicas without resetting it to 1.
    spec["autoscaling"] = {"enabled": True, "minReplicas": 4, "maxReplicas": 6}
    apply_cluster(cluster, namespace, spec)
    eventually("HPA", lambda: get_json(cluster, "hpa", "docs-api", "-n", namespace))
    seen = []

    def scaled_by_hpa():
        replicas = deployment()["spec"]["replicas"]
        seen.append(replicas)
        return replicas == 4

    eventually("the HPA to scale to minReplicas", scaled_by_hpa, timeout=60, interval=0.1)
    assert min(seen) >= 3, f"replicas dropped during the hand-over: {seen}"
    managers = {
        entry["manager"]
        for entry in get_json(
            cluster, "deployment", "docs-api", "-n", namespace, "--show-managed-fields"
        )["metadata"]["managedFields"]
        if "f:replicas" in entry.get("fieldsV1", {}).get("f:spec", {})
    }
    assert "ragflow-operator" not in managers

    # HPA off: the operator owns replicas again.
    spec["autoscaling"] = {"enabled": False}
    apply_cluster(cluster, namespace, spec)
    eventually("HPA removed", lambda: get_json(cluster, "hpa", "docs-api", "-n", namespace) is None)
    eventually("replicas back to spec", lambda: deployment()["spec"]["replicas"] == 3)
    wait_ready(cluster, namespace, "docs")


def test_deleted_child_is_repaired_and_noop_resyncs_write_nothing(cluster, namespace, operator):
    create_secret(cluster, namespace, "pg", username="u", password="p")
    apply_cluster(cluster, namespace, external_spec())
    wait_ready(cluster, namespace, "docs")
    api_key = get_json(cluster, "secret", "docs-api-key", "-n", namespace)["data"]
    old_uid = get_json(cluster, "deployment", "docs-api", "-n", namespace)["metadata"]["uid"]
    cluster.kubectl("delete", "deployment", "docs-api", "-n", namespace, "--wait=false")

    def recreated():
        live = get_json(cluster, "deployment", "docs-api", "-n", namespace)
        return live if live and live["metadata"]["uid"] != old_uid else None

    eventually("the deleted Deployment to be recreated", recreated, timeout=30)
    # drift in a field we own is repaired too
    cluster.kubectl("scale", "deployment", "docs-worker", "-n", namespace, "--replicas=5")
    eventually(
        "worker replicas repaired",
        lambda: (
            get_json(cluster, "deployment", "docs-worker", "-n", namespace)["spec"]["replicas"] == 1
        ),
        timeout=30,
    )
    wait_ready(cluster, namespace, "docs")
    # The status settles after the repair: two resyncs without a write, however long that takes.
    offset = wait_quiet(cluster, namespace, quiet_for=2 * operator.resync_seconds)

    def no_writes() -> bool:
        found = operator_writes(cluster, offset)
        writes = [e for e in found if e["objectRef"].get("namespace") == namespace]
        assert writes == [], [(e["verb"], e["objectRef"]) for e in writes]
        return True

    # Observed over 4 resyncs of every cluster; the first write fails at once.
    holds("no operator write in the namespace", no_writes, 4 * operator.resync_seconds + 1)
    assert get_json(cluster, "secret", "docs-api-key", "-n", namespace)["data"] == api_key


def test_deleting_the_cluster_garbage_collects_every_child(cluster, namespace, operator):
    create_secret(cluster, namespace, "pg", username="u", password="p")
    apply_cluster(cluster, namespace, external_spec())
    wait_ready(cluster, namespace, "docs")
    assert children(cluster, namespace)
    cluster.kubectl("delete", "rfc", "docs", "-n", namespace, "--wait=true", timeout=60)
    eventually(
        "children to be garbage-collected",
        lambda: children(cluster, namespace) == [] or None,
        timeout=60,
    )


BACKUP_POLICY = """
apiVersion: ragflow.operator.dev/v1alpha1
kind: BackupPolicy
metadata: {name: nightly, namespace: %s}
spec:
  clusterRef: {name: source}
  suspend: true
  schedules:
    - {name: daily, schedule: "0 2 * * *", type: full, retention: {maxAge: 30d}}
  destinations:
    - name: primary
      s3: {bucket: rag-backups, region: eu-west-1, credentialsSecret: {name: backup-s3}}
  encryption: {keySecret: {name: backup-keys, key: keyring}}
"""


def test_restore_from_backup_runs_before_the_runtime_starts(cluster, namespace, operator):
    create_volumes(cluster, namespace)
    spec = {"restoreFrom": {"backupPolicy": "nightly", "latest": True}}
    assert apply_cluster(cluster, namespace, spec).returncode == 0

    def reason():
        ready = condition(get_json(cluster, "rfc", "docs", "-n", namespace), "Ready")
        return ready.get("reason")

    eventually("Ready=False/MissingBackupPolicy", lambda: reason() == "MissingBackupPolicy")
    assert children(cluster, namespace) == []
    create_secret(cluster, namespace, "backup-keys", keyring="a2V5")
    create_secret(cluster, namespace, "backup-s3", access_key_id="a", secret_access_key="b")
    cluster.kubectl("apply", "-f", "-", stdin=BACKUP_POLICY % namespace)
    # The restore Job runs once the managed dependencies are ready, before any Deployment.
    job = eventually(
        "restore Job", lambda: get_json(cluster, "job", "docs-restore", "-n", namespace)
    )
    args = " ".join(job["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "restore --backup-id latest" in args
    assert job["metadata"]["ownerReferences"][0]["kind"] == "RagFlowCluster"
    # kwok completes Job pods: then the API and workers start and the cluster becomes Ready.
    rfc = wait_ready(cluster, namespace, "docs", timeout=120)
    restored = condition(rfc, "Restored")
    assert (restored["status"], restored["reason"]) == ("True", "RestoreSucceeded")
    api = get_json(cluster, "deployment", "docs-api", "-n", namespace)
    completed = job_completion_time(cluster, namespace)
    assert api["metadata"]["creationTimestamp"] >= completed


def job_completion_time(cluster: Cluster, namespace: str) -> str:
    job = get_json(cluster, "job", "docs-restore", "-n", namespace)
    return str(job["status"]["completionTime"])


@pytest.mark.parametrize(
    "sample", ["ragflowcluster-minimal", "ragflowcluster-production", "ragflowcluster-standby"]
)
def test_samples_are_accepted_by_the_api_server(cluster, namespace, operator, sample):
    document = yaml.safe_load((ROOT / "samples" / f"{sample}.yaml").read_text())
    document["metadata"]["namespace"] = namespace
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(document), check=False
    )
    assert result.returncode == 0, result.stderr
