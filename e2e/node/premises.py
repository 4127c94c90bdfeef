"""Whether this machine can run a real node, and if not, exactly why (the tests' skip reason).

Checked before anything starts: root, the binaries (scripts/install.d/60-containers.sh installs
or builds them), the kernel's overlay filesystem and bridge netfilter, and the cgroup controllers
the kubelet requires. cgroup v1 is accepted: Kubernetes 1.34 (the control plane's version)
still runs on it (``failCgroupV1: false``); from 1.35 the kubelet refuses it by default.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from e2e.controlplane import assets

CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
CGROUP_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids")
BRIDGE = "rfnode0"
"""The pod bridge (e2e/node/node.py uses this name)."""
INSTALL_HINT = "scripts/install.d/60-containers.sh (make install) installs it"


def node_binaries() -> dict[str, Path | None]:
    """kubelet and kube-proxy (next to the control plane's binaries), containerd, runc, docker."""
    k8s_dir = assets.kubernetes_bin_dir()
    found: dict[str, Path | None] = {
        name: (k8s_dir / name if (k8s_dir / name).is_file() else None)
        for name in ("kubelet", "kube-proxy")
    }
    for name in ("containerd", "runc", "iptables"):
        located = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        found[name] = Path(located) if located else None
    found["dockerd"] = Path("/usr/sbin/dockerd") if Path("/usr/sbin/dockerd").is_file() else None
    return found


def cgroup_version() -> int:
    return 2 if Path("/sys/fs/cgroup/cgroup.controllers").is_file() else 1


def missing_cgroup_controllers() -> list[str]:
    if cgroup_version() == 2:
        available = Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
        return [name for name in CGROUP_CONTROLLERS if name not in available and name != "cpuacct"]
    return [name for name in CGROUP_CONTROLLERS if not Path("/sys/fs/cgroup", name).is_dir()]


RUNTIME_TIER_ENV = "RAGFLOW_E2E_NODE_RUNTIME"
RUNTIME_DISK_BYTES = 30 * 10**9
"""The runtime image (7.2 GB with PyPI's CUDA torch) exists three times at once while it moves
into the node: in the Docker engine, as the `docker save` archive and in containerd (measured peak
of containerd's root with all images: 20 GB)."""


def why_not_runtime(work: Path) -> str | None:
    """None when the RagFlowCluster tests (runtime image) can run, else why not."""
    if os.environ.get(RUNTIME_TIER_ENV, "1") == "0":
        return f"{RUNTIME_TIER_ENV}=0: the RagFlowCluster tests on real pods are switched off"
    free = shutil.disk_usage(work).free
    if free < RUNTIME_DISK_BYTES:
        return (
            f"the runtime image needs {RUNTIME_DISK_BYTES / 1e9:.0f} GB free under {work} "
            f"(engine, archive and containerd copies); {free / 1e9:.1f} GB free"
        )
    return None


def why_not() -> str | None:
    """None when a real node can run here, else the first reason it cannot."""
    if os.geteuid() != 0:
        return "a real node needs root (containerd, runc, network namespaces, iptables)"
    for name, path in node_binaries().items():
        if path is None:
            return f"{name} is missing: {INSTALL_HINT}"
    for plugin in CNI_PLUGINS:
        if not (CNI_BIN_DIR / plugin).is_file():
            return f"CNI plugin {CNI_BIN_DIR / plugin} is missing: {INSTALL_HINT}"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlay filesystem (containerd's overlayfs snapshotter)"
    if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        return "bridge netfilter (br_netfilter) is unavailable: Services cannot reach pods"
    missing = missing_cgroup_controllers()
    if missing:
        return f"cgroup controllers missing for the kubelet: {', '.join(missing)}"
    if Path("/sys/class/net", BRIDGE).exists():
        return f"another real node runs on this machine (its pod bridge {BRIDGE} exists)"
    return None


def dns_port_taken(address: str) -> str | None:
    """Why the cluster DNS cannot listen on ``address``:53 (UDP), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 53))
        except OSError as error:
            return f"the cluster DNS cannot listen on {address}:53 ({error.strerror})"
    return None
