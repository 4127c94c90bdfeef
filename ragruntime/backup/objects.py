"""Content-addressed, encrypted chunks: cutting streams into objects and reading them back.

No network I/O: the engine passes in where sealed objects go, verify/restore pass in how to fetch
them. An object's name is a keyed hash (HMAC) of its plaintext, so equal chunks are stored once,
within a backup and across the incrementals of a chain, and names reveal nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from ragruntime.backup import crypto
from ragruntime.backup.format import Entry, ObjectRef

DEFAULT_OBJECT_SIZE = 4 << 20  # 4 MiB: few requests per GB, small memory per in-flight object


class IntegrityError(Exception):
    """A stored object or entry does not match its manifest."""


def read_pieces(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """Yield ``size``-byte pieces of a binary stream (the last may be shorter; none if empty)."""
    while True:
        piece = stream.read(size)
        if not piece:
            return
        yield piece


@dataclasses.dataclass(frozen=True)
class SealedObject:
    ref: ObjectRef
    data: bytes


class ObjectWriter:
    """Turns the plaintext pieces of a backup's entries into object references.

    ``reusable`` maps names of objects already stored (e.g. by the parent backup) to their refs;
    those, and repeats within this backup, are referenced without being stored again.
    """

    def __init__(
        self,
        *,
        backup_id: str,
        data_key: bytes,
        name_key: bytes,
        reusable: Mapping[str, ObjectRef],
        chunk_size: int = crypto.DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.backup_id = backup_id
        self.data_key = data_key
        self.name_key = name_key
        self.known: dict[str, ObjectRef] = dict(reusable)
        self.chunk_size = chunk_size
        self.reused_keys: set[str] = set()

    def write_entry(
        self,
        *,
        component: str,
        path: str,
        pieces: Iterator[bytes],
        store: Callable[[SealedObject], None],
        records: int = 0,
    ) -> Entry:
        digest = hashlib.sha256()
        size = 0
        refs: list[ObjectRef] = []
        for piece in pieces:
            digest.update(piece)
            size += len(piece)
            name = crypto.object_name(self.name_key, piece)
            ref = self.known.get(name)
            if ref is None:
                context = crypto.Context(self.backup_id, component, name)
                sealed = crypto.seal(self.data_key, context, piece, self.chunk_size)
                ref = ObjectRef(
                    name=name,
                    key=self.backup_id,
                    component=component,
                    plain_size=len(piece),
                    stored_size=len(sealed),
                    sha256=hashlib.sha256(sealed).hexdigest(),
                    md5=hashlib.md5(sealed, usedforsecurity=False).hexdigest(),
                )
                self.known[name] = ref
                store(SealedObject(ref, sealed))
            elif ref.key != self.backup_id:
                self.reused_keys.add(ref.key)
            refs.append(ref)
        return Entry(component, path, size, digest.hexdigest(), tuple(refs), records)


def open_object(ref: ObjectRef, stored: bytes, data_keys: Mapping[str, bytes]) -> bytes:
    """Check an object's stored checksum, then authenticate and decrypt it."""
    if len(stored) != ref.stored_size or hashlib.sha256(stored).hexdigest() != ref.sha256:
        raise IntegrityError(
            f"object {ref.name} has the wrong checksum or size "
            f"({len(stored)} bytes, expected {ref.stored_size}): corrupted or truncated"
        )
    key = data_keys.get(ref.key)
    if key is None:
        raise IntegrityError(f"object {ref.name} needs data key {ref.key}, not in the manifest")
    try:
        plain = crypto.open_sealed(key, crypto.Context(ref.key, ref.component, ref.name), stored)
    except crypto.CryptoError as exc:
        raise IntegrityError(str(exc)) from None
    if len(plain) != ref.plain_size:
        raise IntegrityError(f"object {ref.name} decrypted to an unexpected size")
    return plain


def prefetch(
    refs: Iterable[ObjectRef], fetch: Callable[[ObjectRef], bytes], depth: int
) -> Iterator[bytes]:
    """``fetch`` each ref, ``depth`` downloads ahead, in order (memory: depth objects)."""
    if depth <= 1:
        yield from (fetch(ref) for ref in refs)
        return
    remaining = iter(refs)
    with ThreadPoolExecutor(depth, thread_name_prefix="fetch") as pool:
        pending = deque(pool.submit(fetch, ref) for ref in itertools.islice(remaining, depth))
        while pending:
            data = pending.popleft().result()
            following = next(remaining, None)
            if following is not None:
                pending.append(pool.submit(fetch, following))
            yield data


def read_entry(
    entry: Entry,
    fetch: Callable[[ObjectRef], bytes],
    data_keys: Mapping[str, bytes],
    *,
    depth: int = 1,
) -> Iterator[bytes]:
    """Yield an entry's plaintext object by object; the entry checksum is checked at the end."""
    digest = hashlib.sha256()
    size = 0
    for ref, stored in zip(entry.objects, prefetch(entry.objects, fetch, depth), strict=True):
        plain = open_object(ref, stored, data_keys)
        digest.update(plain)
        size += len(plain)
        yield plain
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise IntegrityError(f"entry {entry.component}/{entry.path} does not match its checksum")
