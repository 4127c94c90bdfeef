"""One pass of a standby: choose the newest usable backup of the primary and apply it.

Called by ``ragruntime standby sync`` (one pass) and ``standby follow`` (a loop). The pass reads
the catalog of every destination of the PRIMARY's backup configuration (any one holding a backup
suffices, like restore's fallback), takes the backups newer than the one this standby serves,
newest first, and applies the first that works (``ragruntime.standby.apply``). A backup whose
manifest is damaged, whose objects are corrupt or whose keys the keyring cannot unwrap, on
every destination that lists it, is skipped, reported and remembered (never tried again); the
next older one is tried. An unreachable store is not a verdict on a backup: the pass stops with
an error and the next pass tries again. The standby keeps serving the last applied backup.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ragflow_contract import standby_result
from ragruntime.backup import crypto
from ragruntime.backup.destinations.base import DestinationError, NotFound
from ragruntime.backup.format import CatalogEntry, FormatError, Manifest
from ragruntime.backup.objects import IntegrityError
from ragruntime.backup.repository import Repository, UnknownBackup, unlock_keys
from ragruntime.config import Settings
from ragruntime.security.tls import postgres_connect_args
from ragruntime.standby.apply import Applier
from ragruntime.standby.flip import FlipError
from ragruntime.store import standby as state_store
from ragruntime.store.database import create_engine, is_postgres, now_ms

log = logging.getLogger(__name__)

# What makes a backup unusable on one destination, whatever is retried (a missing object too:
# an incomplete backup). Any other DestinationError is the store's failure, not the backup's.
BROKEN: tuple[type[Exception], ...] = (
    NotFound,
    FormatError,
    IntegrityError,
    crypto.CryptoError,
    FlipError,
    UnknownBackup,
    ValueError,
)
REASON_CHARS = 240
SKIPPED_REPORTED = 10  # in the summary: it must fit a termination message (4 KiB)


@dataclasses.dataclass
class SyncResult:
    """The outcome of one pass; ``summary()`` is what the CLI prints."""

    applied: str | None = None
    current: str | None = None
    current_time: str | None = None
    newest: str | None = None
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    chunks_fetched: int = 0
    bytes_fetched: int = 0
    up_to_date: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> dict[str, Any]:
        """The Job's result, named by ``ragflow_contract.standby_result``."""
        out: dict[str, Any] = {
            standby_result.APPLIED: self.applied,
            standby_result.CURRENT: self.current,
            standby_result.CURRENT_BACKUP_TIME: self.current_time,
            standby_result.NEWEST_AVAILABLE: self.newest,
            standby_result.SKIPPED: self.skipped[:SKIPPED_REPORTED],
            standby_result.CHUNKS_FETCHED: self.chunks_fetched,
            standby_result.BYTES_FETCHED: self.bytes_fetched,
            standby_result.UP_TO_DATE: self.up_to_date,
        }
        if self.error is not None:
            out[standby_result.ERROR] = self.error
        return out


@dataclasses.dataclass(frozen=True)
class Candidate:
    entry: CatalogEntry
    holders: tuple[Repository, ...]

    @property
    def order(self) -> tuple[str, str]:
        return (self.entry.started_at, self.entry.backup_id)


def open_engine(settings: Settings) -> sa.Engine:
    """The standby's metadata database, with the primary's tables and the standby's own."""
    url = settings.resolved_database_url()
    args = postgres_connect_args(settings.database_tls()) if is_postgres(url) else None
    engine = create_engine(url, args)
    state_store.ensure_tables(engine)
    return engine


def _catalogs(repos: Sequence[Repository]) -> tuple[list[Candidate], list[str]]:
    """Every committed backup and the destinations listing it; plus unreadable destinations."""
    holders: dict[str, list[Repository]] = {}
    entries: dict[str, CatalogEntry] = {}
    unreadable: list[str] = []
    for repo in repos:
        try:
            catalog = repo.load_catalog()
        except (DestinationError, FormatError) as exc:
            unreadable.append(f"{repo.name}: {exc}"[:REASON_CHARS])
            log.warning("destination unreadable", extra={"destination": repo.name})
            continue
        for entry in catalog.entries:
            entries.setdefault(entry.backup_id, entry)
            holders.setdefault(entry.backup_id, []).append(repo)
    found = [Candidate(entries[i], tuple(holders[i])) for i in entries]
    return sorted(found, key=lambda c: c.order, reverse=True), unreadable


class Follower:
    """Runs passes for one standby (stores from ``settings``) of one primary's repositories."""

    def __init__(
        self,
        repos: Sequence[Repository],
        keyring: crypto.Keyring,
        settings: Settings,
        primary: str,
        workdir: str | None = None,
    ) -> None:
        self.repos, self.keyring, self.settings = repos, keyring, settings
        self.primary, self.workdir = primary, workdir

    def sync_once(self) -> SyncResult:
        engine = open_engine(self.settings)
        try:
            with tempfile.TemporaryDirectory(prefix="ragflow-standby-", dir=self.workdir) as tmp:
                return self._pass(engine, Path(tmp))
        finally:
            engine.dispose()

    def _pass(self, engine: sa.Engine, workdir: Path) -> SyncResult:
        state = state_store.read_state(engine)
        same = state is not None and state.primary_cluster == self.primary
        following = same and state is not None and state.promoted_at_ms is None
        result = SyncResult()
        if state is not None:
            result.current, result.current_time = state.backup_id, state.backup_time
        remembered = state.skipped if same and state else []
        known_bad = {s[standby_result.SKIPPED_BACKUP_ID] for s in remembered}
        candidates, unreadable = _catalogs(self.repos)
        if unreadable and len(unreadable) == len(self.repos):
            result.error = "no destination could be read: " + "; ".join(unreadable)
            return self._finish(engine, state, result)
        if candidates:
            result.newest = candidates[0].entry.backup_id
        served = (state.backup_time or "", state.backup_id or "") if following and state else None
        newer = [c for c in candidates if served is None or c.order > served]
        applier = Applier(self.settings, engine, workdir)
        try:
            for candidate in newer:
                if candidate.entry.backup_id in known_bad:
                    continue
                outcome = self._try(candidate, applier, state, result)
                if outcome in ("applied", "unreachable"):
                    break
        finally:
            applier.close()
            result.chunks_fetched = applier.transfer.objects
            result.bytes_fetched = applier.transfer.bytes
        serving = following and state is not None and state.backup_id is not None
        if result.error is None and result.applied is None and not serving:
            result.error = (
                "no usable backup: every backup of the primary was skipped"
                if candidates
                else "the primary's repository holds no backup yet"
            )
        return self._finish(engine, state, result)

    def _try(
        self,
        candidate: Candidate,
        applier: Applier,
        state: state_store.StandbyState | None,
        result: SyncResult,
    ) -> str:
        """Apply one backup from the first destination that can: applied, skipped, unreachable."""
        backup_id = candidate.entry.backup_id
        reasons: list[str] = []
        transient = False
        for repo in candidate.holders:
            try:
                manifest = repo.load_manifest(
                    backup_id, expected_sha256=candidate.entry.manifest_sha256
                )
                keys = unlock_keys(manifest, self.keyring)
                applier.apply(repo, manifest, keys, self._recorder(manifest, state, result))
            except BROKEN as exc:
                reasons.append(f"{repo.name}: {str(exc) or type(exc).__name__}")
            except DestinationError as exc:
                transient = True
                reasons.append(f"{repo.name}: {exc}")
            else:
                log.info("standby applied backup", extra={"backup": backup_id, "via": repo.name})
                result.applied = backup_id
                result.current, result.current_time = backup_id, manifest.started_at
                return "applied"
            log.warning(
                "backup not applied from this destination",
                extra={"backup": backup_id, "destination": repo.name, "error": reasons[-1]},
            )
        reason = "; ".join(reasons)[:REASON_CHARS]
        if transient:
            result.error = f"backup {backup_id} could not be read: {reason}"
            return "unreachable"
        result.skipped.append(
            {standby_result.SKIPPED_BACKUP_ID: backup_id, standby_result.SKIPPED_REASON: reason}
        )
        return "skipped"

    def _recorder(
        self, manifest: Manifest, state: state_store.StandbyState | None, result: SyncResult
    ) -> Any:
        def record(conn: sa.Connection) -> None:
            now = now_ms()
            state_store.write_state(
                conn,
                {
                    "primary_cluster": self.primary,
                    "backup_id": manifest.backup_id,
                    "backup_time": manifest.started_at,
                    "applied_at_ms": now,
                    "last_sync_at_ms": now,
                    "last_error": None,
                    "promoted_at_ms": None,
                    **self._counters(state, result, applied=1),
                },
            )

        return record

    def _counters(
        self, state: state_store.StandbyState | None, result: SyncResult, applied: int
    ) -> dict[str, Any]:
        same = state is not None and state.primary_cluster == self.primary
        remembered = list(state.skipped) if same and state else []
        merged = (remembered + result.skipped)[-state_store.SKIPPED_KEPT :]
        return {
            "skipped": merged,
            "applied_total": (state.applied_total if state else 0) + applied,
            "skipped_total": (state.skipped_total if state else 0) + len(result.skipped),
        }

    def _finish(
        self, engine: sa.Engine, state: state_store.StandbyState | None, result: SyncResult
    ) -> SyncResult:
        result.up_to_date = result.error is None  # applied, or nothing newer is usable
        if result.applied is None:
            values: dict[str, Any] = {
                "last_sync_at_ms": now_ms(),
                "last_error": result.error,
                **self._counters(state, result, applied=0),
            }
            if state is None:
                values["primary_cluster"] = self.primary
            # A standby re-pointed at another primary keeps naming the one whose backup it
            # serves until a backup of the new one is applied (a pass compares backups of the
            # primary it serves only).
            with engine.begin() as conn:
                state_store.write_state(conn, values)
        return result
