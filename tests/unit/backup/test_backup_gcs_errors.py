"""A GCS download that fails its checksum is a destination error, never a crash of verify."""

from __future__ import annotations

import os

import pytest
from backup_helpers import DictSnapshot
from google.resumable_media.common import DataCorruption

from ragruntime.backup import crypto
from ragruntime.backup.destinations.base import DestinationError
from ragruntime.backup.destinations.gcs import GCSDestination
from ragruntime.backup.destinations.memory import MemoryDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.backup.repository import Repository
from ragruntime.backup.verify import verify_integrity


class CorruptingBlob:
    def download_as_bytes(self, **_: object) -> bytes:
        raise DataCorruption(None, "Checksum mismatch while downloading")


def corrupting_gcs() -> GCSDestination:
    dest = GCSDestination("gcs", bucket="b", prefix="p", endpoint="http://127.0.0.1:9")
    dest.bucket.blob = lambda *_a, **_k: CorruptingBlob()  # type: ignore[method-assign]
    return dest


def test_data_corruption_becomes_a_destination_error() -> None:
    with pytest.raises(DestinationError, match="DataCorruption"):
        corrupting_gcs().get("data/aa/x")


def test_verify_reports_corruption_instead_of_crashing() -> None:
    keyring = crypto.Keyring.from_keys([os.urandom(32)])
    memory = MemoryDestination("gcs")
    options = BackupOptions(cluster="demo", object_size=1024, chunk_size=256)
    result = run_backup(
        DictSnapshot({("files", "a"): os.urandom(3000)}), [memory], keyring, options
    )
    gcs = corrupting_gcs()

    class Mixed(MemoryDestination):  # manifests and catalog fine, every object corrupt on read
        def get(self, key: str) -> bytes:
            return gcs.get(key) if key.startswith("data/") else memory.get(key)

        def list(self, prefix: str):
            return memory.list(prefix)

    report = verify_integrity(Repository(Mixed("gcs"), "demo"), result.backup_id, keyring)
    assert not report.ok and "DataCorruption" in report.problems[0]
