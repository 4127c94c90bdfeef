"""The behaviour every destination must have; run against each backend (restic's shared suite).

Used by the unit tests (memory, local) and the integration tests (moto, fake-gcs, Azurite).
"""

from __future__ import annotations

import os

import pytest

from ragruntime.backup.destinations.base import Destination, NotFound


def check_destination_contract(dest: Destination) -> None:
    body = os.urandom(3000)
    dest.put("data/ab/abc.k1", body)
    dest.put("data/cd/cde.k1", b"")
    dest.put("backups/b1/manifest.json", b"{}")
    assert dest.get("data/ab/abc.k1") == body
    assert dest.get("data/cd/cde.k1") == b""
    info = dest.stat("data/ab/abc.k1")
    assert info is not None and info.size == 3000
    assert dest.stat("data/zz/missing") is None
    with pytest.raises(NotFound):
        dest.get("data/zz/missing")
    assert sorted(i.key for i in dest.list("data/")) == ["data/ab/abc.k1", "data/cd/cde.k1"]
    assert [i.key for i in dest.list("backups/")] == ["backups/b1/manifest.json"]
    dest.put("data/ab/abc.k1", b"replaced")
    assert dest.get("data/ab/abc.k1") == b"replaced"
    dest.delete("data/ab/abc.k1")
    dest.delete("data/ab/abc.k1")  # deleting a missing key is fine
    assert dest.stat("data/ab/abc.k1") is None
    assert "secret" not in dest.describe().lower()
