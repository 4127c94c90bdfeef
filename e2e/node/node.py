"""Start and stop one real node: containerd, CNI (bridge), kubelet and kube-proxy on this host.

Called by e2e/node/conftest.py. The node joins a control plane started with an advertised,
non-loopback address (``launcher.Options.advertise_address``) so that pods reach the API server
through the ``kubernetes`` Service. Everything is private to ``state_dir``: containerd's root,
state and socket, the CNI configuration and IPAM data, the kubelet's root. The host-wide
changes are the pod bridge (``BRIDGE``), its routes and kube-proxy's iptables rules for the
service range; ``stop`` removes them (``kube-proxy --cleanup``, bridge deleted).

Order: containerd → images imported → cluster DNS (e2e/node/dns.py, on the node's address) →
kubelet (waits for Node Ready) → kube-proxy. ``stop``
deletes what the kubelet runs first (so CNI tears pod networks down), then stops the daemons and
removes what containers left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from e2e.controlplane import kubeconfig, launcher, pki, processes, readiness, rest
from e2e.node import dns, premises

log = logging.getLogger(__name__)

NODE_NAME = "ragflow-node-0"
POD_SUBNET = "10.244.0.0/24"
"""Inside the control plane's cluster CIDR (``flags.POD_CIDR``)."""
BRIDGE = premises.BRIDGE
NAMESPACE = "k8s.io"
"""containerd namespace the CRI plugin uses."""
PAUSE_IMAGE = "ragflow-node/pause:local"
NODE_READY_SECONDS = 180.0
KUBELET = pki.ClientIdentity("kubelet", f"system:node:{NODE_NAME}", ("system:nodes",))
KUBE_PROXY = pki.ClientIdentity("kube-proxy", "system:kube-proxy")
"""Bound to the ClusterRole system:node-proxier by the API server's default RBAC."""


@dataclass(frozen=True)
class Paths:
    """Where one node keeps its files (all under ``root``)."""

    root: Path

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def containerd_config(paths: Paths) -> str:
    """containerd 1.6 configuration: CRI with runc (cgroupfs), overlayfs, our CNI and pause."""
    # restrict_oom_score_adj: see premises (CAP_SYS_RESOURCE); harmless where the cap exists.
    return f"""\
version = 2
root = "{paths.root / "containerd" / "root"}"
state = "{paths.root / "containerd" / "state"}"
[grpc]
  address = "{paths.containerd_socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  enable_selinux = false
  # Never below containerd's own OOM score: lowering it needs CAP_SYS_RESOURCE (missing here),
  # and runc fails the whole sandbox when it cannot write the kubelet's -998.
  restrict_oom_score_adj = true
  # An image's VOLUME gets no anonymous volume: a pod (read-only root filesystem) can write only
  # where its spec mounts a volume, as on runtimes configured this way; otherwise a Job relying
  # on the runtime image's VOLUME /data would pass here and fail there.
  ignore_image_defined_volumes = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{premises.CNI_BIN_DIR}"
    conf_dir = "{paths.cni_conf_dir}"
"""


def cni_config(paths: Paths) -> dict[str, object]:
    """One bridge network with host-local IPAM; no masquerading (pods only talk inside)."""
    return {
        "cniVersion": "0.4.0",
        "name": "ragflow-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(paths.root / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(
    paths: Paths, ca_cert: Path, port: int, healthz_port: int, dns_ip: str
) -> dict[str, object]:
    """KubeletConfiguration for a shared host: cgroupfs, no OOM score change, no own iptables.

    ``oomScoreAdj: 0``: lowering it needs CAP_SYS_RESOURCE, which this machine's bounding set
    lacks. ``failCgroupV1: false`` lets the kubelet run on cgroup v1 hosts. Hard eviction only
    at nearly full disks, so another process filling the shared disk does not evict test pods.
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "makeIPTablesUtilChains": False,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "podCIDR": POD_SUBNET,
        "maxPods": 60,
        "serializeImagePulls": False,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "clusterDNS": [dns_ip],
        "clusterDomain": dns.CLUSTER_DOMAIN,
        "resolvConf": "",
    }


def kube_proxy_config(kubeconfig_path: Path, healthz_port: int, metrics_port: int) -> str:
    return json.dumps(
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig_path)},
            "mode": "iptables",
            "clusterCIDR": POD_SUBNET,
            "hostnameOverride": NODE_NAME,
            "healthzBindAddress": f"127.0.0.1:{healthz_port}",
            "metricsBindAddress": f"127.0.0.1:{metrics_port}",
            "conntrack": {"maxPerCore": 0},
        }
    )


class RealNode:
    """A kubelet-managed node on this host, joined to ``plane``."""

    def __init__(self, state_dir: Path, plane: launcher.ControlPlane, node_ip: str) -> None:
        info = plane.info
        if info is None:
            raise ValueError("start the control plane before the node")
        self.paths = Paths(state_dir)
        self.plane = plane
        self.node_ip = node_ip
        self.binaries = premises.node_binaries()
        self.handles: list[processes.Handle] = []
        self.admin: rest.Client = plane.admin_client()
        self.dns: dns.ClusterDns | None = None

    def start_dns(self) -> None:
        """The cluster DNS the kubelet gives pods (``clusterDNS``), on the node's address."""
        self.dns = dns.ClusterDns((self.node_ip, 53), self.admin).start()

    # -- start ----------------------------------------------------------------------------------

    def start_containerd(self) -> None:
        paths = self.paths
        paths.containerd_socket.parent.mkdir(parents=True, exist_ok=True)
        config = paths.root / "containerd.toml"
        config.write_text(containerd_config(paths))
        self._launch("containerd", [str(self.binaries["containerd"]), "--config", str(config)])
        readiness.wait_for("containerd socket", paths.containerd_socket.exists, self.handles, 60.0)

    def ctr(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """``ctr`` against this node's containerd, in the CRI namespace."""
        command = ["ctr", "--address", str(self.paths.containerd_socket), "-n", NAMESPACE, *args]
        return subprocess.run(command, input=stdin, capture_output=True, check=True, timeout=900)

    def import_images(self, archive: Path) -> None:
        """Import a ``docker save`` archive; the CRI then finds the images by their names."""
        self.ctr("images", "import", str(archive))

    def start_kubelet(self) -> None:
        info = self.plane.info
        assert info is not None
        certs = pki_paths(info.state_dir)
        pki.issue_client(certs, KUBELET)
        paths = self.paths
        paths.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        (paths.cni_conf_dir / "10-ragflow-node.conflist").write_text(
            json.dumps(cni_config(paths), indent=2)
        )
        node_kubeconfig = kubeconfig.write(
            paths.root / "kubelet.kubeconfig", info.server, certs, KUBELET
        )
        port, healthz = launcher.free_ports(2)
        config = paths.root / "kubelet.yaml"
        settings = kubelet_config(paths, certs.ca_cert, port, healthz, self.node_ip)
        config.write_text(json.dumps(settings))
        self._launch(
            "kubelet",
            [
                str(self.binaries["kubelet"]),
                f"--config={config}",
                f"--kubeconfig={node_kubeconfig}",
                f"--root-dir={paths.kubelet_dir}",
                f"--cert-dir={paths.root / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={self.node_ip}",
                "--v=1",
            ],
        )
        readiness.wait_for(
            f"Node {NODE_NAME} Ready",
            readiness.nodes_ready(self.admin, [NODE_NAME]),
            self.handles,
            NODE_READY_SECONDS,
        )

    def start_kube_proxy(self) -> None:
        info = self.plane.info
        assert info is not None
        certs = pki_paths(info.state_dir)
        pki.issue_client(certs, KUBE_PROXY)
        proxy_kubeconfig = kubeconfig.write(
            self.paths.root / "kube-proxy.kubeconfig", info.server, certs, KUBE_PROXY
        )
        healthz, metrics = launcher.free_ports(2)
        config = self.paths.root / "kube-proxy.json"
        config.write_text(kube_proxy_config(proxy_kubeconfig, healthz, metrics))
        self._launch("kube-proxy", [str(self.binaries["kube-proxy"]), f"--config={config}"])
        readiness.wait_for("kube-proxy /healthz", http_ok(healthz), self.handles, 60.0)

    def _launch(self, name: str, argv: list[str]) -> None:
        self.handles.append(processes.start(name, argv, self.paths.logs, die_with_parent=True))

    # -- stop -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything this node started and remove what it left on the host."""
        by_name = {handle.name: handle for handle in self.handles}
        for name in ("kube-proxy", "kubelet"):
            if name in by_name:
                processes.stop([by_name[name]])
        if "containerd" in by_name:
            self._remove_containers()
            processes.stop([by_name["containerd"]])
        if self.binaries.get("kube-proxy"):
            subprocess.run(
                [str(self.binaries["kube-proxy"]), "--cleanup"], capture_output=True, check=False
            )
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        self._unmount_below(self.paths.root)
        # The imported images (GBs) go too; logs and configuration stay for debugging.
        shutil.rmtree(self.paths.root / "containerd", ignore_errors=True)
        shutil.rmtree(self.paths.kubelet_dir, ignore_errors=True)
        remove_pod_cgroups()
        self.handles.clear()

    def _remove_containers(self) -> None:
        """Kill and delete every task and container the CRI created (shims outlive containerd)."""
        for kind in ("tasks", "containers"):
            listing = subprocess.run(
                ["ctr", "--address", str(self.paths.containerd_socket), "-n", NAMESPACE,
                 kind, "list", "-q"],
                capture_output=True, text=True, check=False, timeout=60,
            )  # fmt: skip
            for container in listing.stdout.split():
                if kind == "tasks":
                    subprocess.run(
                        ["ctr", "--address", str(self.paths.containerd_socket), "-n", NAMESPACE,
                         "tasks", "kill", "-s", "SIGKILL", container],
                        capture_output=True, check=False, timeout=30,
                    )  # fmt: skip
                    time.sleep(0.2)
                    verb = ["tasks", "delete", "-f", container]
                else:
                    verb = ["containers", "delete", container]
                subprocess.run(
                    ["ctr", "--address", str(self.paths.containerd_socket), "-n", NAMESPACE, *verb],
                    capture_output=True, check=False, timeout=30,
                )  # fmt: skip
        for netns in Path("/var/run/netns").glob("cni-*"):
            subprocess.run(["ip", "netns", "delete", netns.name], capture_output=True, check=False)

    @staticmethod
    def _unmount_below(root: Path) -> None:
        """Unmount what the kubelet and containerd mounted under ``root`` (deepest first)."""
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        inside = sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True)
        for mount in inside:
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def http_ok(port: int) -> Callable[[], bool]:
    """Probe that plain-HTTP GET /healthz on a loopback port answers 200 (kube-proxy)."""

    def probe() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)

    return probe


def pki_paths(state_dir: Path) -> pki.Pki:
    """The control plane's certificate files (``launcher`` writes them to ``<state>/pki``)."""
    return pki.Pki.at(state_dir / "pki")


def host_address() -> str:
    """This machine's primary IPv4 address (source of its default route), for the node's IP."""
    route = subprocess.run(
        ["ip", "-4", "-json", "route", "get", "1.1.1.1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return str(json.loads(route.stdout)[0]["prefsrc"])


def remove_pod_cgroups() -> None:
    """Remove the kubelet's (by then empty) ``kubepods`` cgroups, deepest first."""
    roots = [Path("/sys/fs/cgroup")]
    if premises.cgroup_version() == 1:
        roots = [path for path in Path("/sys/fs/cgroup").iterdir() if path.is_dir()]
    for root in roots:
        pods = root / "kubepods"
        if pods.is_dir():
            nested = sorted(pods.rglob("*"), key=lambda p: len(p.parts), reverse=True)
            for directory in [*nested, pods]:
                if directory.is_dir():
                    with contextlib.suppress(OSError):  # still in use: the kernel keeps it
                        directory.rmdir()
