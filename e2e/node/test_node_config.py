"""The real node's configuration, checked as data (runs everywhere: nothing is started).

The API server reachable from pods only when asked, its certificate valid for that address, a
kubelet certificate the Node authorizer accepts, and the node daemons' settings that this
machine needs (no OOM score below containerd's own, cgroupfs, cgroup v1 accepted, our DNS).
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path

import pytest
from cryptography import x509

from e2e.controlplane import assets, flags, pki
from e2e.node import node, premises


def layout(tmp_path: Path, extra_ips: tuple[str, ...] = ()) -> flags.Layout:
    binaries = assets.Binaries(*(Path(f"/bin/{name}") for name in "abcde"))
    certs = pki.generate(tmp_path / "pki", flags.SERVICE_IP, extra_ips)
    return flags.Layout(tmp_path, flags.Ports(1, 2, 3, 4, 5), certs, binaries)


def test_api_server_listens_beyond_loopback_only_when_an_address_is_advertised(
    tmp_path: Path,
) -> None:
    default = flags.kube_apiserver(layout(tmp_path / "a"))
    assert "--bind-address=127.0.0.1" in default and "--advertise-address=127.0.0.1" in default
    assert not any(arg.startswith("--kubelet-client") for arg in default)
    real = flags.kube_apiserver(layout(tmp_path / "b", ("192.0.2.2",)), "192.0.2.2")
    assert "--bind-address=0.0.0.0" in real and "--advertise-address=192.0.2.2" in real
    assert any(arg.startswith("--kubelet-client-certificate=") for arg in real)
    assert "--kubelet-preferred-address-types=InternalIP,Hostname" in real


def test_serving_certificate_covers_the_advertised_address(tmp_path: Path) -> None:
    certs = layout(tmp_path, ("192.0.2.2",)).certs
    cert = x509.load_pem_x509_certificate(certs.serving_cert.read_bytes())
    ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = {str(ip) for ip in ips.get_values_for_type(x509.IPAddress)}
    assert {"127.0.0.1", flags.SERVICE_IP, "192.0.2.2"} <= addresses


def test_kubelet_certificate_is_a_node_identity_signed_by_the_cluster_ca(tmp_path: Path) -> None:
    certs = layout(tmp_path).certs
    pki.issue_client(certs, node.KUBELET)
    cert = x509.load_pem_x509_certificate(certs.client_cert(node.KUBELET).read_bytes())
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    assert cert.issuer == ca.subject
    subject = cert.subject.rfc4514_string()
    assert f"CN=system:node:{node.NODE_NAME}" in subject and "O=system:nodes" in subject
    cert.verify_directly_issued_by(ca)


def test_daemon_settings_fit_a_shared_host_without_cap_sys_resource(tmp_path: Path) -> None:
    paths = node.Paths(tmp_path)
    containerd = tomllib.loads(node.containerd_config(paths))
    cri = containerd["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["ignore_image_defined_volumes"] is True  # pods write only to their own volumes
    assert cri["sandbox_image"] == node.PAUSE_IMAGE
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    assert runc["SystemdCgroup"] is False
    assert cri["cni"]["conf_dir"] == str(paths.cni_conf_dir)
    assert containerd["grpc"]["address"] == str(paths.containerd_socket)

    kubelet = node.kubelet_config(paths, tmp_path / "ca.crt", 10250, 10248, "192.0.2.2")
    assert kubelet["oomScoreAdj"] == 0 and kubelet["failCgroupV1"] is False
    assert kubelet["cgroupDriver"] == "cgroupfs" and kubelet["readOnlyPort"] == 0
    assert kubelet["clusterDNS"] == ["192.0.2.2"]
    assert kubelet["authorization"] == {"mode": "Webhook"}

    network = node.cni_config(paths)
    bridge = network["plugins"][0]  # type: ignore[index]
    assert bridge["bridge"] == node.BRIDGE and bridge["ipMasq"] is False
    subnet = ipaddress.ip_network(bridge["ipam"]["ranges"][0][0]["subnet"])
    assert subnet.subnet_of(ipaddress.ip_network(flags.POD_CIDR))
    proxy = json.loads(node.kube_proxy_config(tmp_path / "kubeconfig", 1, 2))
    assert proxy["mode"] == "iptables" and proxy["conntrack"] == {"maxPerCore": 0}


def test_premises_name_the_missing_binary_and_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(premises.os, "geteuid", lambda: 0)
    found = {name: Path(f"/bin/{name}") for name in ("kubelet", "containerd", "runc")}
    monkeypatch.setattr(premises, "node_binaries", lambda: {**found, "kube-proxy": None})
    assert premises.why_not() == (
        "kube-proxy is missing: scripts/install.d/60-containers.sh (make install) installs it"
    )
    monkeypatch.setattr(premises.os, "geteuid", lambda: 1000)
    assert premises.why_not().startswith("a real node needs root")  # type: ignore[union-attr]


def test_runtime_tier_names_its_switch_and_the_disk_it_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(premises.RUNTIME_TIER_ENV, "0")
    assert premises.why_not_runtime(tmp_path) == (
        "RAGFLOW_E2E_NODE_RUNTIME=0: the RagFlowCluster tests on real pods are switched off"
    )
    monkeypatch.delenv(premises.RUNTIME_TIER_ENV)
    monkeypatch.setattr(premises, "RUNTIME_DISK_BYTES", 10**18)
    reason = premises.why_not_runtime(tmp_path)
    assert reason is not None and reason.startswith("the runtime image needs 1000000000 GB free")
