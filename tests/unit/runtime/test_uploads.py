"""Uploads are streamed: parts go to spooled temporary files and on into the file store, memory
stays flat whatever the size, and the limit stops a (chunked) body as soon as it is passed."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from ragruntime.api.uploads import received_files
from ragruntime.errors import InvalidArgument, PayloadTooLarge
from ragruntime.store.files import LocalFileStore

BOUNDARY = "upload-test-boundary"
PIECE = 64 * 1024
MIB = 1024 * 1024


def multipart(name: str, size: int) -> Iterator[bytes]:
    """A one-file multipart body of ``size`` payload bytes, generated piece by piece."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    pattern = bytes(range(256)) * (PIECE // 256)
    for _ in range(size // PIECE):
        yield pattern
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


class Body:
    """An ASGI ``receive`` over generated pieces; counts what the app read."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces, self.read = pieces, 0

    async def __call__(self) -> dict[str, Any]:
        piece = next(self.pieces, None)
        if piece is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.read += len(piece)
        return {"type": "http.request", "body": piece, "more_body": True}


def request(body: Body, headers: dict[str, str] | None = None) -> Request:
    raw = {"content-type": f"multipart/form-data; boundary={BOUNDARY}", **(headers or {})}
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in raw.items()],
    }
    return Request(scope, body)


async def store_upload(req: Request, limit: int, files: LocalFileStore) -> list[int]:
    async with received_files(req, limit) as uploads:
        return [files.save(f"ds/{i}", upload.data) for i, upload in enumerate(uploads)]


def test_a_large_upload_goes_to_disk_with_flat_memory(tmp_path: Path) -> None:
    files = LocalFileStore(tmp_path / "files")
    size = 48 * MIB
    tracemalloc.start()
    try:
        sizes = asyncio.run(
            store_upload(request(Body(multipart("big.bin", size))), 64 * MIB, files)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes == [size]
    assert (tmp_path / "files" / "ds" / "0").stat().st_size == size
    assert peak < 6 * MIB, f"peak Python memory {peak / MIB:.1f} MiB for a {size // MIB} MiB upload"


def test_a_chunked_upload_over_the_limit_stops_as_soon_as_it_passes_it(tmp_path: Path) -> None:
    body = Body(multipart("big.bin", 64 * MIB))
    with pytest.raises(PayloadTooLarge):
        asyncio.run(store_upload(request(body), 4 * MIB, LocalFileStore(tmp_path)))
    assert body.read <= 4 * MIB + PIECE + 1024
    assert not list(tmp_path.rglob("ds/*"))


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    body = Body(multipart("big.bin", MIB))
    req = request(body, {"content-length": str(10 * MIB)})
    with pytest.raises(PayloadTooLarge):
        asyncio.run(store_upload(req, 4 * MIB, LocalFileStore(Path("/nonexistent-unused"))))
    assert body.read == 0


def test_a_body_that_is_not_multipart_is_an_argument_error(tmp_path: Path) -> None:
    req = request(Body(iter([b"{}"])), {"content-type": "application/json"})
    with pytest.raises(InvalidArgument, match="multipart"):
        asyncio.run(store_upload(req, MIB, LocalFileStore(tmp_path)))
    broken = request(Body(iter([b"--" + BOUNDARY.encode() + b"\r\nnot a header\r\n\r\n"])))
    with pytest.raises(InvalidArgument, match="Malformed"):
        asyncio.run(store_upload(broken, MIB, LocalFileStore(tmp_path)))
