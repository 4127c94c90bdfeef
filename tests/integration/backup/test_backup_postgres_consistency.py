"""PostgreSQL metadata (pg_dump under an exported snapshot → pg_restore) and consistency while
ingestion keeps re-activating generations during the backup.

The source runtime uses a real PostgreSQL database and a Milvus server process (so the backup
process and the in-test ingestion share the stores); the restore goes into a fresh database and
a fresh Milvus Lite file. In the restored state every active (document, generation) has exactly
its chunk_count vectors, no vector belongs to an inactive generation, and search answers the
same as the source (chunk ids differ: re-ingestion mints new generations of the same chunks).
"""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from runtime_helpers import (
    backup_cli,
    close,
    open_with,
    populate,
    search_results,
    settings_for,
    summary,
    write_backup_config,
)

from ragruntime.embedding import Embedder
from ragruntime.ingest.worker import Worker
from ragruntime.services.documents import parse_documents
from ragruntime.store.database import normalise_url
from ragruntime.store.vectors import collection_name

pytestmark = pytest.mark.integration


def active_generations(database_url: str) -> list[tuple[str, str, int, int]]:
    engine = sa.create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT dataset_id, id, active_generation, chunk_count FROM documents "
                "WHERE active_generation IS NOT NULL"
            ).fetchall()
    finally:
        engine.dispose()
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def test_postgres_backup_taken_during_ingestion_restores_a_consistent_state(
    postgres_server, milvus_lite_server, s3_emulator, tmp_path
) -> None:
    embedder = Embedder.load("all-MiniLM-L6-v2")
    source = settings_for(
        tmp_path / "source", postgres_server.create_database("src"), milvus_lite_server.uri
    )
    runtime = open_with(source, embedder)
    dataset_id = populate(runtime)
    expected = search_results(runtime, dataset_id, with_ids=False)
    documents = [d for d, *_ in [(row[1],) for row in active_generations(source.database_url)]]

    stop = threading.Event()
    rounds = [0]

    def reingest() -> None:  # keeps flipping generations and discarding the old ones
        worker = Worker(runtime)
        while not stop.is_set():
            parse_documents(runtime, dataset_id, documents)
            while worker.run_once() is not None:
                pass
            rounds[0] += 1

    thread = threading.Thread(target=reingest, daemon=True)
    thread.start()
    config = write_backup_config(
        tmp_path, [s3_emulator.config], cluster=f"pg-{uuid.uuid4().hex[:8]}"
    )
    try:
        run = backup_cli(["run"], source, config)
    finally:
        stop.set()
        thread.join(timeout=120)
    result = summary(run)
    assert run.returncode == 0 and result["succeeded"], run.stderr[-3000:]
    assert rounds[0] >= 1, "ingestion must have been running during the backup"
    close(runtime)

    target = settings_for(tmp_path / "target", postgres_server.create_database("dst"))
    restore = backup_cli(["restore", "--backup-id", result["id"]], target, config)
    assert restore.returncode == 0, restore.stderr[-3000:]
    assert summary(restore)["counts"] == result["counts"]

    # validation without a scratch PostgreSQL: the dump is authenticated and parsed, the rest
    # restored into a scratch runtime; with one, the database is restored and counted too
    verify = summary(backup_cli(["verify", "--tests", "restore"], source, config))
    assert verify["ok"] and verify["details"][0]["unchecked"] == ["database"], verify
    scratch = {"RAGFLOW_BACKUP_SCRATCH_DATABASE_URL": postgres_server.create_database("scratch")}
    full = summary(backup_cli(["verify", "--tests", "restore"], source, config, extra_env=scratch))
    assert full["ok"] and "unchecked" not in full["details"][0], full

    restored = open_with(target, embedder)
    try:
        client = restored.vectors.client
        active = active_generations(target.database_url)
        assert len(active) == len(documents)
        for dataset, document, generation, chunk_count in active:
            rows = client.query(
                collection_name(dataset),
                filter=f'document_id == "{document}" and generation == {generation}',
                output_fields=["count(*)"],
            )
            assert rows[0]["count(*)"] == chunk_count > 0
        total = client.query(collection_name(dataset_id), filter="", output_fields=["count(*)"])
        assert total[0]["count(*)"] == sum(a[3] for a in active)
        assert search_results(restored, dataset_id, with_ids=False) == expected
        assert restored.files.load(restored.metadata.list_documents(dataset_id)[0][0].file_key)
    finally:
        close(restored)
