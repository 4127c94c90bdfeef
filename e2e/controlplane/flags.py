"""Command lines of etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

Pure functions from a ``Layout`` (ports and file paths) to argv lists; called by ``launcher`` and
unit-tested without starting anything. The audit policy also lives here: it logs every write
(create, update, patch, delete, deletecollection) at Metadata level and nothing else, so tests can
count the writes a controller makes (for example none on a no-op resync).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from e2e.controlplane import pki
from e2e.controlplane.assets import Binaries

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_ANNOTATION_VALUE = "fake"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")

AUDIT_POLICY = f"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: [{", ".join(WRITE_VERBS)}]
  - level: None
"""


@dataclass(frozen=True)
class Ports:
    """Loopback ports of one control plane (all chosen free at start)."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


@dataclass(frozen=True)
class Layout:
    """Where one control plane keeps its files, and how its components reach each other."""

    state_dir: Path
    ports: Ports
    certs: pki.Pki
    binaries: Binaries

    @property
    def etcd_data_dir(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.etcd_client}"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def audit_policy(self) -> Path:
        return self.state_dir / "audit-policy.yaml"

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "logs" / "audit.log"

    def kubeconfig(self, identity: pki.ClientIdentity) -> Path:
        return self.state_dir / f"{identity.file_stem}.kubeconfig"

    def serving_dir(self, component: str) -> Path:
        return self.state_dir / "serving" / component


def etcd(layout: Layout) -> list[str]:
    """Single-member etcd on loopback; fsync off because the data is thrown away anyway."""
    return [
        str(layout.binaries.etcd),
        "--name=ragflow-local",
        f"--data-dir={layout.etcd_data_dir}",
        f"--listen-client-urls={layout.etcd_url}",
        f"--advertise-client-urls={layout.etcd_url}",
        f"--listen-peer-urls=http://127.0.0.1:{layout.ports.etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{layout.ports.etcd_peer}",
        f"--initial-cluster=ragflow-local=http://127.0.0.1:{layout.ports.etcd_peer}",
        "--unsafe-no-fsync",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
    ]


def kube_apiserver(layout: Layout, advertise_address: str | None = None) -> list[str]:
    """API server with RBAC, the default admission chain (PodSecurity included) and auditing.

    Loopback only, unless ``advertise_address`` is given: then it listens on every address and
    the ``kubernetes`` Service points there, so pods on a real node reach it, and it calls
    kubelets (logs, exec) with the admin client certificate (e2e/node).
    """
    certs = layout.certs
    kubelet_client = (
        [
            f"--kubelet-client-certificate={certs.client_cert(pki.ADMIN)}",
            f"--kubelet-client-key={certs.client_key(pki.ADMIN)}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ]
        if advertise_address
        else []
    )
    return [
        str(layout.binaries.kube_apiserver),
        f"--etcd-servers={layout.etcd_url}",
        f"--bind-address={'0.0.0.0' if advertise_address else '127.0.0.1'}",
        f"--advertise-address={advertise_address or '127.0.0.1'}",
        f"--secure-port={layout.ports.apiserver}",
        f"--cert-dir={layout.serving_dir('kube-apiserver')}",
        f"--tls-cert-file={certs.serving_cert}",
        f"--tls-private-key-file={certs.serving_key}",
        f"--client-ca-file={certs.ca_cert}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={certs.sa_public_key}",
        f"--service-account-signing-key-file={certs.sa_private_key}",
        f"--audit-policy-file={layout.audit_policy}",
        f"--audit-log-path={layout.audit_log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--audit-log-maxbackup=1",
        "--audit-log-maxsize=100",
        "--profiling=false",
        *kubelet_client,
        "--v=1",
    ]


def kube_controller_manager(layout: Layout) -> list[str]:
    """All default controllers (GC, Deployment, ReplicaSet, Job, CronJob, HPA, namespace...)."""
    certs = layout.certs
    kubeconfig = layout.kubeconfig(pki.CONTROLLER_MANAGER)
    return [
        str(layout.binaries.kube_controller_manager),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={layout.ports.controller_manager}",
        f"--cert-dir={layout.serving_dir('kube-controller-manager')}",
        "--controllers=*",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={certs.sa_private_key}",
        f"--root-ca-file={certs.ca_cert}",
        f"--cluster-signing-cert-file={certs.ca_cert}",
        f"--cluster-signing-key-file={certs.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--cluster-cidr={POD_CIDR}",
        "--leader-elect=false",
        "--horizontal-pod-autoscaler-sync-period=5s",
        "--enable-hostpath-provisioner=true",
        "--profiling=false",
        "--v=1",
    ]


def kube_scheduler(layout: Layout) -> list[str]:
    """Default scheduler profile; leader election off (one instance)."""
    kubeconfig = layout.kubeconfig(pki.SCHEDULER)
    return [
        str(layout.binaries.kube_scheduler),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={layout.ports.scheduler}",
        f"--cert-dir={layout.serving_dir('kube-scheduler')}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def kwok(layout: Layout) -> list[str]:
    """kwok managing the annotated fake nodes with its default (fast) node and pod stages."""
    return [
        str(layout.binaries.kwok),
        f"--kubeconfig={layout.kubeconfig(pki.KWOK)}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}={KWOK_NODE_ANNOTATION_VALUE}",
        f"--cidr={POD_CIDR}",
        "--node-ip=127.0.0.1",
        "--node-lease-duration-seconds=40",
    ]


DEFAULT_STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    # The controller-manager's built-in development provisioner (--enable-hostpath-provisioner):
    # it creates /tmp/hostpath_pv/<uuid> and deletes it with the claim, so PVCs bind and
    # StatefulSets with volumeClaimTemplates get scheduled onto the kwok nodes.
    "provisioner": "kubernetes.io/host-path",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
}

ZONES = ("local-a", "local-b", "local-c")


def fake_node(name: str, index: int) -> dict[str, object]:
    """A Node kwok adopts (by annotation): room for plenty of Pods, no taints, zones round-robin."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_NODE_ANNOTATION: KWOK_NODE_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "topology.kubernetes.io/zone": ZONES[index % len(ZONES)],
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }
