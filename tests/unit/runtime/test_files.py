"""File stores: local directory and database blobs behave alike (save, load, delete, prefix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragruntime.errors import NotFound
from ragruntime.store.database import create_engine
from ragruntime.store.files import DatabaseFileStore, FileStore, LocalFileStore


@pytest.fixture(params=["local", "database"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    if request.param == "local":
        return LocalFileStore(tmp_path / "files")
    return DatabaseFileStore(create_engine(f"sqlite:///{tmp_path / 'meta.db'}"))


def test_saved_bytes_load_back_and_deletes_remove_them(files: FileStore) -> None:
    files.save("ds1/a", b"alpha")
    files.save("ds1/b", b"beta")
    files.save("ds2_x/c", b"gamma")
    assert files.load("ds1/a") == b"alpha"
    files.delete("ds1/a")
    with pytest.raises(NotFound):
        files.load("ds1/a")
    files.delete_prefix("ds1/")
    with pytest.raises(NotFound):
        files.load("ds1/b")
    assert files.load("ds2_x/c") == b"gamma"


def test_local_store_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        LocalFileStore(tmp_path / "files").load("../../etc/passwd")
