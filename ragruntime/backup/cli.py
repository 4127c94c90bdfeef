"""``ragruntime backup run|list|verify|restore|prune|repair``: the commands the operator's Jobs run.

Registered into the runtime CLI by ``ragruntime.cli.register_backup_commands``. Each command
reads the backup configuration (``--config`` or ``RAGFLOW_BACKUP_CONFIG``), the keyring file,
and the runtime's ``RAGFLOW_*`` settings; prints a JSON summary; and with ``--termination-log``
also writes it where Kubernetes reads a container's termination message, which is how the
operator learns a Job's result (``ragruntime.backup.job``, shared with ``ragruntime standby``).
Exit codes: 0 success, 1 the operation failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragflow_contract import backup_result, environment
from ragruntime.backup import crypto, redact
from ragruntime.backup.destinations.base import DestinationError
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.backup.format import FormatError
from ragruntime.backup.job import emit, load_config, repositories
from ragruntime.backup.prune import prune
from ragruntime.backup.repository import Repository, UnknownBackup
from ragruntime.backup.restore import (
    RestoreFailed,
    TargetNotEmpty,
    resolve_backup_id,
    restore_from_any,
)
from ragruntime.backup.settings import BackupConfig
from ragruntime.logs import configure_logging

log = logging.getLogger(__name__)
USER_ERRORS = (
    UnknownBackup,
    RestoreFailed,
    crypto.CryptoError,
    TargetNotEmpty,
    FormatError,
    ValueError,
)


def _settings() -> Any:
    from ragruntime.config import Settings

    return Settings()


def cmd_run(args: argparse.Namespace) -> int:
    from ragruntime.backup import snapshot

    config = load_config(args.config)
    keyring = crypto.Keyring.load(config.keyring_file)
    schedule = config.schedule(args.schedule)
    options = BackupOptions(
        cluster=config.cluster,
        schedule=schedule.name,
        type=args.type or schedule.type,
        min_successful=config.min_successful,
    )
    repos = repositories(config)
    with snapshot.capture(_settings(), config.include, args.workdir) as captured:
        result = run_backup(captured, [r.destination for r in repos], keyring, options)
    summary: dict[str, Any] = {
        "kind": backup_result.KIND_BACKUP,
        **result.summary(),
        "keyId": keyring.active_id,
    }
    if result.succeeded:
        summary["keyFirstUsedAt"] = _key_first_used(repos, result, keyring.active_id)
    if result.succeeded and not args.no_prune:
        committed = {d.name for d in result.destinations if d.state == "succeeded"}
        healthy = [r for r in repos if r.name in committed]  # failed ones are not called again
        summary["pruned"] = _prune_after_backup(healthy, config, result.backup_id)[:20]
    emit(summary, args.termination_log)
    return 0 if result.succeeded else 1


def _key_first_used(repos: list[Repository], result: Any, key_id: str) -> str:
    """When the active master key first made a backup (for the operator's KeyRotationDue)."""
    committed = {d.name for d in result.destinations if d.state == "succeeded"}
    for repo in repos:
        if repo.name in committed:
            with contextlib.suppress(DestinationError, FormatError):
                used = [
                    e.started_at for e in repo.load_catalog().entries if e.master_key_id == key_id
                ]
                if used:
                    return min(used)
    return str(result.started_at)


def _prune_after_backup(repos: list[Repository], config: BackupConfig, own: str) -> list[str]:
    removed: set[str] = set()
    for repo in repos:
        try:
            report = prune(repo, config.policies(), dt.datetime.now(dt.UTC), own_backup_id=own)
            removed.update(report.removed)
        except (DestinationError, FormatError, UnknownBackup) as exc:
            log.warning("prune skipped", extra={"destination": repo.name, "error": str(exc)})
    return sorted(removed)


def cmd_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    listing: list[dict[str, Any]] = []
    for repo in repositories(config, args.destination):
        try:
            entries = [e.to_raw() for e in repo.load_catalog().entries]
            listing.append({"destination": repo.name, "backups": entries})
        except (DestinationError, FormatError) as exc:
            listing.append({"destination": repo.name, "error": str(exc)})
    if args.json:
        print(json.dumps(listing, indent=2, sort_keys=True))
        return 0
    for item in listing:
        print(f"== {item['destination']}" + (f": ERROR {item['error']}" if "error" in item else ""))
        for b in item.get("backups", []):
            print(
                f"{b['id']}  {b['type']:<11} {b['schedule']:<12} {b['finishedAt']}  "
                f"{b['plainBytes']:>12} B  parent={b['parentId'] or '-'}"
            )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ragruntime.backup.verify import verify_integrity, verify_restore

    config = load_config(args.config)
    keyring = crypto.Keyring.load(config.keyring_file)
    tests = set(args.tests.split(","))
    reports = []
    for repo in repositories(config, args.destination):
        try:
            backup_id = resolve_backup_id(repo, args.backup_id)
        except (UnknownBackup, DestinationError, FormatError) as exc:
            reports.append({"destination": repo.name, "ok": False, "problems": [str(exc)]})
            continue
        try:
            if "integrity" in tests:
                reports.append(verify_integrity(repo, backup_id, keyring).summary())
            if tests & {"restore", "performance"}:
                with tempfile.TemporaryDirectory(prefix="ragflow-verify-", dir=args.workdir) as t:
                    sink = _scratch_sink(Path(t))
                    reports.append(verify_restore(repo, backup_id, keyring, sink).summary())
        except Exception as exc:  # one destination's crash must not hide the others' results
            log.exception("verify failed", extra={"destination": repo.name})
            problem = f"verify failed: {type(exc).__name__}: {exc}"
            reports.append({"destination": repo.name, "ok": False, "problems": [problem[:300]]})
    ok = bool(reports) and all(r["ok"] for r in reports)
    emit(
        {
            "kind": backup_result.KIND_VALIDATION,
            "ok": ok,
            "tests": sorted(tests),
            "details": reports,
        },
        args.termination_log,
    )
    return 0 if ok else 1


def _scratch_sink(directory: Path) -> Callable[[], Any]:
    from ragruntime.backup.sink import RuntimeSink
    from ragruntime.config import Settings

    scratch_db = os.environ.get("RAGFLOW_BACKUP_SCRATCH_DATABASE_URL", "")
    settings = Settings(data_dir=directory, database_url=scratch_db, vector_uri="", cache_url="")
    return lambda: RuntimeSink(settings, archive_check_only=not scratch_db)


def cmd_restore(args: argparse.Namespace) -> int:
    from ragruntime.backup.sink import RuntimeSink

    config = load_config(args.config)
    keyring = crypto.Keyring.load(config.keyring_file)
    outcome = restore_from_any(
        repositories(config, args.destination),
        args.backup_id,
        keyring,
        RuntimeSink(_settings()),
        force=args.force,
    )
    emit(
        {
            "kind": backup_result.KIND_RESTORE,
            "id": outcome.manifest.backup_id,
            "destination": outcome.destination,
            "skipped": [{"destination": n, "reason": why[:300]} for n, why in outcome.skipped],
            "counts": dict(outcome.counts),
            "expected": dict(outcome.manifest.counts),
        },
        args.termination_log,
    )
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    details = []
    failed = False
    for repo in repositories(config, args.destination):
        try:
            report = prune(repo, config.policies(), dt.datetime.now(dt.UTC), dry_run=args.dry_run)
            details.append(report.summary())
        except (DestinationError, FormatError, UnknownBackup) as exc:
            failed = True
            details.append({"destination": repo.name, "error": str(exc)[:300]})
    emit({"kind": "prune", "dryRun": args.dry_run, "details": details}, args.termination_log)
    return 1 if failed else 0


def cmd_repair(args: argparse.Namespace) -> int:
    """Rebuild each destination's catalog from its manifests and commit markers."""
    config = load_config(args.config)
    details: list[dict[str, Any]] = []
    for repo in repositories(config, args.destination):
        try:
            catalog, added, dropped = repo.repair_catalog()
            details.append(
                {
                    "destination": repo.name,
                    "backups": len(catalog.entries),
                    "added": added,
                    "dropped": dropped,
                }
            )
        except (DestinationError, FormatError) as exc:
            details.append({"destination": repo.name, "error": str(exc)[:300]})
    ok = all("error" not in d for d in details)
    emit({"kind": "repair", "ok": ok, "details": details}, args.termination_log)
    return 0 if ok else 1


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Known failures → one clear line on stderr and exit code 2 (no traceback, no secrets)."""

    def run(args: argparse.Namespace) -> int:
        configure_logging(os.environ.get(environment.LOG_LEVEL, "INFO"))
        try:
            return command(args)
        except USER_ERRORS as exc:
            message = f"error: {exc}"
        except Exception as exc:  # the Job must still report why it failed
            log.exception("backup command failed")
            message = f"error: {type(exc).__name__}: {exc}"
        message = redact.redact_text(message)
        print(message, file=sys.stderr)
        if getattr(args, "termination_log", None):
            with contextlib.suppress(OSError):
                Path(args.termination_log).write_text(
                    json.dumps(
                        {
                            "kind": args.backup_command,
                            "succeeded": False,
                            "ok": False,
                            "error": message[:1000],
                        }
                    )
                )
        return 2

    return run


def register(subparsers: Any) -> None:
    backup = subparsers.add_parser("backup", help="encrypted multi-destination backups")
    commands = backup.add_subparsers(dest="backup_command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], text: str) -> Any:
        parser = commands.add_parser(name, help=text)
        parser.add_argument("--config", help="backup config file (default RAGFLOW_BACKUP_CONFIG)")
        parser.add_argument("--termination-log", help="also write the JSON summary here")
        parser.set_defaults(func=_guard(func))
        return parser

    run = add("run", cmd_run, "take a backup of this runtime to every destination")
    run.add_argument("--schedule", default="on-demand", help="schedule name (retention, type)")
    run.add_argument("--type", choices=["full", "incremental"], help="default: the schedule's")
    run.add_argument("--no-prune", action="store_true", help="skip retention after the backup")
    run.add_argument("--workdir", help="directory for the temporary snapshot")
    listing = add("list", cmd_list, "list the committed backups of every destination")
    listing.add_argument("--destination")
    listing.add_argument("--json", action="store_true")
    verify = add("verify", cmd_verify, "check integrity and restorability of a backup")
    verify.add_argument("--backup-id", default="latest")
    verify.add_argument("--destination")
    verify.add_argument("--tests", default="integrity,restore,performance")
    verify.add_argument("--workdir", help="directory for the scratch restore")
    restore = add("restore", cmd_restore, "restore a backup into this (empty) runtime")
    restore.add_argument("--backup-id", default="latest")
    restore.add_argument("--destination", help="default: the first that has the backup")
    restore.add_argument("--force", action="store_true", help="overwrite a non-empty target")
    prune_cmd = add("prune", cmd_prune, "apply retention and remove unreferenced data")
    prune_cmd.add_argument("--destination")
    prune_cmd.add_argument("--dry-run", action="store_true")
    repair = add("repair", cmd_repair, "rebuild the catalogs from manifests and commit markers")
    repair.add_argument("--destination")
