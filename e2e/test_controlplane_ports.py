"""A port taken between choosing it and binding it makes the launcher retry with fresh ports
(other areas' tests start servers on free loopback ports at the same time).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.controlplane import launcher

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def busy_port() -> Iterator[int]:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


def test_start_retries_with_fresh_ports_when_one_was_taken(
    tmp_path: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_ports = launcher.free_ports
    handed_out: list[list[int]] = []

    def first_choice_collides(count: int) -> list[int]:
        ports = real_free_ports(count)
        if not handed_out:
            ports[0] = busy_port  # etcd's client port: the first thing that binds
        handed_out.append(ports)
        return ports

    monkeypatch.setattr(launcher, "free_ports", first_choice_collides)
    plane = launcher.ControlPlane(tmp_path / "plane", launcher.Options(nodes=1))
    info = plane.start()
    try:
        assert len(handed_out) == 2
        assert f":{handed_out[1][2]}" in info.server
        assert plane.is_healthy()
    finally:
        plane.stop()
