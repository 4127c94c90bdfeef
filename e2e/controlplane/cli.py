"""``python -m e2e.controlplane up|down|status|env|bench``: the local control plane from a shell.

Called by ``__main__`` (developers, the demo, CI scripts). ``up`` runs in the foreground until
Ctrl-C (or SIGTERM) and then stops everything; ``up --detach`` returns once the cluster is ready
and leaves it running, recorded in ``<state-dir>/state.json`` for ``down``, ``status`` and ``env``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from e2e.controlplane import assets, launcher, readiness


def default_state_dir(name: str) -> Path:
    return assets.cache_root() / "controlplane" / "clusters" / name


def _state_dir(arguments: argparse.Namespace) -> Path:
    if arguments.state_dir:
        return Path(arguments.state_dir).resolve()
    return default_state_dir(arguments.name)


def _print_env(info: launcher.Info) -> None:
    print(f"export KUBECONFIG={info.kubeconfig}")


def command_up(arguments: argparse.Namespace) -> int:
    plane = launcher.ControlPlane(
        _state_dir(arguments), launcher.Options(nodes=arguments.nodes, detached=arguments.detach)
    )
    info = plane.start()
    seconds = info.phase_seconds["total"]
    print(f"# control plane ready in {seconds:.1f}s at {info.server}", file=sys.stderr)
    print(f"# audit log: {info.audit_log}", file=sys.stderr)
    _print_env(info)
    sys.stdout.flush()
    if arguments.detach:
        return 0
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    print("# running; press Ctrl-C to stop", file=sys.stderr)
    while not stop_requested.wait(timeout=5):
        if not plane.is_healthy():
            print("# a component died; stopping (logs kept)", file=sys.stderr)
            plane.stop(keep_state=True)
            return 1
    plane.stop(keep_state=arguments.keep_state)
    print("# control plane stopped", file=sys.stderr)
    return 0


def command_down(arguments: argparse.Namespace) -> int:
    state_dir = _state_dir(arguments)
    if not (state_dir / launcher.STATE_FILE).exists():
        print(f"# no control plane recorded in {state_dir}", file=sys.stderr)
        return 0
    launcher.ControlPlane.attach(state_dir).stop(keep_state=arguments.keep_state)
    print(f"# control plane in {state_dir} stopped", file=sys.stderr)
    return 0


def command_status(arguments: argparse.Namespace) -> int:
    state_dir = _state_dir(arguments)
    if not (state_dir / launcher.STATE_FILE).exists():
        print(json.dumps({"state_dir": str(state_dir), "running": False}))
        return 1
    plane = launcher.ControlPlane.attach(state_dir)
    info = plane.info
    assert info is not None  # attach() always loads it
    memory = plane.memory()
    healthy = plane.is_healthy()
    report = {
        "state_dir": str(state_dir),
        "running": healthy,
        "server": info.server,
        "kubeconfig": str(info.kubeconfig),
        "audit_log": str(info.audit_log),
        "rss_mib": round(memory.current_total / 2**20, 1),
        "components": {
            name: {"rss_mib": round(current / 2**20, 1), "peak_mib": round(peak / 2**20, 1)}
            for name, (current, peak) in memory.per_component.items()
        },
    }
    print(json.dumps(report, indent=2))
    return 0 if healthy else 1


def command_env(arguments: argparse.Namespace) -> int:
    state_dir = _state_dir(arguments)
    if not (state_dir / launcher.STATE_FILE).exists():
        print(f"# no control plane recorded in {state_dir}; run `up --detach`", file=sys.stderr)
        return 1
    _print_env(launcher.Info.load(state_dir))
    return 0


def command_bench(arguments: argparse.Namespace) -> int:
    from e2e.controlplane import bench

    report = bench.run(warm_starts=arguments.warm, work_dir=_state_dir(arguments))
    print(json.dumps(report, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m e2e.controlplane",
        description="Local Kubernetes control plane (etcd, kube-apiserver, controllers, kwok).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    handlers = {
        "up": (command_up, "start; foreground until Ctrl-C unless --detach"),
        "down": (command_down, "stop a detached control plane"),
        "status": (command_status, "health, PIDs' memory; exit 1 if not running"),
        "env": (command_env, "print `export KUBECONFIG=...`"),
        "bench": (command_bench, "cold and warm start times, peak memory (JSON)"),
    }
    for name, (handler, summary) in handlers.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        sub.add_argument("--name", default="default", help="cluster name (state folder name)")
        sub.add_argument("--state-dir", help="state folder (default: cache/controlplane/clusters)")
        if name == "up":
            sub.add_argument("--nodes", type=int, default=3, help="fake kwok nodes")
            sub.add_argument("--detach", action="store_true", help="return once ready")
        if name in ("up", "down"):
            sub.add_argument("--keep-state", action="store_true", help="keep logs and data")
        if name == "bench":
            sub.add_argument("--warm", type=int, default=5, help="warm starts to time")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except (assets.AssetMissingError, readiness.ControlPlaneError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
