"""Wait for components to become ready, failing fast (with the log tail) if one of them dies.

Called by ``launcher`` between the start phases. Polling intervals are short because the
whole start takes seconds; every wait has a deadline and names what it was waiting for.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Sequence

from e2e.controlplane import processes, rest

POLL_SECONDS = 0.1


class ControlPlaneError(RuntimeError):
    """The control plane could not start or is not healthy; the message says which part and why."""


def _check_alive(handles: Sequence[processes.Handle]) -> None:
    for handle in handles:
        if not processes.is_running(handle):
            code = processes.exit_code(handle)
            raise ControlPlaneError(
                f"{handle.name} exited (status {code}) during start-up; last log lines from "
                f"{handle.log}:\n{processes.log_tail(handle)}"
            )


def wait_for(
    what: str,
    probe: Callable[[], bool],
    watched: Sequence[processes.Handle],
    timeout_seconds: float,
) -> float:
    """Poll ``probe`` until it returns True; returns the seconds waited.

    Raises ``ControlPlaneError`` when a watched process exits or the deadline passes.
    """
    started = time.monotonic()
    deadline = started + timeout_seconds
    last_error = ""
    while True:
        _check_alive(watched)
        try:
            if probe():
                return time.monotonic() - started
        except (OSError, rest.ApiError, ValueError) as error:
            last_error = f" (last error: {error})"
        if time.monotonic() > deadline:
            logs = ", ".join(handle.log for handle in watched)
            raise ControlPlaneError(
                f"timed out after {timeout_seconds:.0f}s waiting for {what}{last_error}; "
                f"logs: {logs}"
            )
        time.sleep(POLL_SECONDS)


def etcd_healthy(url: str) -> Callable[[], bool]:
    """Probe etcd's /health endpoint (plain HTTP on loopback)."""

    def probe() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")

    return probe


def answers_ok(client: rest.Client, path: str) -> Callable[[], bool]:
    """Probe that GET ``path`` answers 200 (``/readyz``, ``/healthz``, an object that exists)."""

    def probe() -> bool:
        status, _ = client.request("GET", path)
        return status == 200

    return probe


def nodes_ready(client: rest.Client, names: Sequence[str]) -> Callable[[], bool]:
    """Probe that every named Node reports the condition Ready=True (kwok sets it)."""

    def probe() -> bool:
        listing = client.json("GET", "/api/v1/nodes")
        ready = {
            item["metadata"]["name"]
            for item in listing.get("items", [])
            for condition in item.get("status", {}).get("conditions") or []
            if condition.get("type") == "Ready" and condition.get("status") == "True"
        }
        return set(names) <= ready

    return probe
