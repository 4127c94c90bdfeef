"""Restore target for a runtime: writes a backup's entries into the stores named by Settings.

Used by ``ragruntime backup restore``, the validation job's restore test (a scratch data dir)
and the restore Job that bootstraps a RagFlowCluster. The target must be empty (no datasets, no
collections, no stored files) unless ``force``; then the database is restored (file copy for
SQLite, ``pg_restore --clean`` for PostgreSQL), vectors re-inserted through the runtime's
``MilvusVectorStore`` (Milvus rebuilds BM25 from the text), files written back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ragruntime.backup import pg
from ragruntime.backup.format import Entry, Manifest
from ragruntime.backup.restore import TargetNotEmpty
from ragruntime.backup.snapshot import release_lite, sqlite_path
from ragruntime.config import Settings
from ragruntime.store.database import is_postgres
from ragruntime.store.schema import metadata_obj
from ragruntime.store.vectors import MilvusVectorStore, chunk_from_row

INSERT_BATCH = 500
RESTORED_CONFIGURATION = "restored-configuration.json"


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for piece in chunks:
        pending += piece
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line)
    if pending:
        yield pending


class RuntimeSink:
    """Restores into the database, vector store and files named by ``settings``."""

    def __init__(self, settings: Settings, *, archive_check_only: bool = False) -> None:
        """``archive_check_only``: a PostgreSQL dump that has no PostgreSQL target (the
        validation job's scratch runtime) is checked with ``pg_restore --list`` instead of being
        restored; the database is then listed in ``unchecked`` and has no restored count."""
        self.settings = settings
        self.url = settings.resolved_database_url()
        self.postgres = is_postgres(self.url)
        self.archive_check_only = archive_check_only
        self.unchecked: set[str] = set()
        self.vectors: MilvusVectorStore | None = None
        self.files_written = 0
        self._wrote_database = self._wrote_vectors = False

    # --- emptiness -------------------------------------------------------------------------

    def _database_rows(self) -> int:
        if not self.postgres:
            path = sqlite_path(self.url)
            if not path.exists():
                return 0
            with contextlib.closing(sqlite3.connect(path)) as conn:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                if "datasets" not in tables:
                    return 0
                return int(conn.execute("SELECT count(*) FROM datasets").fetchone()[0])
        engine = pg.engine(self.url)
        try:
            with engine.connect() as conn:
                if conn.exec_driver_sql("SELECT to_regclass('datasets')").scalar() is None:
                    return 0
                return int(conn.exec_driver_sql("SELECT count(*) FROM datasets").scalar_one())
        finally:
            engine.dispose()

    def _vector_store(self, dimension: int = 0) -> MilvusVectorStore:
        if self.vectors is None or (dimension and self.vectors.dimension != dimension):
            if self.vectors is not None:
                self.vectors.close()
            uri = self.settings.resolved_vector_uri()
            self.vectors = MilvusVectorStore(uri, self.settings.vector_token, dimension)
        return self.vectors

    def _collections(self) -> list[str]:
        client = self._vector_store().client
        return [n for n in client.list_collections() if n.startswith("ragflow_ds_")]

    def _stored_files(self) -> list[Path]:
        root = self.settings.files_dir
        return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []

    def prepare(self, force: bool) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        occupied = {
            "database datasets": self._database_rows(),
            "vector collections": len(self._collections()),
            "stored files": len(self._stored_files()),
        }
        found = {k: v for k, v in occupied.items() if v}
        if found and not force:
            detail = ", ".join(f"{v} {k}" for k, v in found.items())
            raise TargetNotEmpty(f"the restore target is not empty ({detail}); use --force")
        client = self._vector_store().client
        for name in self._collections():
            client.drop_collection(name)
        if self.settings.files_dir.exists():
            shutil.rmtree(self.settings.files_dir)

    # --- entries ---------------------------------------------------------------------------

    def write(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        if entry.component == "database":
            if entry.path.endswith(".pgdump") and not self.postgres and self.archive_check_only:
                self._check_archive(chunks)
                return
            if entry.path.endswith(".pgdump") != self.postgres:
                raise ValueError(
                    f"backup database {entry.path} does not fit the target database "
                    f"({'PostgreSQL' if self.postgres else 'SQLite'}); for validation set "
                    "RAGFLOW_BACKUP_SCRATCH_DATABASE_URL to a scratch PostgreSQL database"
                )
            self._restore_database(chunks)
        elif entry.component == "vectors":
            self._restore_vectors(entry.path.split("/", 1)[0], chunks)
        elif entry.component == "files":
            self._write_file(self.settings.files_dir / entry.path, chunks)
            self.files_written += 1
        elif entry.component == "configuration":
            self._write_file(self.settings.data_dir / RESTORED_CONFIGURATION, chunks)
        else:
            raise ValueError(f"unknown component {entry.component!r} in the backup")

    def _write_file(self, target: Path, chunks: Iterator[bytes]) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".restore-")
        with os.fdopen(fd, "wb") as handle:
            for piece in chunks:
                handle.write(piece)
        os.replace(tmp, target)
        return target

    def _check_archive(self, chunks: Iterator[bytes]) -> None:
        """Read the whole dump (authenticating every object) and let pg_restore parse its TOC."""
        with tempfile.TemporaryDirectory(prefix="ragflow-verify-") as tmp:
            dump = self._write_file(Path(tmp) / "database.pgdump", chunks)
            pg.run(["pg_restore", "--list", str(dump)], "postgresql:///unused")
        self.unchecked.add("database")

    def _restore_database(self, chunks: Iterator[bytes]) -> None:
        self._wrote_database = True
        if not self.postgres:
            path = sqlite_path(self.url)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._write_file(path, chunks)
            return
        with tempfile.TemporaryDirectory(prefix="ragflow-restore-") as tmp:
            dump = self._write_file(Path(tmp) / "database.pgdump", chunks)
            pg.run(
                [
                    "pg_restore",
                    "--no-owner",
                    "--no-privileges",
                    "--clean",
                    "--if-exists",
                    "--exit-on-error",
                    "--single-transaction",
                    f"--dbname={pg.libpq_env(self.url)['PGDATABASE']}",
                    str(dump),
                ],
                self.url,
            )

    def _restore_vectors(self, dataset_id: str, chunks: Iterator[bytes]) -> None:
        self._wrote_vectors = True
        batch: list[Mapping[str, Any]] = []
        for line in _lines(chunks):
            batch.append(json.loads(line))
            if len(batch) >= INSERT_BATCH:
                self._insert(dataset_id, batch)
                batch = []
        self._insert(dataset_id, batch)

    def _insert(self, dataset_id: str, rows: list[Mapping[str, Any]]) -> None:
        if not rows:
            return
        store = self._vector_store(len(rows[0]["dense"]))
        store.insert(
            dataset_id, [chunk_from_row(dataset_id, r) for r in rows], [r["dense"] for r in rows]
        )

    # --- result ----------------------------------------------------------------------------

    def finish(self, manifest: Manifest) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        if "database" in manifest.counts and "database" not in self.unchecked:
            counts["database"] = self._database_records()
        if "vectors" in manifest.counts:
            client = self._vector_store().client
            counts["vectors"] = 0
            for name in self._collections():
                client.load_collection(name)
                rows = client.query(
                    name, filter="", output_fields=["count(*)"], consistency_level="Strong"
                )
                counts["vectors"] += int(rows[0]["count(*)"])
        if "files" in manifest.counts:
            counts["files"] = self.files_written
        if "configuration" in manifest.counts:
            counts["configuration"] = 1
        if self.vectors is not None:
            self.vectors.close()
            self.vectors = None
            release_lite(self.settings.resolved_vector_uri())
        return counts

    def discard(self) -> None:
        """Undo a failed restore: drop what this sink wrote (database, collections, files)."""
        if self.vectors is not None or self._wrote_vectors:
            client = self._vector_store().client
            for name in self._collections():
                client.drop_collection(name)
            if self.vectors is not None:
                self.vectors.close()
                self.vectors = None
            release_lite(self.settings.resolved_vector_uri())
        if self.settings.files_dir.exists():
            shutil.rmtree(self.settings.files_dir)
        (self.settings.data_dir / RESTORED_CONFIGURATION).unlink(missing_ok=True)
        if self._wrote_database:
            self._drop_database()
        self._wrote_vectors = self._wrote_database = False
        self.files_written = 0

    def _drop_database(self) -> None:
        if not self.postgres:
            path = sqlite_path(self.url)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        engine = pg.engine(self.url)
        try:
            metadata_obj.drop_all(engine)
        finally:
            engine.dispose()

    def _database_records(self) -> int:
        query = "SELECT (SELECT count(*) FROM datasets) + (SELECT count(*) FROM documents)"
        if not self.postgres:
            with contextlib.closing(sqlite3.connect(sqlite_path(self.url))) as conn:
                return int(conn.execute(query).fetchone()[0])
        engine = pg.engine(self.url)
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql(query).scalar_one())
        finally:
            engine.dispose()
