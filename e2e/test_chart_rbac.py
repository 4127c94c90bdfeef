"""RBAC proven, not assumed: the operator runs with the Helm chart's ServiceAccount and rules.

The chart is rendered with `helm template` (watching one namespace, so the rules arrive through a
RoleBinding and nothing cluster-wide is granted); its ServiceAccount, ClusterRole and RoleBinding
are applied to the cluster; a token is minted for the ServiceAccount (TokenRequest, as
`kubectl create token` does) and written into a kubeconfig of its own. Then `ragflow-operator`
runs as a subprocess with exactly the arguments of the chart's Deployment, while the test (as
admin) creates, updates and deletes one of each kind from samples/. Any 403 in the operator's log
fails the test, every object must be reconciled (observedGeneration) and finalized (deleted), and
no field manager but the test's kubectl may own any part of `spec` (the operator never fights a
GitOps tool over it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ragflow_operator import names
from ragflow_operator.builders.backup import LABEL_POLICY

from e2e.controlplane.cluster import Cluster
from e2e.support import eventually, get, install_crds

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "ragflow-operator"
SAMPLES = ROOT / "samples"
WAIT_SECONDS = 90.0
#: How a denial shows up: kopf's APIForbiddenError and its "Not enough permissions" warnings, the
#: API server's "... is forbidden: User ..." messages, or a bare 403 status code.
FORBIDDEN = re.compile(r"forbidden|Not enough permissions|(?<![\w.])403(?![\w.])", re.IGNORECASE)
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


@dataclass(frozen=True)
class SampleCase:
    """One kind, its plural, and the spec change that exercises its update path."""

    kind: str
    plural: str
    update: dict[str, Any]


CASES = (
    # Switching NetworkPolicies off makes the operator delete children (the delete verb).
    SampleCase(
        "RagFlowCluster",
        "ragflowclusters",
        {"spec": {"networkPolicy": {"enabled": False}, "workers": {"replicas": 2}}},
    ),
    SampleCase(
        "AlertPolicy",
        "alertpolicies",
        {"spec": {"rules": {"highMemory": {"enabled": False}}, "dashboard": {"enabled": False}}},
    ),
    SampleCase("BackupPolicy", "backuppolicies", {"spec": {"suspend": True}}),
)


def find_helm() -> Path:
    """helm from $RAGFLOW_HELM, $RAGFLOW_CACHE/bin (scripts/install.d/50-helm.sh) or PATH."""
    cache = Path(os.environ.get("RAGFLOW_CACHE", Path.home() / ".cache" / "ragflow-operator"))
    for candidate in (os.environ.get("RAGFLOW_HELM"), cache / "bin" / "helm", shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise FileNotFoundError("helm not found: run `bash scripts/install.d/50-helm.sh`")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_chart(
    release: str, operator_namespace: str, watched: str, ports: dict[str, int]
) -> list[dict[str, Any]]:
    command = [
        str(find_helm()),
        "template",
        release,
        str(CHART),
        "--namespace",
        operator_namespace,
        "--set",
        "watch.allNamespaces=false",
        "--set",
        f"watch.namespaces={{{watched}}}",
        "--set",
        f"livenessProbe.port={ports['liveness']}",
        "--set",
        f"metrics.port={ports['metrics']}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def service_account_kubeconfig(cluster: Cluster, token: str, path: Path) -> Path:
    """A kubeconfig for the same API server as the admin one, authenticated by `token` only."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "e2e", "cluster": server["cluster"]}],
                "users": [{"name": "ragflow-operator", "user": {"token": token}}],
                "contexts": [
                    {"name": "operator", "context": {"cluster": "e2e", "user": "ragflow-operator"}}
                ],
                "current-context": "operator",
            }
        )
    )
    path.chmod(0o600)
    return path


def mint_token(cluster: Cluster, namespace: str, service_account: str) -> str:
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    result = cluster.kubectl(
        "create",
        "--raw",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        "-f",
        "-",
        stdin=json.dumps(request),
    )
    return str(json.loads(result.stdout)["status"]["token"])


def reconciled(cluster: Cluster, namespace: str, case: SampleCase, name: str) -> bool:
    """The operator has seen the current generation and reported a Ready condition."""
    obj = get(cluster, namespace, case.plural, name) or {}
    status = obj.get("status") or {}
    generation = obj.get("metadata", {}).get("generation")
    has_ready = any(c.get("type") == "Ready" for c in status.get("conditions") or [])
    return bool(generation) and status.get("observedGeneration") == generation and has_ready


def spec_writers(obj: dict[str, Any]) -> set[str]:
    """Field managers owning any part of spec (from managedFields): only the test may."""
    return {
        entry.get("manager", "")
        for entry in obj.get("metadata", {}).get("managedFields") or []
        if "f:spec" in (entry.get("fieldsV1") or {})
    }


@dataclass
class RunningOperator:
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def chart_rbac_operator(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> Iterator[RunningOperator]:
    """The operator, run with the chart's arguments and its ServiceAccount's token only."""
    install_crds(cluster)
    # kubectl caches discovery per server address; a failed lookup refreshes it.
    plurals = ",".join(case.plural for case in CASES)
    eventually(
        "the custom resources are served",
        lambda: cluster.kubectl("get", plurals, "-n", namespace, check=False).returncode == 0,
        30,
    )
    release = f"rbac-{secrets.token_hex(3)}"
    operator_namespace = f"{namespace}-op"
    cluster.kubectl("create", "namespace", operator_namespace)
    ports = {"liveness": free_port(), "metrics": free_port()}
    docs = render_chart(release, operator_namespace, namespace, ports)
    rbac = [doc for doc in docs if doc["kind"] in RBAC_KINDS]
    assert {doc["kind"] for doc in rbac} == {"ServiceAccount", "ClusterRole", "RoleBinding"}
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    token = mint_token(cluster, operator_namespace, pod["serviceAccountName"])
    kubeconfig = service_account_kubeconfig(cluster, token, tmp_path / "operator.kubeconfig")
    # Exactly the chart's arguments; only the listen address is narrowed to loopback.
    args = [arg.replace("0.0.0.0", "127.0.0.1") for arg in pod["containers"][0]["args"]]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "RAGFLOW_OPERATOR_RESYNC_SECONDS": "5"}
    env.pop("RAGFLOW_E2E_KUBECONFIG", None)
    log = tmp_path / "operator.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "ragflow_operator", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    running = RunningOperator(process, log)
    try:
        liveness = f"http://127.0.0.1:{ports['liveness']}/healthz"
        eventually(f"the operator answers {liveness}", lambda: probe(liveness, running), 60)
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        cluster.kubectl("delete", "clusterrole", f"{release}-ragflow-operator", check=False)
        cluster.kubectl("delete", "namespace", operator_namespace, "--wait=false", check=False)


def probe(url: str, running: RunningOperator) -> bool:
    if running.process.poll() is not None:
        raise AssertionError(f"the operator exited early:\n{running.text()[-4000:]}")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def load_sample(case: SampleCase) -> dict[str, Any]:
    """The first sample of the case's kind that does not pin a namespace (samples/*.yaml)."""
    for path in sorted(SAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if (
                document
                and document["kind"] == case.kind
                and "namespace" not in document["metadata"]
            ):
                return dict(document)
    raise AssertionError(f"samples/ holds no namespace-free {case.kind}")


#: Keys a Secret referenced by name only must hold (backup destination credentials).
CREDENTIAL_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "service-account.json",
)


def secret_references(value: Any, field: str = "") -> Iterator[tuple[str, str | None]]:
    """(Secret name, key or None) of every `*Secret: {name[, key]}` field in a spec."""
    if isinstance(value, dict):
        if field.endswith("Secret") and isinstance(value.get("name"), str):
            yield value["name"], value.get("key")
        for key, child in value.items():
            yield from secret_references(child, key)
    elif isinstance(value, list):
        for child in value:
            yield from secret_references(child, field)


def create_referenced_secrets(cluster: Cluster, namespace: str, specs: list[Any]) -> None:
    """Dummy Secrets for every reference in the samples, so reconciles get past their checks.

    Every value is a base64 32-byte key: valid for an encryption keyring and harmless anywhere
    else (nothing here talks to a cloud or a pager).
    """
    wanted: dict[str, set[str]] = {}
    for spec in specs:
        for name, key in secret_references(spec):
            wanted.setdefault(name, set()).update([key] if key else CREDENTIAL_KEYS)
    for name, keys in sorted(wanted.items()):
        value = base64.b64encode(secrets.token_bytes(32)).decode()
        literals = [f"--from-literal={key}={value}" for key in sorted(keys)]
        cluster.kubectl("create", "secret", "generic", name, "-n", namespace, *literals)


def test_operator_with_chart_rbac_handles_all_kinds_without_forbidden(
    cluster: Cluster, namespace: str, chart_rbac_operator: RunningOperator
) -> None:
    samples = {case.kind: load_sample(case) for case in CASES}
    # The server-defaulted specs name every Secret key (e.g. the keyring's default key).
    defaulted = [
        json.loads(
            cluster.kubectl(
                "create", "--dry-run=server", "-o", "json", "-n", namespace, "-f", "-",
                stdin=yaml.safe_dump(sample),
            ).stdout
        )["spec"]
        for sample in samples.values()
    ]  # fmt: skip
    create_referenced_secrets(cluster, namespace, defaulted)
    for case in CASES:
        cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(samples[case.kind])
        )
    for case in CASES:
        name = samples[case.kind]["metadata"]["name"]
        eventually(
            f"{case.kind}/{name} is reconciled",
            lambda case=case, name=name: reconciled(cluster, namespace, case, name),
            WAIT_SECONDS,
        )
    # An on-demand backup: the operator creates a Job, watches it and lists its pods.
    policy = samples["BackupPolicy"]["metadata"]["name"]
    now = f"{names.ANNOTATION_BACKUP_NOW}={int(time.time())}"
    cluster.kubectl("annotate", "backuppolicy", policy, "-n", namespace, now, "--overwrite")
    eventually(
        "the on-demand backup Job exists",
        lambda: cluster.kubectl_json(
            "get", "jobs", "-n", namespace, "-l", f"{LABEL_POLICY}={policy}"
        )["items"],
        WAIT_SECONDS,
    )
    for case in CASES:
        name = samples[case.kind]["metadata"]["name"]
        before = (get(cluster, namespace, case.plural, name) or {})["metadata"]["generation"]
        patch = json.dumps(case.update)
        cluster.kubectl("patch", case.plural, name, "-n", namespace, "--type=merge", "-p", patch)
        after = (get(cluster, namespace, case.plural, name) or {})["metadata"]["generation"]
        assert after > before, f"the update of {case.kind} must change its spec"
        eventually(
            f"{case.kind}/{name} is reconciled after the update",
            lambda case=case, name=name: reconciled(cluster, namespace, case, name),
            WAIT_SECONDS,
        )
    for case in CASES:
        name = samples[case.kind]["metadata"]["name"]
        assert spec_writers(get(cluster, namespace, case.plural, name) or {}) <= {
            "kubectl-client-side-apply",
            "kubectl-patch",
        }, f"something other than the test's kubectl wrote {case.kind}.spec (GitOps owns spec)"
    for case in CASES:
        name = samples[case.kind]["metadata"]["name"]
        cluster.kubectl("delete", case.plural, name, "-n", namespace, "--wait=false")
    for case in CASES:
        name = samples[case.kind]["metadata"]["name"]
        eventually(
            f"{case.kind}/{name} is finalized and gone",
            lambda case=case, name=name: get(cluster, namespace, case.plural, name) is None,
            WAIT_SECONDS,
        )
    log = chart_rbac_operator.text()
    forbidden = [line for line in log.splitlines() if FORBIDDEN.search(line)]
    assert not forbidden, "the operator hit RBAC denials:\n" + "\n".join(forbidden[:20])
    assert chart_rbac_operator.process.poll() is None, "the operator stopped:\n" + log[-4000:]
