"""What a destination really holds: the checks behind "commit only what is there".

Called by the engine twice per backup: when choosing which of the parent's objects an
incremental may reuse (``good_objects``: right size *and* right checksum), and before writing a
destination's commit marker (``missing_objects``: every object the manifest references is listed
with the right size, and the right MD5 where the store reports one; ``repair``: copy what is
missing from a destination that has it intact). Listings, not the engine's memory, are the
evidence: a store that lost an acknowledged write (an emulator restarted) is caught here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence

from ragruntime.backup.destinations.base import Destination, DestinationError, ObjectInfo
from ragruntime.backup.format import ObjectRef

log = logging.getLogger(__name__)
DATA_PREFIX = "data/"


def listing(destination: Destination) -> dict[str, ObjectInfo]:
    """Every data object of a destination, by key (one paginated listing)."""
    return {info.key: info for info in destination.list(DATA_PREFIX)}


def matches(ref: ObjectRef, info: ObjectInfo | None) -> bool | None:
    """True/False when the listing settles whether ``info`` is ``ref`` intact; None if unsure.

    Size is always known; the checksum only when both the store (ETag, md5Hash, Content-MD5)
    and the manifest (``md5``, optional in format 1) carry an MD5.
    """
    if info is None or info.size != ref.stored_size:
        return False
    if ref.md5 and info.md5:
        return ref.md5 == info.md5
    return None


def intact(ref: ObjectRef, data: bytes) -> bool:
    return len(data) == ref.stored_size and hashlib.sha256(data).hexdigest() == ref.sha256


def good_objects(
    destination: Destination, refs: Iterable[ObjectRef], stored: Mapping[str, ObjectInfo]
) -> set[str]:
    """Paths of ``refs`` whose size and checksum on ``destination`` are known good.

    Where the listing cannot settle the checksum (a local disk, an old manifest), the object is
    downloaded and its SHA-256 compared: reuse is never decided on presence alone.
    """
    good: set[str] = set()
    for ref in refs:
        verdict = matches(ref, stored.get(ref.path))
        if verdict is None:
            try:
                verdict = intact(ref, destination.get(ref.path))
            except DestinationError:
                verdict = False
        if verdict:
            good.add(ref.path)
    return good


def missing_objects(refs: Iterable[ObjectRef], stored: Mapping[str, ObjectInfo]) -> list[ObjectRef]:
    """The refs a listing shows absent, of the wrong size, or with the wrong MD5."""
    return [ref for ref in refs if matches(ref, stored.get(ref.path)) is False]


def repair(
    destination: Destination, refs: Sequence[ObjectRef], sources: Sequence[Destination]
) -> list[ObjectRef]:
    """Copy each ref from the first source holding it intact; return those no source had."""
    unrepaired = []
    for ref in refs:
        for source in sources:
            try:
                data = source.get(ref.path)
            except DestinationError:
                continue
            if intact(ref, data):
                destination.put(ref.path, data)
                log.warning(
                    "backup object re-uploaded before commit",
                    extra={"destination": destination.name, "object": ref.name},
                )
                break
        else:
            unrepaired.append(ref)
    return unrepaired
