"""A standby following a primary's backups on S3 (moto): incremental applies, deletions, and
bad backups. A backup whose database object is corrupt fails mid-apply (after its new vectors
were staged) and one made with a key the standby lacks cannot be decrypted: both are reported
in ``skipped``, never retried, and the standby keeps serving the last good backup whole; the
next good one is applied. A standby that can read nothing usable exits 1."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from emulators import Emulator, s3_client
from runtime_helpers import close, open_with, populate, search_results, settings_for
from standby_helpers import SUMMARY_FIELDS, backup, json_line, ragruntime, region_env, sync

from ragruntime.embedding import Embedder
from ragruntime.ingest.worker import Worker
from ragruntime.services.documents import (
    Upload,
    delete_documents,
    parse_documents,
    upload_documents,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load("all-MiniLM-L6-v2")


def _config(directory: Path, emulator: Emulator, cluster: str, key: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    keyring = directory / "keyring"
    keyring.write_text(base64.b64encode(key).decode())
    path = directory / "backup.json"
    path.write_text(
        json.dumps(
            {
                "cluster": cluster,
                "destinations": [emulator.config],
                "keyringFile": str(keyring),
                "retryBackoffSeconds": [0.1, 0.2],
            }
        )
    )
    return path


def _add(settings, embedder, dataset_id: str, name: str, text: str, drop: str = "") -> None:
    """Change the (stopped) primary: upload and ingest one document, optionally delete one."""
    runtime = open_with(settings, embedder)
    try:
        docs = upload_documents(runtime, dataset_id, [Upload(name, text.encode())])
        parse_documents(runtime, dataset_id, [d.id for d in docs])
        worker = Worker(runtime)
        while worker.run_once() is not None:
            pass
        if drop:
            delete_documents(runtime, dataset_id, [drop])
    finally:
        close(runtime)


def _documents(data_dir: Path) -> dict[str, str]:
    with sqlite3.connect(data_dir / "ragflow.db") as conn:
        return dict(conn.execute("SELECT id, name FROM documents").fetchall())


def _results(settings, embedder, dataset_id: str):
    runtime = open_with(settings, embedder)
    try:
        return search_results(runtime, dataset_id)
    finally:
        close(runtime)


def _corrupt_database_object(emulator: Emulator, cluster: str, backup_id: str) -> None:
    client = s3_client(f"http://127.0.0.1:{emulator.port}")
    bucket, prefix = emulator.config["s3"]["bucket"], emulator.config["s3"]["prefix"]
    root = f"{prefix}/{cluster}"
    manifest = json.loads(
        client.get_object(Bucket=bucket, Key=f"{root}/backups/{backup_id}/manifest.json")[
            "Body"
        ].read()
    )
    (entry,) = [e for e in manifest["entries"] if e["component"] == "database"]
    ref = entry["objects"][-1]
    key = f"{root}/data/{ref['name'][:2]}/{ref['name']}.{ref['key']}"
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))


def test_bad_backups_are_skipped_and_the_last_good_one_keeps_serving(
    tmp_path, s3_emulator, embedder
) -> None:
    cluster = f"primary-{uuid.uuid4().hex[:8]}"
    key = os.urandom(32)
    config = _config(tmp_path / "primary-config", s3_emulator, cluster, key)
    foreign = _config(tmp_path / "foreign-config", s3_emulator, cluster, os.urandom(32))
    primary = settings_for(tmp_path / "primary")
    runtime = open_with(primary, embedder)
    dataset_id = populate(runtime)
    close(runtime)
    primary_env = region_env(primary.data_dir, str(primary.resolved_vector_uri()), cluster)
    standby_dir = tmp_path / "standby"
    standby = settings_for(standby_dir)  # a Milvus Lite file, opened by one process at a time
    standby_env = region_env(standby_dir, str(standby.resolved_vector_uri()), "standby")

    first = backup(config, primary_env, "--type", "full")
    termination = tmp_path / "termination-log"
    code, applied = sync(config, standby_env, termination)
    assert code == 0, applied
    assert set(applied) == SUMMARY_FIELDS and json.loads(termination.read_text()) == applied
    assert applied["applied"] == applied["current"] == applied["newestAvailable"] == first
    assert applied["upToDate"] is True and applied["skipped"] == []
    assert applied["chunksFetched"] > 0 and applied["bytesFetched"] > 0
    good = _results(standby, embedder, dataset_id)
    assert good == _results(primary, embedder, dataset_id) and good[0]
    served = _documents(standby_dir)

    # A new document, and the backup's database object flipped: the apply stages the new
    # vectors, then fails on the database; nothing of it becomes visible. And a newer backup
    # made with a key the standby's keyring lacks.
    _add(primary, embedder, dataset_id, "comets.txt", "Comets grow tails of gas near the sun.")
    corrupt = backup(config, primary_env, "--type", "full")
    _corrupt_database_object(s3_emulator, cluster, corrupt)
    undecryptable = backup(foreign, primary_env, "--type", "full")
    code, skipped = sync(config, standby_env)
    assert code == 0, skipped
    assert skipped["applied"] is None and skipped["current"] == first
    assert skipped["newestAvailable"] == undecryptable and skipped["upToDate"] is True
    reasons = {s["backupId"]: s["reason"] for s in skipped["skipped"]}
    assert list(reasons) == [undecryptable, corrupt], reasons  # newest first
    assert "checksum" in reasons[corrupt]
    assert _documents(standby_dir) == served
    assert _results(standby, embedder, dataset_id) == good

    # The next good backup (a document added, one deleted on the primary) is applied whole.
    bees = next(i for i, name in served.items() if name == "bees.txt")
    _add(primary, embedder, dataset_id, "tides.txt", "Tides follow the moon.", drop=bees)
    latest = backup(config, primary_env, "--type", "full")
    code, applied = sync(config, standby_env)  # the skipped ones are not tried again
    assert code == 0 and applied["applied"] == latest and applied["skipped"] == [], applied
    names = set(_documents(standby_dir).values())
    assert names == set(_documents(primary.data_dir).values())
    assert "bees.txt" not in names and {"comets.txt", "tides.txt"} <= names
    assert _results(standby, embedder, dataset_id) == _results(primary, embedder, dataset_id)
    runtime = open_with(standby, embedder)
    try:
        assert (
            runtime.vectors.client.query(
                f"ragflow_ds_{dataset_id}",
                filter=f'document_id == "{bees}"',
                output_fields=["count(*)"],
                consistency_level="Strong",
            )[0]["count(*)"]
            == 0
        )
    finally:
        close(runtime)

    code, again = sync(config, standby_env)
    assert code == 0 and again["applied"] is None and again["upToDate"] is True
    assert again["chunksFetched"] == 0 and again["current"] == latest

    # A fresh standby whose keyring opens none of the backups has nothing usable: exit 1.
    nobody = _config(tmp_path / "nobody-config", s3_emulator, cluster, os.urandom(32))
    lost_env = region_env(tmp_path / "lost", str(tmp_path / "lost" / "milvus.db"), "lost")
    result = ragruntime(["standby", "sync", "--config", str(nobody)], lost_env)
    summary = json_line(result)
    assert result.returncode == 1 and summary["applied"] is None, summary
    assert "no usable backup" in summary["error"] and summary["upToDate"] is False
