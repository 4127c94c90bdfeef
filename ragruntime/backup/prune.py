"""Forget backups by retention policy, then remove data nothing references (mark and sweep).

Called by ``ragruntime backup prune`` and at the end of ``backup run``. Order keeps every
intermediate state valid: catalog first (forget), then manifests of forgotten backups, then
objects no kept backup references. Nothing is forgotten or swept while another backup holds a
fresh lock (it may be reusing objects no committed backup references yet, or committing). The
catalog is first repaired from the commit markers, so an entry lost to a concurrent write is
never mistaken for an uncommitted backup; uncommitted manifests (too few destinations, killed
runs) are removed only once older than the lock lifetime.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping

from ragruntime.backup.format import commit_path, manifest_path
from ragruntime.backup.repository import Repository
from ragruntime.backup.retention import RetentionPolicy, apply_policy

log = logging.getLogger(__name__)
LOCK_STALE_AFTER = dt.timedelta(hours=12)  # a killed run's lock stops blocking sweeps after this


def _older_than(backup_id: str, cutoff: dt.datetime) -> bool:
    """Backup ids start with their UTC start time (``20260101T020000Z-...``)."""
    try:
        started = dt.datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return False
    return started < cutoff


@dataclasses.dataclass
class PruneReport:
    destination: str
    dry_run: bool
    kept: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    reasons: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    swept: bool = False
    sweep_skipped: str = ""
    deleted_objects: int = 0
    freed_bytes: int = 0
    deleted_manifests: list[str] = dataclasses.field(default_factory=list)


def prune(
    repo: Repository,
    policies: Mapping[str, RetentionPolicy],
    now: dt.datetime,
    *,
    dry_run: bool = False,
    lock_stale_after: dt.timedelta = LOCK_STALE_AFTER,
    own_backup_id: str | None = None,
) -> PruneReport:
    report = PruneReport(repo.name, dry_run)
    catalog = repo.load_catalog() if dry_run else repo.repair_catalog()[0]
    decision = apply_policy(catalog.entries, policies, now)
    report.kept = [b.backup_id for b in decision.keep]
    report.removed = [b.backup_id for b in decision.remove]
    report.reasons = {k: list(v) for k, v in decision.reasons.items()}
    kept_manifests = [repo.committed_manifest(b.backup_id) for b in decision.keep]
    referenced = {path for m in kept_manifests for path in m.objects}
    locks = [b for b in repo.active_locks(now, lock_stale_after) if b != own_backup_id]
    if dry_run:
        return report
    manifest_ids = {i.key.split("/")[1] for i in repo.destination.list("backups/")}
    if not catalog.entries and manifest_ids - set(locks):
        report.sweep_skipped = "the catalog is missing or empty but manifests exist; not pruning"
        return report
    if locks:
        report.sweep_skipped = f"backups in progress: {', '.join(sorted(locks))}"
        return report
    if report.removed:
        # forget on a fresh copy: never drop an entry committed since we read the catalog
        repo.save_catalog(repo.load_catalog().without(set(report.removed)))
        for backup_id in report.removed:
            repo.destination.delete(commit_path(backup_id))
    committed = repo.committed_ids()
    for backup_id in sorted(manifest_ids - set(report.kept)):
        uncommitted_and_old = backup_id not in committed and _older_than(
            backup_id, now - lock_stale_after
        )
        if backup_id in report.removed or uncommitted_and_old:
            repo.destination.delete(manifest_path(backup_id))
            report.deleted_manifests.append(backup_id)
    for info in repo.destination.list("data/"):
        if info.key not in referenced:
            repo.destination.delete(info.key)
            report.deleted_objects += 1
            report.freed_bytes += info.size
    report.swept = True
    log.info(
        "prune finished",
        extra={
            "destination": repo.name,
            "removed": report.removed,
            "deleted_objects": report.deleted_objects,
        },
    )
    return report
