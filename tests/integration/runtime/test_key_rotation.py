"""Rotation without downtime: keys from files the operator mounts, in a running server.

The embedded server re-reads ``<data_dir>/keys/<role>/`` every 0.5 s (conftest ``key_files``).
Replacing a key file's content (what kubelet does when a Secret is edited) makes the new key valid
at once while the old one keeps working for the grace period, then stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from tests.fixtures.services import RuntimeProcess
from tests.integration.runtime.conftest import ROTATION_GRACE_S

pytestmark = pytest.mark.integration


def status_with(server: RuntimeProcess, key: str) -> int:
    response = requests.get(
        f"{server.base_url}/api/v1/datasets",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    return response.status_code


def wait_for(condition: Callable[[], bool], timeout_s: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)
    return time.monotonic() - start


def test_editing_a_key_secret_rotates_with_a_grace_period(embedded_server: RuntimeProcess) -> None:
    viewer_dir = embedded_server.data_dir / "keys" / "viewer"
    viewer_dir.mkdir(parents=True, exist_ok=True)
    key_file = viewer_dir / "app"
    key_file.write_text("viewer-key-before-rotation")
    wait_for(lambda: status_with(embedded_server, "viewer-key-before-rotation") == 200, 10)
    delete = requests.request(
        "DELETE",
        f"{embedded_server.base_url}/api/v1/datasets",
        headers={"Authorization": "Bearer viewer-key-before-rotation"},
        json={"ids": []},
        timeout=10,
    )
    assert delete.status_code == 403 and delete.json()["code"] == 108  # a viewer

    key_file.write_text("viewer-key-after-rotation")
    wait_for(lambda: status_with(embedded_server, "viewer-key-after-rotation") == 200, 10)
    rotated_at = time.monotonic()
    assert status_with(embedded_server, "viewer-key-before-rotation") == 200  # grace period
    waited = wait_for(lambda: status_with(embedded_server, "viewer-key-before-rotation") == 401, 30)
    # (seen valid a moment after the sync that started the grace period; 2.5 s of slack)
    assert time.monotonic() - rotated_at >= ROTATION_GRACE_S - 2.5, waited
    assert status_with(embedded_server, "viewer-key-after-rotation") == 200
    key_file.unlink()
    log = embedded_server.log()
    assert "viewer-key-before-rotation" not in log and "viewer-key-after-rotation" not in log
    assert '"action": "sync_keys"' in log
