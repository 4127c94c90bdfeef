"""Forget backups by retention policy, then remove data nothing references (mark and sweep).

Called by ``ragruntime backup prune`` and at the end of ``backup run``. The model is restic's:
prune must never delete an object that a running or newer backup may reference.

1. Nothing is forgotten or swept while another backup holds a fresh lock (it may be reusing
   objects no committed backup references yet). Locks of killed runs go stale.
2. Forget: the catalog first, then the commit markers of the forgotten backups.
3. Locks are checked *again*, after the forget and just before the sweep: a backup that started
   before the forget (and may have chosen a forgotten parent) stops the sweep.
4. What is referenced is read at sweep time from every backup that holds a commit marker then,
   not from the list decided in step 1: a backup committed meanwhile keeps its objects.
5. Grace: an unreferenced object is deleted only if the backup that wrote it (its id is in the
   object's key) started more than ``grace`` before ``now``; a backup that started after the
   re-check writes only such new objects and reuses only objects of backups still committed.

Uncommitted manifests (too few destinations, killed runs) are removed once older than the lock
lifetime.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping

from ragruntime.backup.format import FormatError, manifest_path
from ragruntime.backup.repository import Repository, UnknownBackup, backup_started
from ragruntime.backup.retention import RetentionPolicy, apply_policy

log = logging.getLogger(__name__)
LOCK_STALE_AFTER = dt.timedelta(hours=12)  # a killed run's lock stops blocking sweeps after this
SWEEP_GRACE = dt.timedelta(hours=1)  # unreferenced objects younger than this are kept (skew)


def _older_than(backup_id: str, cutoff: dt.datetime) -> bool:
    started = backup_started(backup_id)
    return started is not None and started < cutoff


def _writer(object_key: str) -> str:
    """The backup that wrote a data object: ``data/ab/<name>.<backup id>``."""
    return object_key.rsplit("/", 1)[-1].partition(".")[2]


@dataclasses.dataclass
class PruneReport:
    destination: str
    dry_run: bool
    kept: list[str] = dataclasses.field(default_factory=list)
    to_remove: list[str] = dataclasses.field(default_factory=list)  # what the policy forgets
    removed: list[str] = dataclasses.field(default_factory=list)  # what was really forgotten
    reasons: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    swept: bool = False
    sweep_skipped: str = ""
    deleted_objects: int = 0
    freed_bytes: int = 0
    deleted_manifests: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "destination": self.destination,
            "kept": self.kept,
            "removed": self.removed,
            **({"wouldRemove": self.to_remove} if self.to_remove != self.removed else {}),
            "deletedObjects": self.deleted_objects,
            "freedBytes": self.freed_bytes,
            "sweepSkipped": self.sweep_skipped,
            "reasons": self.reasons,
        }


def prune(
    repo: Repository,
    policies: Mapping[str, RetentionPolicy],
    now: dt.datetime,
    *,
    dry_run: bool = False,
    lock_stale_after: dt.timedelta = LOCK_STALE_AFTER,
    grace: dt.timedelta = SWEEP_GRACE,
    own_backup_id: str | None = None,
) -> PruneReport:
    report = PruneReport(repo.name, dry_run)
    catalog = repo.load_catalog() if dry_run else repo.repair_catalog()[0]
    decision = apply_policy(catalog.entries, policies, now)
    report.kept = [b.backup_id for b in decision.keep]
    report.to_remove = [b.backup_id for b in decision.remove]
    report.reasons = {k: list(v) for k, v in decision.reasons.items()}

    def running() -> list[str]:
        return [b for b in repo.active_locks(now, lock_stale_after) if b != own_backup_id]

    if dry_run:
        return report
    manifest_ids = {i.key.split("/")[1] for i in repo.destination.list("backups/")}
    locks = running()
    if not catalog.entries and manifest_ids - set(locks):
        report.sweep_skipped = "the catalog is missing or empty but manifests exist; not pruning"
        return report
    if locks:
        report.sweep_skipped = f"backups in progress: {', '.join(sorted(locks))}"
        return report
    if report.to_remove:
        # forget on a fresh copy: never drop an entry committed since we read the catalog
        repo.save_catalog(repo.load_catalog().without(set(report.to_remove)))
        for backup_id in report.to_remove:
            repo.unmark_committed(backup_id)
        report.removed = list(report.to_remove)
    locks = running()
    if locks:
        report.sweep_skipped = f"backups started during prune: {', '.join(sorted(locks))}"
        return report
    committed = repo.committed_ids()
    try:
        referenced = {p for b in sorted(committed) for p in repo.load_manifest(b).objects}
    except (FormatError, UnknownBackup) as exc:
        report.sweep_skipped = f"a committed manifest is unreadable, not sweeping: {exc}"
        return report
    for backup_id in sorted(manifest_ids - committed):
        if backup_id in report.removed or _older_than(backup_id, now - lock_stale_after):
            repo.destination.delete(manifest_path(backup_id))
            report.deleted_manifests.append(backup_id)
    cutoff = now - grace
    for info in repo.destination.list("data/"):
        if info.key not in referenced and _older_than(_writer(info.key), cutoff):
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
