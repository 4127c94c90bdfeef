"""``ragruntime`` command line: ``serve --role api|worker|all``, ``keys``, ``backup``, ``standby``.

Argparse sub-commands; the backup engine registers its own group through
``ragruntime.backup.cli.register(subparsers)`` when that package and its extra are importable.
No logic here: configuration comes from ``RAGFLOW_*`` variables (``ragruntime.config``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ragruntime.config import Role, Settings
from ragruntime.logs import configure_logging
from ragruntime.security import cli as keys_cli


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ragruntime.app import create_app

    overrides: dict[str, Any] = {}
    if args.role:
        overrides["role"] = Role(args.role)
    if args.port:
        overrides["port"] = args.port
    if args.host:
        overrides["host"] = args.host
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 10,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragruntime", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    serve_cmd = subparsers.add_parser("serve", help="run the HTTP API and/or ingestion workers")
    serve_cmd.add_argument("--role", choices=[r.value for r in Role], help="default RAGFLOW_ROLE")
    serve_cmd.add_argument("--port", type=int, help="default RAGFLOW_PORT (9380)")
    serve_cmd.add_argument("--host", help="default RAGFLOW_HOST (0.0.0.0)")
    serve_cmd.set_defaults(func=serve)
    keys_cli.register(subparsers)
    register_backup_commands(subparsers)
    return parser


def register_backup_commands(subparsers: Any) -> None:
    """Add ``backup ...`` when the backup package (optional extra) can be imported."""
    try:
        from ragruntime.backup import cli as backup_cli
        from ragruntime.standby import cli as standby_cli
    except ImportError:
        return
    backup_cli.register(subparsers)
    standby_cli.register(subparsers)  # a standby follows a primary through its backups


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
