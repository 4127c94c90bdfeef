"""``ragruntime standby sync|follow``: a standby follows a primary through its backups.

Registered into the runtime CLI by ``ragruntime.cli``. ``--config`` is a backup configuration
file of the PRIMARY (``cluster`` = the primary, its destinations, keyring and credentials: the
same schema as ``ragruntime backup``); the standby's own stores come from ``RAGFLOW_*``.
``sync`` runs one pass and prints one JSON summary line (also written to ``--termination-log``,
as ``backup run`` does); ``follow`` runs passes forever, logging each summary.
Exit codes of ``sync``: 0 applied or already up to date, 1 nothing usable could be read, 2 bad
input (configuration, keyring).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from ragflow_contract import environment
from ragruntime.backup import crypto, redact
from ragruntime.backup.format import FormatError
from ragruntime.backup.job import emit, load_config, repositories
from ragruntime.logs import configure_logging

log = logging.getLogger(__name__)
BAD_INPUT = (ValueError, crypto.CryptoError, FormatError)


def _follower(args: argparse.Namespace) -> Any:
    from ragruntime.config import Settings
    from ragruntime.standby.sync import Follower

    config = load_config(args.config)
    keyring = crypto.Keyring.load(config.keyring_file)
    return Follower(repositories(config), keyring, Settings(), config.cluster, args.workdir)


def _failure(exc: Exception) -> dict[str, Any]:
    """The summary of a command that failed before or outside its pass: nothing applied."""
    from ragruntime.standby.sync import SyncResult

    message = redact.redact_text(f"{type(exc).__name__}: {exc}")[:1000]
    return SyncResult(error=message).summary()


def cmd_sync(args: argparse.Namespace) -> int:
    try:
        follower = _follower(args)
    except BAD_INPUT as exc:
        emit(_failure(exc), args.termination_log)
        return 2
    try:
        result = follower.sync_once()
    except Exception as exc:  # the Job must still say why it failed, without secrets
        log.exception("standby sync failed")
        emit(_failure(exc), args.termination_log)
        return 1
    summary = result.summary()
    if "error" in summary:
        summary["error"] = redact.redact_text(summary["error"])
    emit(summary, args.termination_log)
    return 0 if result.ok else 1


def follow(sync: Callable[[], Any], interval: float, stop: threading.Event | None = None) -> None:
    """Run ``sync`` every ``interval`` seconds until ``stop`` is set, logging each summary."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            result = sync()
            summary = result.summary()
            level = logging.INFO if result.ok else logging.WARNING
            log.log(level, "standby pass", extra={"standby": summary})
        except Exception as exc:
            log.warning("standby pass failed", extra={"error": redact.redact_text(str(exc))[:300]})
        stop.wait(interval)


def cmd_follow(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        print("error: --interval must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        follower = _follower(args)
    except BAD_INPUT as exc:
        print(redact.redact_text(f"error: {exc}"), file=sys.stderr)
        return 2
    follow(follower.sync_once, args.interval)
    return 0


def _with_logging(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        configure_logging(os.environ.get(environment.LOG_LEVEL, "INFO"))
        return command(args)

    return run


def register(subparsers: Any) -> None:
    standby = subparsers.add_parser("standby", help="follow a primary through its backups")
    commands = standby.add_subparsers(dest="standby_command", required=True)
    for name, func, text in (
        ("sync", cmd_sync, "apply the newest usable backup of the primary, once"),
        ("follow", cmd_follow, "run sync forever, every --interval seconds"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument(
            "--config", help="the primary's backup config file (default RAGFLOW_BACKUP_CONFIG)"
        )
        parser.add_argument("--termination-log", help="also write the JSON summary here")
        parser.add_argument("--workdir", help="directory for the downloaded database")
        parser.set_defaults(func=_with_logging(func))
        if name == "follow":
            parser.add_argument(
                "--interval", type=float, default=60.0, help="seconds between passes"
            )
