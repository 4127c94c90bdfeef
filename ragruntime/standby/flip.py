"""The switch of a standby's metadata database to a backup's, in ONE transaction.

Called by ``ragruntime.standby.apply`` once every vector and file the backup needs is staged
(invisible: the current metadata names none of them). Inside one transaction the backup's
tables are loaded into temporary ``stage_*`` tables (SQLite: read from the downloaded database
file; PostgreSQL: the ``COPY`` data of the dump, streamed by ``pg_restore --data-only``), the
primary's tables are replaced from them, every dataset's ``version`` moves past the version the
standby served (so query caches and each API process's query-side index, which are keyed by it,
resync), and the caller records the applied backup. Readers see the old backup or the new one,
never a mix: SQLite (WAL) and PostgreSQL (MVCC) readers keep their snapshot until the commit.

Replaced: ``datasets``, ``documents``, ``ingest_tasks`` wholly; ``file_blobs`` by key (blobs are
immutable); ``api_keys`` created through the API (``source = 'api'``) — the standby's own keys
(environment, Secrets) stay.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa

from ragruntime.backup import pg
from ragruntime.store.schema import datasets, documents, metadata_obj

REPLACED = ("datasets", "documents", "ingest_tasks")  # parents first
STAGED = (*REPLACED, "file_blobs", "api_keys")
INSERT_BATCH = 500


class FlipError(Exception):
    """The backup's database could not be loaded; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class Visible:
    """What a metadata database makes visible: searchable generations, files, datasets."""

    generations: frozenset[str]  # vector entry paths "<dataset>/<document>@<generation>"
    file_keys: frozenset[str]
    datasets: frozenset[str]


def generation_path(dataset_id: str, document_id: str, generation: int) -> str:
    """The backup's name of one generation's vectors (``ragruntime.backup.snapshot``)."""
    return f"{dataset_id}/{document_id}@{generation}"


def visible(conn: sa.Connection) -> Visible:
    rows = conn.execute(
        sa.select(
            documents.c.dataset_id,
            documents.c.id,
            documents.c.active_generation,
            documents.c.file_key,
        )
    ).all()
    return Visible(
        generations=frozenset(
            generation_path(str(r[0]), str(r[1]), int(r[2])) for r in rows if r[2] is not None
        ),
        file_keys=frozenset(str(r[3]) for r in rows),
        datasets=frozenset(str(r[0]) for r in conn.execute(sa.select(datasets.c.id))),
    )


def _columns(table: str) -> list[str]:
    return [c.name for c in metadata_obj.tables[table].columns]


class StagedDatabase(Protocol):
    def load(self, conn: sa.Connection) -> None:
        """Create and fill ``stage_<table>`` for every table of ``STAGED`` on ``conn``."""
        ...


class SqliteStage:
    """A backup's SQLite database file, downloaded next to the live one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, conn: sa.Connection) -> None:
        source = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            present = {r[0] for r in source.execute("SELECT name FROM sqlite_master")}
            for table in STAGED:
                conn.exec_driver_sql(
                    f"CREATE TEMP TABLE stage_{table} AS SELECT * FROM main.{table} WHERE 0"
                )
                if table not in present:
                    continue
                own = {r[1] for r in source.execute(f"PRAGMA table_info({table})")}
                columns = [c for c in _columns(table) if c in own]
                names = ", ".join(columns)
                insert = (
                    f"INSERT INTO temp.stage_{table} ({names}) "
                    f"VALUES ({', '.join('?' for _ in columns)})"
                )
                cursor = source.execute(f"SELECT {names} FROM {table}")
                while rows := cursor.fetchmany(INSERT_BATCH):
                    conn.exec_driver_sql(insert, rows)
        except sqlite3.DatabaseError as exc:
            raise FlipError(f"the backup's database is unreadable: {exc}") from None
        finally:
            source.close()


class PostgresStage:
    """A backup's ``pg_dump`` archive: its table data is streamed with ``COPY``."""

    def __init__(self, dump: Path, url: str) -> None:
        self.dump, self.url = dump, url

    def load(self, conn: sa.Connection) -> None:
        for table in STAGED:
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE stage_{table} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
        driver = conn.connection.driver_connection
        if driver is None:  # a checked-in connection: never inside an open transaction
            raise FlipError("the database connection is closed")
        cursor = driver.cursor()  # psycopg: same transaction
        args = ["pg_restore", "--data-only", *(f"--table={t}" for t in STAGED), "--file=-"]
        with subprocess.Popen(
            [*args, str(self.dump)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=pg.libpq_env(self.url),
        ) as process:
            assert process.stdout is not None
            for table, columns, lines in _copy_blocks(process.stdout):
                if table not in STAGED:
                    raise FlipError(f"unexpected table {table!r} in the backup's dump")
                with cursor.copy(f"COPY stage_{table} ({columns}) FROM STDIN") as copy:
                    for line in lines:
                        copy.write(line)
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            if process.wait() != 0:
                raise FlipError(f"pg_restore cannot read the backup's dump: {error.strip()}")


def _copy_blocks(stream: IO[bytes]) -> Iterator[tuple[str, str, Iterator[bytes]]]:
    """``(table, column list, data lines)`` of each ``COPY ... FROM stdin;`` in a SQL script.

    The caller must consume each block's lines before asking for the next block.
    """
    for line in stream:
        if not line.startswith(b"COPY "):
            continue
        head = line.decode()
        table = head.split()[1].split(".")[-1].strip('"')
        columns = head[head.index("(") + 1 : head.rindex(")")]

        def data(stream: IO[bytes] = stream) -> Iterator[bytes]:
            for row in stream:
                if row in (b"\\.\n", b"\\.\r\n"):
                    return
                yield row

        yield table, columns, data()


def _replace(conn: sa.Connection) -> None:
    for table in reversed(REPLACED):
        conn.exec_driver_sql(f"DELETE FROM {table}")
    for table in REPLACED:
        names = ", ".join(_columns(table))
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) SELECT {names} FROM stage_{table}")
    conn.exec_driver_sql(
        "DELETE FROM file_blobs WHERE key NOT IN (SELECT key FROM stage_file_blobs)"
    )
    conn.exec_driver_sql(
        "INSERT INTO file_blobs (key, data) SELECT key, data FROM stage_file_blobs "
        "WHERE key NOT IN (SELECT key FROM file_blobs)"
    )
    names = ", ".join(_columns("api_keys"))
    conn.exec_driver_sql("DELETE FROM api_keys WHERE source = 'api'")
    conn.exec_driver_sql(
        f"INSERT INTO api_keys ({names}) SELECT {names} FROM stage_api_keys "
        "WHERE source = 'api' AND id NOT IN (SELECT id FROM api_keys) "
        "AND digest NOT IN (SELECT digest FROM api_keys)"
    )


def _bump_versions(conn: sa.Connection, served: dict[str, int]) -> None:
    """Every dataset's version moves past the one served before (caches and indexes resync)."""
    for dataset_id, version in conn.execute(sa.select(datasets.c.id, datasets.c.version)).all():
        wanted = max(int(version), served.get(str(dataset_id), 0) + 1)
        if wanted != version:
            conn.execute(
                datasets.update().where(datasets.c.id == dataset_id).values(version=wanted)
            )


def flip(
    engine: sa.Engine,
    staged: StagedDatabase,
    record: Callable[[sa.Connection, Visible, Visible], None],
) -> tuple[Visible, Visible]:
    """Replace the primary's tables by the staged backup's and call ``record`` — one commit.

    Returns what was visible before and after, for the caller's garbage collection.
    """
    with engine.begin() as conn:
        before = visible(conn)
        served = {
            str(r[0]): int(r[1]) for r in conn.execute(sa.select(datasets.c.id, datasets.c.version))
        }
        staged.load(conn)
        _replace(conn)
        _bump_versions(conn, served)
        after = visible(conn)
        record(conn, before, after)
        for table in STAGED:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS stage_{table}")
    return before, after
