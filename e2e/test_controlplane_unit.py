"""Fast checks of the control-plane launcher's parts that need no running cluster:
binary lookup and its error messages, certificates, kubeconfigs, command lines, PID safety.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from e2e.controlplane import assets, flags, kubeconfig, pki, processes
from e2e.controlplane.cluster import Cluster
from e2e.controlplane.pytest_plugin import namespace_name

REPO = Path(__file__).resolve().parent.parent


def make_executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_go_module_pins_the_kubernetes_version_the_launcher_expects() -> None:
    go_mod = (REPO / "e2e/controlplane/kube/go.mod").read_text()
    assert f"require k8s.io/kubernetes {assets.KUBERNETES_VERSION}\n" in go_mod
    minor = assets.KUBERNETES_VERSION.removeprefix("v1.")
    staging = re.findall(r"^\s+(k8s\.io/\S+) => \1 (v\S+)$", go_mod, flags=re.MULTILINE)
    assert len(staging) > 20
    assert {version for _, version in staging} == {f"v0.{minor}"}


def test_etcd_module_pins_the_etcd_version_the_launcher_expects() -> None:
    go_mod = (REPO / "e2e/controlplane/etcd/go.mod").read_text()
    assert f"require go.etcd.io/etcd/server/v3 {assets.ETCD_VERSION}\n" in go_mod


def test_cache_folders_are_keyed_by_version_under_ragflow_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGFLOW_CACHE", str(tmp_path))
    assert assets.kubernetes_bin_dir() == tmp_path / "controlplane" / "k8s-v1.34.4"
    assert assets.kwok_bin_dir() == tmp_path / "controlplane" / "kwok-v0.7.0"
    assert assets.etcd_bin_dir() == tmp_path / "controlplane" / "etcd-v3.6.4"


def test_missing_binaries_are_listed_with_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGFLOW_CACHE", str(tmp_path))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    with pytest.raises(assets.AssetMissingError) as missing:
        assets.find_binaries()
    message = str(missing.value)
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
        assert name in message
    assert "make controlplane" in message
    assert "KUBEBUILDER_ASSETS" in message


def test_kubebuilder_assets_win_over_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    names = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    for name in names:
        make_executable(prebuilt / name)
    monkeypatch.setenv("RAGFLOW_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(prebuilt))
    found = assets.find_binaries().as_dict()
    assert found == {name: str(prebuilt / name) for name in names}


def test_pki_signs_serving_and_client_certificates_with_the_cluster_ca(tmp_path: Path) -> None:
    certs = pki.generate(tmp_path / "pki", flags.SERVICE_IP)
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    serving = x509.load_pem_x509_certificate(certs.serving_cert.read_bytes())
    serving.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address(flags.SERVICE_IP) in sans.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)

    admin = x509.load_pem_x509_certificate(certs.client_cert(pki.ADMIN).read_bytes())
    admin.verify_directly_issued_by(ca)
    groups = [
        attr.value for attr in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    assert groups == ["system:masters"]
    usages = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for key in (certs.ca_key, certs.sa_private_key, certs.client_key(pki.ADMIN)):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_kubeconfig_embeds_the_identity_and_points_at_the_server(tmp_path: Path) -> None:
    certs = pki.generate(tmp_path / "pki", flags.SERVICE_IP)
    path = kubeconfig.write(tmp_path / "k.yaml", "https://127.0.0.1:6443", certs, pki.SCHEDULER)
    document = yaml.safe_load(path.read_text())
    user = document["users"][0]["user"]
    assert (
        base64.b64decode(user["client-certificate-data"])
        == certs.client_cert(pki.SCHEDULER).read_bytes()
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cluster = Cluster.from_kubeconfig(path)
    assert cluster.server == "https://127.0.0.1:6443"
    assert not cluster.is_local
    with pytest.raises(RuntimeError, match="only available on the local control plane"):
        cluster.audit_offset()


def test_apiserver_command_line_enables_rbac_admission_and_write_auditing(tmp_path: Path) -> None:
    binaries = assets.Binaries(*(Path(f"/bin/{name}") for name in "abcde"))
    certs = pki.generate(tmp_path / "pki", flags.SERVICE_IP)
    layout = flags.Layout(tmp_path, flags.Ports(1, 2, 3, 4, 5), certs, binaries)
    argv = flags.kube_apiserver(layout)
    assert "--authorization-mode=Node,RBAC" in argv
    assert "--bind-address=127.0.0.1" in argv
    assert f"--audit-log-path={layout.audit_log}" in argv
    assert not any(arg.startswith("--disable-admission-plugins") for arg in argv)
    policy = yaml.safe_load(flags.AUDIT_POLICY)
    assert policy["rules"][0] == {"level": "Metadata", "verbs": list(flags.WRITE_VERBS)}
    assert policy["rules"][-1] == {"level": "None"}
    assert "--controllers=*" in flags.kube_controller_manager(layout)
    kwok = flags.kwok(layout)
    assert "--manage-all-nodes=false" in kwok
    node = flags.fake_node("kwok-node-0", 0)
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"  # type: ignore[index]


def test_stop_signals_only_the_process_that_was_started(tmp_path: Path) -> None:
    handle = processes.start(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path
    )
    impostor = processes.Handle("sleeper", handle.pid, handle.start_ticks + 1, handle.log)
    try:
        assert processes.is_running(handle)
        assert not processes.is_running(impostor)
        processes.stop([impostor], grace_seconds=0.5)
        assert processes.is_running(handle), "a recycled PID must never be signalled"
        current, peak = processes.rss_bytes(handle)
        assert 0 < current <= peak
    finally:
        processes.stop([handle], grace_seconds=5)
    assert not processes.is_running(handle)
    assert processes.rss_bytes(handle) == (0, 0)


def test_namespace_names_are_valid_unique_dns_labels() -> None:
    long_name = "test_something[param-" + "x" * 80 + "]"
    names = {namespace_name(long_name) for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert len(name) <= 63
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


def test_cli_reports_a_missing_binary_with_instructions(tmp_path: Path) -> None:
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "RAGFLOW_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(
        [sys.executable, "-m", "e2e.controlplane", "up", "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "make controlplane" in result.stderr
    assert not (tmp_path / "s" / "state.json").exists()


STARTER = """
import sys
import time
from pathlib import Path
from e2e.controlplane import processes
handle = processes.start(
    "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], Path(sys.argv[1]),
    die_with_parent=sys.argv[2] == "attached",
)
print(handle.pid, handle.start_ticks, flush=True)
"""


@pytest.mark.parametrize("mode", ["attached", "detached"])
def test_attached_components_die_with_their_starter_and_detached_ones_survive(
    tmp_path: Path, mode: str
) -> None:
    started = subprocess.run(
        [sys.executable, "-c", STARTER, str(tmp_path), mode],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=True,
    )
    pid, ticks = (int(value) for value in started.stdout.split())
    handle = processes.Handle("sleeper", pid, ticks, str(tmp_path / "sleeper.log"))
    try:
        deadline = time.monotonic() + (5 if mode == "attached" else 1)
        while processes.is_running(handle) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes.is_running(handle) == (mode == "detached")
    finally:
        processes.stop([handle], grace_seconds=2)
