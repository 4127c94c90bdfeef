"""Uploaded document bytes: a ``FileStore`` Protocol, a local-directory and a database backend.

The API saves uploads here and the worker reads them back. In embedded mode the bytes live
under ``<data_dir>/files/<dataset>/<document>``; when the metadata database is PostgreSQL the
API and worker pods share no disk, so the bytes go into the ``file_blobs`` table instead.
Chosen by ``ragruntime.runtime.open_runtime``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

import sqlalchemy as sa

from ragruntime.errors import NotFound
from ragruntime.store.schema import file_blobs

COPY_BUFFER = 1024 * 1024

Content = bytes | BinaryIO
"""What ``save`` takes: bytes, or a readable binary file (copied in 1 MiB pieces)."""


class FileStore(Protocol):
    def save(self, key: str, data: Content) -> int: ...
    def load(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...


class LocalFileStore:
    """Files in a directory, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise NotFound(f"invalid file key {key!r}")
        return path

    def save(self, key: str, data: Content) -> int:
        """Store ``data`` under ``key``; returns its size. Memory stays flat for a file."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(data, bytes):
                    handle.write(data)
                else:
                    shutil.copyfileobj(data, handle, COPY_BUFFER)
                size = handle.tell()
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def load(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"stored file {key!r} is missing") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        """Remove every file under ``prefix`` (a dataset's folder)."""
        shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)


class DatabaseFileStore:
    """Files as rows of ``file_blobs`` in the shared metadata database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def save(self, key: str, data: Content) -> int:
        """Store ``data`` as one row (the database driver needs the whole value in memory)."""
        blob = data if isinstance(data, bytes) else data.read()
        with self.engine.begin() as conn:
            conn.execute(file_blobs.delete().where(file_blobs.c.key == key))
            conn.execute(file_blobs.insert().values(key=key, data=blob))
        return len(blob)

    def load(self, key: str) -> bytes:
        with self.engine.connect() as conn:
            data = conn.execute(
                sa.select(file_blobs.c.data).where(file_blobs.c.key == key)
            ).scalar()
        if data is None:
            raise NotFound(f"stored file {key!r} is missing")
        return bytes(data)

    def delete(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(file_blobs.delete().where(file_blobs.c.key == key))

    def delete_prefix(self, prefix: str) -> None:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.engine.begin() as conn:
            conn.execute(
                file_blobs.delete().where(file_blobs.c.key.like(escaped + "%", escape="\\"))
            )
