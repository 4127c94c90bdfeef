"""pytest fixtures ``cluster`` (one per session) and ``namespace`` (one per test).

Registered by the repository's root ``conftest.py``. The control plane starts only when a test
asks for ``cluster`` (directly or through ``namespace``), so unit-only runs never pay for it.
With ``RAGFLOW_E2E_KUBECONFIG=/path/to/kubeconfig`` the fixtures use that cluster instead (for
example kind), and the same tests run there. A missing binary fails the test with the
instructions from ``assets`` (never a skip).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.controlplane import launcher, memory
from e2e.controlplane.cluster import Cluster

EXTERNAL_KUBECONFIG_ENV = "RAGFLOW_E2E_KUBECONFIG"
NAMESPACE_READY_SECONDS = 30.0

_summary: dict[str, str] = {}


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Cluster]:
    """The cluster every ``@pytest.mark.cluster`` test talks to (started once per session)."""
    external = pytestconfig.getoption("--kubeconfig-e2e") or _env_kubeconfig()
    if external:
        _summary["cluster"] = f"external cluster from {external}"
        yield Cluster.from_kubeconfig(Path(external))
        return
    plane = launcher.ControlPlane(tmp_path_factory.mktemp("controlplane"))
    info = plane.start()
    sampler = memory.PeakSampler(plane).start()
    try:
        yield Cluster.from_control_plane(plane)
    finally:
        sampler.stop()
        plane.stop(keep_state=True)
        _summary["cluster"] = (
            f"local control plane: started in {info.phase_seconds['total']:.1f}s "
            f"({_phases(info)}); peak RSS of all components "
            f"{sampler.peak_total_bytes / 2**20:.0f} MiB (sampled), "
            f"{sum(sampler.peak_per_component.values()) / 2**20:.0f} MiB (sum of VmHWM); "
            f"logs in {info.state_dir / 'logs'}"
        )


def _env_kubeconfig() -> str | None:
    return os.environ.get(EXTERNAL_KUBECONFIG_ENV) or None


def _phases(info: launcher.Info) -> str:
    return ", ".join(
        f"{name} {seconds:.1f}s" for name, seconds in info.phase_seconds.items() if name != "total"
    )


def namespace_name(test_name: str) -> str:
    """A unique, valid namespace name derived from the test's name (≤ 63 characters)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")
    slug = slug.removeprefix("test-")[:50].strip("-") or "test"
    return f"{slug}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, ready for Pods (its ``default`` ServiceAccount exists).

    Deleted after the test without waiting for the namespace controller to finish.
    """
    name = namespace_name(request.node.name)
    cluster.kubectl("create", "namespace", name)
    deadline = time.monotonic() + NAMESPACE_READY_SECONDS
    while cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode:
        if time.monotonic() > deadline:
            raise TimeoutError(f"ServiceAccount default never appeared in namespace {name}")
        time.sleep(0.1)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubeconfig-e2e",
        default=None,
        help=f"run cluster tests against this kubeconfig (same as ${EXTERNAL_KUBECONFIG_ENV})",
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if "cluster" in _summary:
        terminalreporter.write_line(_summary["cluster"])
