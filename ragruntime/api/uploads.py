"""Multipart uploads streamed to disk, with the size limit enforced while the body arrives.

The request body is counted chunk by chunk as it is read: the moment it passes
``RAGFLOW_MAX_UPLOAD_BYTES`` the request fails with 413, whatever its ``Content-Length`` said
(or did not say, for a chunked upload). Each file part goes to a temporary file that stays in
memory only up to 1 MiB (Starlette's spooling), so the API's memory does not grow with the
upload; the services then copy the temporary files into the file store.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ragruntime.errors import InvalidArgument, PayloadTooLarge
from ragruntime.services.documents import Upload

MAX_FILES = 1000
MAX_FIELDS = 1000

OPENAPI_MULTIPART = {  # the body as /openapi.json describes it (the route reads it itself)
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                    "required": ["file"],
                }
            }
        },
    }
}


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"Upload exceeds the limit of {limit} bytes")
        yield chunk


@asynccontextmanager
async def received_files(request: Request, limit: int) -> AsyncIterator[list[Upload]]:
    """The ``file`` parts of a multipart request, as spooled files; removed on exit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Upload of {declared} bytes exceeds the limit of {limit} bytes")
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidArgument("No file part! (the body must be multipart/form-data)")
    parser = MultiPartParser(
        request.headers, _limited(request, limit), max_files=MAX_FILES, max_fields=MAX_FIELDS
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidArgument(f"Malformed multipart body: {exc.message}") from None
    try:
        uploads = []
        for value in form.getlist("file"):
            if isinstance(value, UploadFile):
                await value.seek(0)
                uploads.append(Upload(value.filename or "", value.file))
        yield uploads
    finally:
        await form.close()
