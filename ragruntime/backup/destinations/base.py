"""The destination interface every storage backend implements, and its error types.

Called by the engine, verify, restore and prune; implemented by ``local``, ``memory``, ``s3``,
``gcs`` and ``azure``; wrapped by ``retry``. Keys are relative to the repository root
(``<prefix>/<cluster>/``), which each backend adds itself. Provider exceptions are translated into
``NotFound``/``DestinationError`` in the provider's module and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol, runtime_checkable


class DestinationError(Exception):
    """A storage operation failed. ``permanent`` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class NotFound(DestinationError):
    """The key does not exist (permanent: retrying will not make it appear)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """An object as a listing or stat reports it; ``md5`` (hex) only where the store gives one."""

    key: str
    size: int
    md5: str = ""


@runtime_checkable
class Destination(Protocol):
    """Save, load, stat, list and remove whole objects."""

    name: str

    def describe(self) -> str:
        """Where the data goes, without credentials (for logs and status)."""
        ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        ...


def join(*parts: str) -> str:
    """Join key parts with single slashes, ignoring empty parts."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
