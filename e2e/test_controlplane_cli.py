"""``python -m e2e.controlplane up --detach`` / ``status`` / ``env`` / ``down`` end to end: the
detached mode the demo uses leaves a working cluster behind and ``down`` stops exactly its PIDs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.controlplane import assets, launcher, processes

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def controlplane(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "e2e.controlplane", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


def test_detached_control_plane_serves_kubectl_until_down_stops_its_processes(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "detached"
    up = controlplane("up", "--detach", "--nodes", "1", "--state-dir", str(state_dir))
    assert up.returncode == 0, up.stderr
    kubeconfig = state_dir / "admin.kubeconfig"
    assert up.stdout.strip() == f"export KUBECONFIG={kubeconfig}"
    handles = launcher.Info.load(state_dir).handles
    try:
        assert {handle.name for handle in handles} == set(launcher.COMPONENTS)
        status = controlplane("status", "--state-dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["running"] is True
        assert report["rss_mib"] > 0
        env = controlplane("env", "--state-dir", str(state_dir))
        assert env.stdout.strip() == f"export KUBECONFIG={kubeconfig}"
        nodes = subprocess.run(
            [
                str(assets.find_kubectl()),
                f"--kubeconfig={kubeconfig}",
                "get",
                "nodes",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert nodes.stdout.split() == ["node/kwok-node-0"]
        again = controlplane("up", "--detach", "--state-dir", str(state_dir))
        assert again.returncode == 2
        assert "already holds a control plane" in again.stderr
    finally:
        down = controlplane("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert not any(processes.is_running(handle) for handle in handles)
    assert not state_dir.exists()
    after = controlplane("status", "--state-dir", str(state_dir))
    assert after.returncode == 1
    assert json.loads(after.stdout)["running"] is False
