"""A standby in cluster mode: PostgreSQL metadata (the flip loads the dump's ``COPY`` data in one
transaction, stored documents travel as ``file_blobs`` rows) and vectors re-inserted from the
backup; a second backup with a document deleted and one added is applied incrementally."""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest
from runtime_helpers import close, open_with, populate, search_results, settings_for
from standby_helpers import backup, region_env, sync

from ragruntime.embedding import Embedder
from ragruntime.ingest.worker import Worker
from ragruntime.services.documents import (
    Upload,
    delete_documents,
    parse_documents,
    upload_documents,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _blobs(runtime, dataset_id: str) -> dict[str, bytes]:
    """Each document's stored bytes (rows of ``file_blobs`` in cluster mode)."""
    documents, _ = runtime.metadata.list_documents(dataset_id)
    return {d.name: runtime.files.load(d.file_key) for d in documents}


def test_a_postgres_standby_follows_a_postgres_primary(
    tmp_path, s3_emulator, postgres_server, milvus_lite_server
) -> None:
    embedder = Embedder.load("all-MiniLM-L6-v2")
    cluster = f"pg-primary-{uuid.uuid4().hex[:6]}"
    (tmp_path / "keyring").write_text(base64.b64encode(os.urandom(32)).decode())
    config = tmp_path / "backup.json"
    config.write_text(
        json.dumps(
            {
                "cluster": cluster,
                "destinations": [s3_emulator.config],
                "keyringFile": str(tmp_path / "keyring"),
            }
        )
    )
    primary = settings_for(
        tmp_path / "primary", postgres_server.create_database("primary"), milvus_lite_server.uri
    )
    standby = settings_for(tmp_path / "standby", postgres_server.create_database("standby"))
    runtime = open_with(primary, embedder)
    dataset_id = populate(runtime)
    expected, files = search_results(runtime, dataset_id), _blobs(runtime, dataset_id)
    close(runtime)
    primary_env = region_env(
        primary.data_dir, primary.vector_uri, cluster, RAGFLOW_DATABASE_URL=primary.database_url
    )
    standby_env = region_env(
        standby.data_dir,
        str(standby.resolved_vector_uri()),
        "standby",
        RAGFLOW_DATABASE_URL=standby.database_url,
    )

    backup(config, primary_env, "--type", "full")
    code, first = sync(config, standby_env)
    assert code == 0 and first["applied"], first
    runtime = open_with(standby, embedder)
    try:
        assert search_results(runtime, dataset_id) == expected and expected[0]
        assert _blobs(runtime, dataset_id) == files
        bees = next(
            d for d in runtime.metadata.list_documents(dataset_id)[0] if d.name == "bees.txt"
        )
    finally:
        close(runtime)

    runtime = open_with(primary, embedder)
    delete_documents(runtime, dataset_id, [bees.id])
    docs = upload_documents(runtime, dataset_id, [Upload("tides.txt", b"Tides follow the moon.")])
    parse_documents(runtime, dataset_id, [d.id for d in docs])
    worker = Worker(runtime)
    while worker.run_once() is not None:
        pass
    expected, files = search_results(runtime, dataset_id), _blobs(runtime, dataset_id)
    close(runtime)
    backup(config, primary_env, "--type", "incremental")
    code, second = sync(config, standby_env)
    assert code == 0 and second["applied"], second
    assert second["bytesFetched"] < first["bytesFetched"]
    runtime = open_with(standby, embedder)
    try:
        assert search_results(runtime, dataset_id) == expected
        assert (
            _blobs(runtime, dataset_id) == files
            and "bees.txt" not in files
            and "tides.txt" in files
        )
    finally:
        close(runtime)
