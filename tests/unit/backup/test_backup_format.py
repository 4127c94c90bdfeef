"""Manifest and catalog serialisation: canonical, versioned, strict."""

from __future__ import annotations

import json

import pytest

from ragruntime.backup.format import (
    Catalog,
    CatalogEntry,
    Entry,
    FormatError,
    Manifest,
    ObjectRef,
    WrappedKey,
    canonical_json,
)


def sample_manifest() -> Manifest:
    ref = ObjectRef("ab" * 32, "b1", "database", 10, 50, "cd" * 32)
    return Manifest(
        backup_id="b1",
        cluster="demo",
        type="full",
        parent_id=None,
        schedule="daily",
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:01:00Z",
        entries=(Entry("database", "ragflow.db", 10, "ef" * 32, (ref, ref), 3),),
        keys={"b1": WrappedKey("k-1", "AAAA")},
        counts={"database": 3},
        chunk_size=1024,
        mac="00",
    )


def test_manifest_round_trips_and_serialises_canonically() -> None:
    manifest = sample_manifest()
    data = manifest.to_bytes()
    assert Manifest.from_bytes(data) == manifest
    assert data == canonical_json(json.loads(data))
    assert manifest.objects.keys() == {"data/ab/" + "ab" * 32 + ".b1"}
    assert manifest.components == {"database": 10}


def test_unknown_format_version_is_refused() -> None:
    raw = json.loads(sample_manifest().to_bytes())
    raw["formatVersion"] = 99
    with pytest.raises(FormatError, match="format version 99"):
        Manifest.from_bytes(json.dumps(raw).encode())


@pytest.mark.parametrize("data", [b"", b"[]", b"{not json", b'{"formatVersion": 1}'])
def test_malformed_manifests_raise_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        Manifest.from_bytes(data)


def test_catalog_adds_replaces_and_removes_entries() -> None:
    entry = CatalogEntry("b1", "full", None, "daily", "t0", "t1", 10, 20, "aa", "k-1")
    catalog = Catalog("demo").with_entry(entry).with_entry(entry)
    assert len(catalog.entries) == 1
    assert Catalog.from_bytes(catalog.to_bytes()) == catalog
    assert catalog.latest() == entry
    assert catalog.without({"b1"}).entries == ()
