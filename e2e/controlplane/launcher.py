"""Start and stop one local Kubernetes control plane: etcd, API server, controllers, kwok nodes.

Called by the CLI (``python -m e2e.controlplane up|down|status``), the pytest plugin's ``cluster``
fixture and the start-time benchmark. ``ControlPlane.start`` runs, in order: certificates →
etcd → kube-apiserver (waits for ``/readyz``) → kube-controller-manager, kube-scheduler and kwok
together → fake Nodes (waits until kwok reports them Ready, the controllers' and scheduler's
``/healthz`` answer, and the ServiceAccount controller has created ``default/default``). It writes
``<state>/state.json`` (PIDs, ports, paths) so another process can ``attach`` and ``stop`` it; stop
signals only the PIDs it started. If start-up fails, everything already started is stopped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from e2e.controlplane import assets, flags, kubeconfig, pki, processes, readiness, rest

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


@dataclass(frozen=True)
class Options:
    """What to start: node count, deadlines."""

    nodes: int = 3
    """Fake nodes kwok manages (enough for topology spread and PDB tests)."""
    apiserver_timeout_seconds: float = 90.0
    """The API server needs ~5 s on an idle laptop; two busy shared cores can take far longer."""
    components_timeout_seconds: float = 90.0
    """Controller-manager, scheduler, kwok and the nodes becoming Ready."""
    advertise_address: str | None = None
    """A non-loopback address of this machine for the API server to listen on and advertise in
    the ``kubernetes`` Service; only the real-node tier (e2e/node) sets it. None: loopback only."""
    detached: bool = False
    """Keep running after the starting process exits (``up --detach``); otherwise the kernel
    stops every component when the starter dies, so a killed test run leaves nothing behind."""


@dataclass(frozen=True)
class Info:
    """What a running control plane offers to clients."""

    state_dir: Path
    server: str
    kubeconfig: Path
    audit_log: Path
    handles: tuple[processes.Handle, ...]
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "audit_log": str(self.audit_log),
            "handles": [handle.to_dict() for handle in self.handles],
            "phase_seconds": self.phase_seconds,
        }

    @classmethod
    def load(cls, state_dir: Path) -> Info:
        raw = json.loads((state_dir / STATE_FILE).read_text())
        return cls(
            state_dir=state_dir,
            server=raw["server"],
            kubeconfig=Path(raw["kubeconfig"]),
            audit_log=Path(raw["audit_log"]),
            handles=tuple(processes.Handle.from_dict(item) for item in raw["handles"]),
            phase_seconds={key: float(value) for key, value in raw["phase_seconds"].items()},
        )


@dataclass(frozen=True)
class MemoryUsage:
    """Resident memory of the control-plane processes, in bytes."""

    current_total: int
    peak_total: int
    """Sum of each process's own peak (VmHWM): an upper bound of the simultaneous peak."""
    per_component: dict[str, tuple[int, int]]


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (sockets held together)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


PORT_ATTEMPTS = 3
"""Ports are chosen free, then bound by the components a moment later; another process may win
that race (tests of other areas start servers too), so a start is retried with fresh ports."""
PORT_TAKEN = "address already in use"

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

STOP_ORDER = (
    ("kwok", "kube-scheduler", "kube-controller-manager"),
    ("kube-apiserver",),
    ("etcd",),
)
"""Clients first, etcd last: an API server whose etcd is gone hangs in its shutdown."""


def stop_components(handles: Sequence[processes.Handle]) -> None:
    """Stop the given components group by group in ``STOP_ORDER``."""
    by_name = {handle.name: handle for handle in handles}
    for group in STOP_ORDER:
        processes.stop([by_name[name] for name in group if name in by_name])


def node_names(count: int) -> list[str]:
    return [f"kwok-node-{index}" for index in range(count)]


class ControlPlane:
    """One control plane rooted at ``state_dir`` (a folder it owns entirely)."""

    def __init__(self, state_dir: Path, options: Options | None = None) -> None:
        self.state_dir = state_dir
        self.options = options or Options()
        self.info: Info | None = None

    @classmethod
    def attach(cls, state_dir: Path) -> ControlPlane:
        """A handle on a control plane another process started (reads ``state.json``)."""
        plane = cls(state_dir)
        plane.info = Info.load(state_dir)
        return plane

    def admin_client(self) -> rest.Client:
        info = self._require_info()
        certs_dir = info.state_dir / "pki"
        return rest.Client(
            server=info.server,
            ca_cert=certs_dir / "ca.crt",
            client_cert=certs_dir / f"{pki.ADMIN.file_stem}.crt",
            client_key=certs_dir / f"{pki.ADMIN.file_stem}.key",
        )

    def _require_info(self) -> Info:
        if self.info is None:
            raise readiness.ControlPlaneError(f"no control plane started in {self.state_dir}")
        return self.info

    def start(self) -> Info:
        """Start every component and wait until the cluster can run workloads."""
        if (self.state_dir / STATE_FILE).exists():
            raise readiness.ControlPlaneError(
                f"{self.state_dir} already holds a control plane; stop it first (`down`)"
            )
        binaries = assets.find_binaries()
        clock = time.monotonic()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.state_dir.mkdir(parents=True, exist_ok=True)
            phases: dict[str, float] = {}
            handles: list[processes.Handle] = []
            try:
                layout = self._prepare(binaries)
                phases["prepare"] = time.monotonic() - clock
                self._start_chain(layout, handles, phases)
                break
            except readiness.ControlPlaneError as error:
                stop_components(handles)
                if PORT_TAKEN not in str(error) or attempt == PORT_ATTEMPTS:
                    raise
                log.warning("a port was taken between choosing and binding it; retrying")
                shutil.rmtree(self.state_dir, ignore_errors=True)
            except BaseException:
                stop_components(handles)
                raise
        phases["total"] = time.monotonic() - clock
        self.info = Info(
            state_dir=self.state_dir,
            server=layout.server,
            kubeconfig=layout.kubeconfig(pki.ADMIN),
            audit_log=layout.audit_log,
            handles=tuple(handles),
            phase_seconds=phases,
        )
        (self.state_dir / STATE_FILE).write_text(json.dumps(self.info.to_dict(), indent=2))
        log.info("control plane ready", extra={"server": layout.server, "seconds": phases})
        return self.info

    def _prepare(self, binaries: assets.Binaries) -> flags.Layout:
        ports = flags.Ports(*free_ports(5))
        extra_ips = (self.options.advertise_address,) if self.options.advertise_address else ()
        certs = pki.generate(self.state_dir / "pki", flags.SERVICE_IP, extra_ips)
        layout = flags.Layout(self.state_dir, ports, certs, binaries)
        layout.audit_log.parent.mkdir(parents=True, exist_ok=True)
        layout.audit_policy.write_text(flags.AUDIT_POLICY)
        for identity in pki.CLIENTS:
            kubeconfig.write(layout.kubeconfig(identity), layout.server, certs, identity)
        return layout

    def _start_chain(
        self, layout: flags.Layout, handles: list[processes.Handle], phases: dict[str, float]
    ) -> None:
        logs = self.state_dir / "logs"
        options = self.options

        def launch(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
            handles.append(
                processes.start(name, argv, logs, env=env, die_with_parent=not options.detached)
            )

        launch("etcd", flags.etcd(layout))
        phases["etcd"] = readiness.wait_for(
            "etcd /health", readiness.etcd_healthy(layout.etcd_url), handles, 30.0
        )

        launch("kube-apiserver", flags.kube_apiserver(layout, options.advertise_address))
        admin = rest.Client(
            layout.server,
            layout.certs.ca_cert,
            layout.certs.client_cert(pki.ADMIN),
            layout.certs.client_key(pki.ADMIN),
        )
        phases["kube-apiserver"] = readiness.wait_for(
            "kube-apiserver /readyz",
            readiness.answers_ok(admin, "/readyz"),
            handles,
            options.apiserver_timeout_seconds,
        )

        admin.json("POST", "/apis/storage.k8s.io/v1/storageclasses", flags.DEFAULT_STORAGE_CLASS)
        clock = time.monotonic()
        kwok_env = {**os.environ, "KWOK_WORKDIR": str(self.state_dir / "kwok")}
        launch("kube-controller-manager", flags.kube_controller_manager(layout))
        launch("kube-scheduler", flags.kube_scheduler(layout))
        launch("kwok", flags.kwok(layout), env=kwok_env)
        names = node_names(options.nodes)
        for index, name in enumerate(names):
            admin.json("POST", "/api/v1/nodes", flags.fake_node(name, index))
        timeout = options.components_timeout_seconds
        checks = {
            "kube-controller-manager /healthz": readiness.answers_ok(
                rest.Client(f"https://127.0.0.1:{layout.ports.controller_manager}", None),
                "/healthz",
            ),
            "kube-scheduler /healthz": readiness.answers_ok(
                rest.Client(f"https://127.0.0.1:{layout.ports.scheduler}", None), "/healthz"
            ),
            f"{len(names)} kwok nodes Ready": readiness.nodes_ready(admin, names),
            "ServiceAccount default/default": readiness.answers_ok(
                admin, "/api/v1/namespaces/default/serviceaccounts/default"
            ),
        }
        for what, probe in checks.items():
            readiness.wait_for(what, probe, handles, timeout)
        phases["components"] = time.monotonic() - clock

    def is_healthy(self) -> bool:
        """All processes alive and the API server answers ``/readyz``."""
        info = self._require_info()
        if not all(processes.is_running(handle) for handle in info.handles):
            return False
        try:
            return readiness.answers_ok(self.admin_client(), "/readyz")()
        except (OSError, rest.ApiError):
            return False

    def memory(self) -> MemoryUsage:
        """Current and peak resident memory of every component."""
        info = self._require_info()
        per_component = {handle.name: processes.rss_bytes(handle) for handle in info.handles}
        return MemoryUsage(
            current_total=sum(current for current, _ in per_component.values()),
            peak_total=sum(peak for _, peak in per_component.values()),
            per_component=per_component,
        )

    def stop(self, keep_state: bool = False) -> None:
        """Stop the components (kwok and controllers, then the API server, then etcd).

        Removes the state folder unless ``keep_state`` (logs kept for debugging).
        """
        info = self._require_info()
        stop_components(info.handles)
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        if not keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        self.info = None
