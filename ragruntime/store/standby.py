"""What a standby has applied, kept in its own metadata database (not part of the backed-up schema).

``ragruntime standby sync`` writes these tables; the API reads them for ``GET /api/v1/standby``
and the ``ragflow_standby_*`` metrics. They live in their own ``MetaData`` so that a sync's
database flip (``ragruntime.standby.flip``), which replaces the primary's tables, never touches
them, and backups leave them out (``ragruntime.backup.snapshot``): a cluster restored from a
promoted standby's backup must not believe it already holds vectors it does not.

``standby_state`` has one row: the backup being served, its creation time, the last pass and
the cumulative counters. ``standby_entries`` is the ledger of the backup entries (a document
generation's vectors, a stored file) present in the standby's stores, by checksum: what a later
backup can reuse instead of downloading again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

standby_metadata = sa.MetaData()
STATE_ROW = 1
SKIPPED_KEPT = 20  # skipped backups remembered in the state (newest last)

standby_state = sa.Table(
    "standby_state",
    standby_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("primary_cluster", sa.String(128), nullable=False),
    sa.Column("backup_id", sa.String(128)),
    sa.Column("backup_time", sa.String(64)),  # ISO-8601 UTC, the backup's snapshot time
    sa.Column("applied_at_ms", sa.BigInteger),
    sa.Column("last_sync_at_ms", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    sa.Column("skipped", sa.JSON, nullable=False),  # [{"backupId", "reason"}]
    sa.Column("applied_total", sa.BigInteger, nullable=False, default=0),
    sa.Column("skipped_total", sa.BigInteger, nullable=False, default=0),
    # Set when this runtime served writable (promoted) after following: the data may have
    # diverged from any backup, so the next sync applies the newest backup whatever it is.
    sa.Column("promoted_at_ms", sa.BigInteger),
)

standby_entries = sa.Table(
    "standby_entries",
    standby_metadata,
    sa.Column("component", sa.String(32), primary_key=True),
    sa.Column("path", sa.String(512), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("records", sa.Integer, nullable=False, default=0),
)

STANDBY_TABLES = tuple(standby_metadata.tables)
#: ``GET /api/v1/standby`` of a database that never followed a primary.
EMPTY_API: dict[str, Any] = {
    "standby": False,
    "primary": None,
    "currentBackupId": None,
    "currentBackupTime": None,
    "lagSeconds": None,
    "appliedAt": None,
    "lastSyncAt": None,
    "lastError": None,
    "skipped": [],
    "appliedTotal": 0,
    "skippedTotal": 0,
    "promotedAt": None,
}


@dataclasses.dataclass(frozen=True)
class StandbyState:
    primary_cluster: str
    backup_id: str | None
    backup_time: str | None
    applied_at_ms: int | None
    last_sync_at_ms: int | None
    last_error: str | None
    skipped: list[dict[str, str]]
    applied_total: int
    skipped_total: int
    promoted_at_ms: int | None = None

    def lag_seconds(self, now: float | None = None) -> float | None:
        """Now minus the creation time of the backup being served (the standby's RPO)."""
        created = parse_time(self.backup_time)
        if created is None:
            return None
        return max(0.0, (now if now is not None else time.time()) - created.timestamp())

    def to_api(self, standby: bool, now: float | None = None) -> dict[str, Any]:
        lag = self.lag_seconds(now)
        return {
            "standby": standby,
            "primary": self.primary_cluster,
            "currentBackupId": self.backup_id,
            "currentBackupTime": self.backup_time,
            "lagSeconds": None if lag is None else round(lag, 3),
            "appliedAt": _iso_ms(self.applied_at_ms),
            "lastSyncAt": _iso_ms(self.last_sync_at_ms),
            "lastError": self.last_error,
            "skipped": list(self.skipped),
            "appliedTotal": self.applied_total,
            "skippedTotal": self.skipped_total,
            "promotedAt": _iso_ms(self.promoted_at_ms),
        }


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _iso_ms(value: int | None) -> str | None:
    if value is None:
        return None
    moment = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def ensure_tables(engine: sa.Engine) -> None:
    standby_metadata.create_all(engine)


def read_state(engine: sa.Engine) -> StandbyState | None:
    """The recorded state, or None when this database never followed a primary."""
    if not sa.inspect(engine).has_table(standby_state.name):
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(standby_state).where(standby_state.c.id == STATE_ROW)).first()
    if row is None:
        return None
    return StandbyState(
        primary_cluster=row.primary_cluster,
        backup_id=row.backup_id,
        backup_time=row.backup_time,
        applied_at_ms=row.applied_at_ms,
        last_sync_at_ms=row.last_sync_at_ms,
        last_error=row.last_error,
        skipped=list(row.skipped or []),
        applied_total=int(row.applied_total or 0),
        skipped_total=int(row.skipped_total or 0),
        promoted_at_ms=row.promoted_at_ms,
    )


def write_state(conn: sa.Connection, values: Mapping[str, Any]) -> None:
    """Insert or update the one state row with ``values`` (inside the caller's transaction)."""
    exists = conn.execute(
        sa.select(standby_state.c.id).where(standby_state.c.id == STATE_ROW)
    ).first()
    if exists is None:
        defaults = {"skipped": [], "applied_total": 0, "skipped_total": 0}
        conn.execute(standby_state.insert().values(id=STATE_ROW, **{**defaults, **values}))
    else:
        conn.execute(standby_state.update().where(standby_state.c.id == STATE_ROW).values(**values))


def mark_promoted(engine: sa.Engine, now_ms: int) -> bool:
    """A former standby now serves writes: remember it (True when this changed the state)."""
    if not sa.inspect(engine).has_table(standby_state.name):
        return False
    with engine.begin() as conn:
        changed = conn.execute(
            standby_state.update()
            .where(standby_state.c.id == STATE_ROW, standby_state.c.promoted_at_ms.is_(None))
            .values(promoted_at_ms=now_ms)
        )
        return bool(changed.rowcount)


def ledger(conn: sa.Connection, component: str) -> dict[str, str]:
    """Entries of ``component`` present in the standby's stores: path -> sha256 (plaintext)."""
    query = sa.select(standby_entries.c.path, standby_entries.c.sha256).where(
        standby_entries.c.component == component
    )
    return {str(row[0]): str(row[1]) for row in conn.execute(query)}


def remember(conn: sa.Connection, component: str, path: str, sha256: str, records: int) -> None:
    conn.execute(
        standby_entries.delete().where(
            standby_entries.c.component == component, standby_entries.c.path == path
        )
    )
    conn.execute(
        standby_entries.insert().values(
            component=component, path=path, sha256=sha256, records=records
        )
    )


def forget(conn: sa.Connection, component: str, paths: list[str]) -> None:
    for start in range(0, len(paths), 500):
        conn.execute(
            standby_entries.delete().where(
                standby_entries.c.component == component,
                standby_entries.c.path.in_(paths[start : start + 500]),
            )
        )
