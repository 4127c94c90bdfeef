"""Fixtures of the real-node tier: one control plane with one real node for this package.

Package-scoped: the node, its control plane and everything they run are gone before the rest of
the suite (e2e/test_*.py) starts.

``node_cluster`` skips every test of this folder with the exact reason when the machine cannot
run a node (``premises.why_not``) or build the images; otherwise it builds or reuses the images
(the private Docker engine keeps them between runs), starts a control plane whose API server
pods can reach, joins a real node and imports the images into its containerd.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from e2e.controlplane import launcher
from e2e.controlplane.cluster import Cluster
from e2e.node import images, node, premises


@dataclass
class NodeCluster:
    """What the tests get: the cluster, the node and the images imported into it."""

    cluster: Cluster
    node: node.RealNode
    work: Path
    images: dict[str, str] = field(default_factory=dict)
    """Role → image reference: pause, postgres, redis, milvus, base; operator and runtime once
    ``load_project_images`` ran."""
    seconds: dict[str, float] = field(default_factory=dict)

    def load_project_images(self) -> None:
        """Build the operator and runtime images from this checkout, export and import them.

        Always built, never reused by name: an image left by an earlier checkout would test old
        code. The engine's layer cache keeps an unchanged build to seconds and a source-only
        change to the layers after ``COPY`` (the dependency layers come from pyproject.toml and
        constraints.txt alone)."""
        if {"operator", "runtime"} <= self.images.keys():
            return
        operator, runtime = images.project_images()
        with images.docker_engine() as env:
            clock = time.monotonic()
            images.build_project_images(env, ["operator", "runtime"])
            self.seconds["make images"] = time.monotonic() - clock
            self._transfer(env, [operator, runtime])
        self.images |= {"operator": operator, "runtime": runtime}

    def _transfer(self, env: dict[str, str], refs: list[str]) -> None:
        clock = time.monotonic()
        archive = images.save(env, refs, self.work / "images.tar")
        self.seconds["docker save " + " ".join(refs)] = time.monotonic() - clock
        clock = time.monotonic()
        self.node.import_images(archive)
        self.seconds["ctr import " + " ".join(refs)] = time.monotonic() - clock
        archive.unlink()


@pytest.fixture(scope="package")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    reason = premises.why_not() or premises.dns_port_taken(node.host_address())
    if reason:
        pytest.skip(f"real node unavailable: {reason}")
    work = tmp_path_factory.mktemp("real-node")
    plane = launcher.ControlPlane(
        work / "controlplane",
        launcher.Options(nodes=0, advertise_address=node.host_address()),
    )
    plane.start()
    real = node.RealNode(work / "node", plane, node.host_address())
    try:
        real.start_containerd()
        state = NodeCluster(Cluster.from_control_plane(plane), real, work)
        with images.docker_engine() as env:
            names = images.build_node_images(env) | {"base": base_image(env)}
            state._transfer(env, sorted(set(names.values())))
        state.images |= names
        real.start_dns()
        real.start_kubelet()
        real.start_kube_proxy()
        yield state
        _summary.append(f"real node: {json.dumps(state.seconds)}")
    finally:
        delete_workloads(plane)
        real.stop()
        plane.stop(keep_state=True)


_summary: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _summary:
        terminalreporter.write_line(line)


def base_image(env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", str(images.SCRIPTS / "base.sh")], env=env, capture_output=True, text=True
    )
    return result.stdout.strip()


def delete_workloads(plane: launcher.ControlPlane) -> None:
    """Delete every test namespace and wait (bounded) until the kubelet has removed its pods,
    so the pods' networks are torn down by CNI before the node stops."""
    if plane.info is None:
        return
    cluster = Cluster.from_control_plane(plane)
    listing = json.loads(cluster.kubectl("get", "namespaces", "-o", "json").stdout)
    system = {"default", "kube-system", "kube-public", "kube-node-lease"}
    for item in listing["items"]:
        name = item["metadata"]["name"]
        if name not in system:
            cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = cluster.kubectl("get", "pods", "-A", "-o", "name", check=False).stdout.split()
        if not pods:
            return
        time.sleep(1)


@pytest.fixture
def node_namespace(node_cluster: NodeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard."""
    from e2e.controlplane.pytest_plugin import namespace_name

    name = namespace_name(request.node.name)
    cluster = node_cluster.cluster
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl(
        "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted", "--overwrite"
    )
    deadline = time.monotonic() + 30
    while cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode:
        if time.monotonic() > deadline:
            raise TimeoutError(f"ServiceAccount default never appeared in namespace {name}")
        time.sleep(0.2)
    yield name


def node_logs(node_cluster: NodeCluster) -> str:
    """The last lines of the node's daemons' logs, for failure messages."""
    parts = []
    for handle in node_cluster.node.handles:
        text = Path(handle.log).read_text(errors="replace").splitlines()[-30:]
        parts.append(f"--- {handle.name} ({handle.log})\n" + "\n".join(text))
    return "\n".join(parts)
