"""``Cluster``: what tests get from the ``cluster`` fixture, for the local plane or any kubeconfig.

Called by ``pytest_plugin`` (and usable from scripts). It wraps a kubeconfig with helpers:
``kubectl(...)``, ``api_client()`` (the official Kubernetes client), ``env()`` for subprocesses
such as the operator, and, when the cluster is the local control plane, its audit log
(``audit_offset()`` / ``audit_events(since)``) so a test can count the write requests a
controller made between two points in time.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e.controlplane import assets, launcher


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; unlike its base class, the message includes kubectl's stderr."""

    def __str__(self) -> str:
        command = " ".join(str(part) for part in self.cmd[2:])
        return f"kubectl {command} exited {self.returncode}: {self.stderr.strip()}"


@dataclass
class Cluster:
    """A reachable Kubernetes cluster: the local control plane or an existing one (kind)."""

    kubeconfig: Path
    server: str
    audit_log: Path | None = None
    """The API server's JSON audit log (writes only, Metadata level); None on external clusters."""
    control_plane: launcher.ControlPlane | None = None

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path) -> Cluster:
        """An existing cluster (e.g. kind): server read from the kubeconfig's current context."""
        document = yaml.safe_load(kubeconfig.read_text())
        contexts = {item["name"]: item["context"] for item in document.get("contexts", [])}
        clusters = {item["name"]: item["cluster"] for item in document.get("clusters", [])}
        current = contexts[document["current-context"]]
        return cls(kubeconfig=kubeconfig, server=clusters[current["cluster"]]["server"])

    @classmethod
    def from_control_plane(cls, plane: launcher.ControlPlane) -> Cluster:
        info = plane.info
        if info is None:
            raise ValueError("the control plane has not been started")
        return cls(
            kubeconfig=info.kubeconfig,
            server=info.server,
            audit_log=info.audit_log,
            control_plane=plane,
        )

    @property
    def is_local(self) -> bool:
        return self.control_plane is not None

    def env(self) -> dict[str, str]:
        """``os.environ`` plus ``KUBECONFIG`` pointing at this cluster, for child processes."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; ``check`` raises with kubectl's stderr on failure."""
        command = [str(assets.find_kubectl()), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, command, result.stdout, result.stderr)
        return result

    def kubectl_json(self, *args: str) -> Any:
        """``kubectl ... -o json`` decoded."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this cluster (caller closes it)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]

    def audit_offset(self) -> int:
        """Current end of the audit log; pass it to ``audit_events`` to see later writes only."""
        log = self._require_audit_log()
        return log.stat().st_size if log.exists() else 0

    def audit_events(self, since: int = 0) -> list[dict[str, Any]]:
        """Audit events (dicts as the API server wrote them) after byte offset ``since``."""
        log = self._require_audit_log()
        if not log.exists():
            return []
        with log.open("rb") as handle:
            handle.seek(since)
            return list(_decode_lines(handle.read()))

    def _require_audit_log(self) -> Path:
        if self.audit_log is None:
            raise RuntimeError(
                "the audit log is only available on the local control plane "
                "(unset RAGFLOW_E2E_KUBECONFIG to use it)"
            )
        return self.audit_log


def _decode_lines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        if line.strip():
            yield json.loads(line)
