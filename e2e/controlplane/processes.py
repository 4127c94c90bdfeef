"""Start component processes and stop them again by PID, never touching anyone else's.

Called by ``launcher``. Each process runs in its own session (so Ctrl-C in a terminal reaches the
launcher, which then stops the components in order) and writes to ``<state>/logs/<name>.log``. A
``Handle`` records the PID together with the kernel's start time of that PID, so a later ``down`` in
another process stops a component only if that PID still belongs to the process we started (PIDs
get reused).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

STOP_GRACE_SECONDS = 5.0
"""How long SIGTERM gets before SIGKILL. The API server usually exits in ~1 s but can hang after
"apiserver is exiting" (seen after CRD deletions); its data is disposable, so waiting longer buys
nothing."""


@dataclass(frozen=True)
class Handle:
    """A started component: its name, PID, the PID's start time (clock ticks) and its log file."""

    name: str
    pid: int
    start_ticks: int
    log: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> Handle:
        return cls(
            name=str(raw["name"]),
            pid=int(str(raw["pid"])),
            start_ticks=int(str(raw["start_ticks"])),
            log=str(raw["log"]),
        )


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time after boot), or None if the PID is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    after_name = stat.rsplit(")", 1)[1].split()
    return int(after_name[19])


def is_running(handle: Handle) -> bool:
    """True while the PID exists, is not a zombie, and is still the process we started."""
    if _start_ticks(handle.pid) != handle.start_ticks:
        return False
    try:
        state = Path(f"/proc/{handle.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


_children: dict[int, subprocess.Popen[bytes]] = {}
"""Popen objects of the processes this interpreter started, so their exit status is reaped."""


PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> None:
    """In the child before exec: ask the kernel for SIGTERM when the starting thread dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = False,
) -> Handle:
    """Start ``argv`` in its own session, logging to ``log_dir/<name>.log``.

    ``die_with_parent`` makes the kernel stop the process if this one dies without cleaning up
    (a killed test run leaves no API server behind); detached control planes leave it off.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_terminate_with_parent if die_with_parent else None,
        )
    _children[process.pid] = process
    ticks = _start_ticks(process.pid)
    if ticks is None:
        raise RuntimeError(f"{name} exited immediately; see {log_path}")
    return Handle(name=name, pid=process.pid, start_ticks=ticks, log=str(log_path))


def _signal(handle: Handle, signum: int) -> None:
    if is_running(handle):
        try:
            os.kill(handle.pid, signum)
        except ProcessLookupError:
            return


def _reap(handle: Handle) -> None:
    child = _children.pop(handle.pid, None)
    if child is not None:
        child.wait(timeout=1)


def stop(handles: Sequence[Handle], grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every handle, wait up to ``grace_seconds``, SIGKILL what is left, reap ours."""
    for handle in handles:
        _signal(handle, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for handle in handles:
        while is_running(handle) and time.monotonic() < deadline:
            child = _children.get(handle.pid)
            if child is not None and child.poll() is not None:
                break
            time.sleep(0.05)
        _signal(handle, signal.SIGKILL)
    for handle in handles:
        child = _children.get(handle.pid)
        if child is not None:
            try:
                child.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                continue
        _reap(handle)


def exit_code(handle: Handle) -> int | None:
    """The exit status if this interpreter started the process and it has exited, else None."""
    child = _children.get(handle.pid)
    return child.poll() if child is not None else None


def log_tail(handle: Handle, lines: int = 20) -> str:
    """The last ``lines`` lines of a component's log, for error messages."""
    try:
        text = Path(handle.log).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def rss_bytes(handle: Handle) -> tuple[int, int]:
    """(current RSS, peak RSS) of a running component from /proc/<pid>/status, in bytes."""
    if not is_running(handle):
        return 0, 0
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path(f"/proc/{handle.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) * 1024
    except OSError:
        return 0, 0
    return values["VmRSS"], values["VmHWM"]
