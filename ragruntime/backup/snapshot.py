"""Consistent capture of a runtime's state: metadata database, vectors, documents, configuration.

Called by the CLI (``backup run``) to build the ``Snapshot`` the engine streams out. Consistency
follows the runtime's visibility rule: a chunk is searchable when its document's
``active_generation`` (in the metadata database) names the chunk's generation. So the database
is snapshotted FIRST (SQLite online backup API; PostgreSQL ``pg_dump`` under an exported
snapshot, read by the same transaction; a standby's own tables, ``ragruntime.store.standby``,
are left out), and then exactly the Milvus rows of the generations
active in THAT snapshot are exported, one file per (document, generation). If ingestion flips or
discards a generation in between, the exported row count differs from the snapshot's
``chunk_count`` and the whole capture is retried: a backup never has vectors without their
chunks, or chunks without their vectors. Stored documents are immutable once uploaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa

from ragruntime.backup import pg, redact
from ragruntime.backup.engine import SourceEntry
from ragruntime.backup.format import canonical_json
from ragruntime.backup.settings import DEFAULT_INCLUDE
from ragruntime.config import Settings
from ragruntime.store.database import is_postgres
from ragruntime.store.standby import STANDBY_TABLES
from ragruntime.store.vectors import CHUNK_FIELDS, collection_name

log = logging.getLogger(__name__)
SECRET_SETTINGS = {"api_key", "vector_token"}
CAPTURE_ATTEMPTS = 10  # rounds of database snapshot + export of what changed


class SnapshotError(Exception):
    """The runtime's state could not be captured consistently."""


@dataclasses.dataclass(frozen=True)
class ActiveDocument:
    dataset_id: str
    document_id: str
    generation: int | None
    chunk_count: int
    file_key: str


def sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def configuration_json(settings: Settings) -> bytes:
    """The non-secret settings; every URL loses its user info secrets and secret parameters."""
    raw = settings.model_dump(mode="json")
    for key in SECRET_SETTINGS:
        raw.pop(key, None)
    for key, value in raw.items():
        if isinstance(value, str) and "://" in value:
            raw[key] = redact.redact_url(value)
    return canonical_json(raw)


def _documents_query() -> str:
    return (
        "SELECT dataset_id, id, active_generation, chunk_count, file_key FROM documents "
        "ORDER BY dataset_id, id"
    )


def _active(rows: Any) -> list[ActiveDocument]:
    return [
        ActiveDocument(str(r[0]), str(r[1]), None if r[2] is None else int(r[2]), int(r[3]), r[4])
        for r in rows
    ]


def _snapshot_sqlite(url: str, target: Path) -> tuple[list[ActiveDocument], int]:
    source = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # one consistent point in time, even with writers (WAL)
        for table in STANDBY_TABLES:  # a standby's own bookkeeping is not the cluster's data
            copy.execute(f"DROP TABLE IF EXISTS {table}")
        copy.commit()
        rows = copy.execute(_documents_query()).fetchall()
        datasets = copy.execute("SELECT count(*) FROM datasets").fetchone()[0]
    finally:
        source.close()
        copy.close()
    return _active(rows), int(datasets) + len(rows)


def _snapshot_postgres(
    url: str, target: Path, with_files: bool
) -> tuple[list[ActiveDocument], int]:
    engine = pg.engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            rows = conn.exec_driver_sql(_documents_query()).fetchall()
            datasets = conn.exec_driver_sql("SELECT count(*) FROM datasets").scalar_one()
            exclude = [] if with_files else ["--exclude-table-data=file_blobs"]
            pg.run(
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot_id}",
                    f"--file={target}",
                    *exclude,
                    *(f"--exclude-table={table}" for table in STANDBY_TABLES),
                ],
                url,
            )
            conn.exec_driver_sql("COMMIT")
    finally:
        engine.dispose()
    return _active(rows), int(datasets) + len(rows)


def _chunk_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {field: row[field] for field in CHUNK_FIELDS}
    out["dense"] = [float(x) for x in row["dense"]]
    return out


def export_vectors(client: Any, document: ActiveDocument, target: Path) -> int:
    """Write one generation's rows (sorted by id) as JSON lines; return how many."""
    name = collection_name(document.dataset_id)
    rows: list[dict[str, Any]] = []
    if document.generation is not None and client.has_collection(name):
        client.load_collection(name)  # a reopened collection starts released
        expr = f"document_id == {json.dumps(document.document_id)} and generation == " + str(
            document.generation
        )
        iterator = client.query_iterator(
            name,
            batch_size=1000,
            filter=expr,
            output_fields=[*CHUNK_FIELDS, "dense"],
            consistency_level="Strong",  # collections default to Bounded
        )
        try:
            while batch := iterator.next():
                rows.extend(_chunk_row(r) for r in batch)
        finally:
            iterator.close()
    rows.sort(key=lambda r: r["id"])
    with target.open("wb") as handle:
        for row in rows:
            handle.write(canonical_json(row) + b"\n")
    return len(rows)


class RuntimeSnapshot:
    """A captured state in a temp directory; entries are opened by the engine one at a time."""

    def __init__(self, workdir: Path, settings: Settings) -> None:
        self.workdir = workdir
        self.settings = settings
        self.items: list[SourceEntry] = []
        self.records: dict[str, int] = {}

    def entries(self) -> Iterator[SourceEntry]:
        return iter(self.items)

    def counts(self) -> Mapping[str, int]:
        return dict(self.records)

    def add_file(self, component: str, path: str, source: Path, records: int = 1) -> None:
        def opener(source: Path = source) -> contextlib.AbstractContextManager[BinaryIO]:
            return source.open("rb")

        self.items.append(SourceEntry(component, path, opener, records))
        self.records[component] = self.records.get(component, 0) + records


def _snapshot_database(
    settings: Settings, include: Mapping[str, bool], target: Path
) -> tuple[list[ActiveDocument], int]:
    url = settings.resolved_database_url()
    if is_postgres(url):
        return _snapshot_postgres(url, target, include.get("documents", True))
    return _snapshot_sqlite(url, target)


def _export_round(
    documents: list[ActiveDocument],
    exports: dict[tuple[str, int], tuple[Path, int]],
    client: Any,
    workdir: Path,
) -> list[str]:
    """Export what this database snapshot makes visible; reuse exports of unchanged generations.

    Returns the documents whose vectors no longer match the snapshot (ingestion moved on).
    """
    moved = []
    for doc in documents:
        if doc.generation is None:
            continue
        known = exports.get((doc.document_id, doc.generation))
        if known is not None and known[1] == doc.chunk_count:
            continue
        target = workdir / "vectors" / f"{doc.dataset_id}.{doc.document_id}.{doc.generation}.jsonl"
        count = export_vectors(client, doc, target)
        exports[(doc.document_id, doc.generation)] = (target, count)
        if count != doc.chunk_count:
            moved.append(f"{doc.document_id}: {count} vectors, {doc.chunk_count} chunks")
    return moved


def _capture(
    settings: Settings, include: Mapping[str, bool], workdir: Path, client: Any
) -> RuntimeSnapshot:
    """Rounds of (database snapshot, export of what it shows) until one round sees no change.

    Generations are immutable, so a round only exports the documents that changed since the
    previous one; under steady ingestion the rounds shrink quickly.
    """
    (workdir / "vectors").mkdir()
    exports: dict[tuple[str, int], tuple[Path, int]] = {}
    postgres = is_postgres(settings.resolved_database_url())
    for attempt in range(1, CAPTURE_ATTEMPTS + 1):
        dump = workdir / f"round{attempt}" / ("database.pgdump" if postgres else "ragflow.db")
        dump.parent.mkdir()
        documents, db_records = _snapshot_database(settings, include, dump)
        moved = _export_round(documents, exports, client, workdir) if include["vectors"] else []
        if not moved:
            return _assemble(settings, include, workdir, dump, documents, db_records, exports)
        dump.unlink()
        log.warning(
            "ingestion moved during the snapshot, taking another round",
            extra={"round": attempt, "moved": moved[:5]},
        )
    raise SnapshotError(f"state kept changing during {CAPTURE_ATTEMPTS} snapshot rounds")


def _assemble(
    settings: Settings,
    include: Mapping[str, bool],
    workdir: Path,
    dump: Path,
    documents: list[ActiveDocument],
    db_records: int,
    exports: Mapping[tuple[str, int], tuple[Path, int]],
) -> RuntimeSnapshot:
    snapshot = RuntimeSnapshot(workdir, settings)
    if include["database"]:
        snapshot.add_file("database", dump.name, dump, db_records)
    if include["vectors"]:
        snapshot.records["vectors"] = 0
        for doc in documents:
            if doc.generation is not None:
                path, count = exports[(doc.document_id, doc.generation)]
                entry = f"{doc.dataset_id}/{doc.document_id}@{doc.generation}"
                snapshot.add_file("vectors", entry, path, count)
    if include["documents"] and not is_postgres(settings.resolved_database_url()):
        snapshot.records["files"] = 0
        for doc in documents:
            source = settings.files_dir / doc.file_key
            if not source.is_file():
                raise SnapshotError(f"stored file of document {doc.document_id} is missing")
            snapshot.add_file("files", doc.file_key, source)
    if include["configuration"]:
        config = workdir / "configuration.json"
        config.write_bytes(configuration_json(settings))
        snapshot.add_file("configuration", "settings.json", config)
    return snapshot


def release_lite(uri: str) -> None:
    """Stop this process's embedded Milvus Lite server for ``uri``, freeing the file lock."""
    if uri.startswith(("http://", "https://", "tcp://", "unix:")):
        return
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(uri)


@contextlib.contextmanager
def capture(
    settings: Settings, include: Mapping[str, bool], workdir: str | None = None
) -> Iterator[RuntimeSnapshot]:
    """Capture a consistent snapshot into a temp dir (removed afterwards)."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    uri = settings.resolved_vector_uri()
    try:
        client = MilvusClient(uri=uri, token=settings.vector_token)
    except MilvusException as exc:
        raise SnapshotError(
            f"cannot open the vector store: {exc.message}. An embedded Milvus Lite file can be "
            "opened by one process only: stop the runtime for the backup, or use a Milvus server"
        ) from None
    include = {**DEFAULT_INCLUDE, **include}
    try:
        with tempfile.TemporaryDirectory(prefix="ragflow-snapshot-", dir=workdir) as tmp:
            try:
                snapshot = _capture(settings, include, Path(tmp), client)
            except (sqlite3.Error, sa.exc.SQLAlchemyError, pg.PgToolError, OSError) as exc:
                raise SnapshotError(f"cannot snapshot the runtime: {exc}") from None
            yield snapshot
    finally:
        client.close()
        release_lite(uri)
