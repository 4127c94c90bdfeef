"""Metadata store: dataset names are unique case-insensitively; counts and versions follow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from ragruntime.errors import DataError, NotFound
from ragruntime.models import NewDocument
from ragruntime.store.database import read_only
from ragruntime.store.metadata import SqlMetadataStore
from ragruntime.store.schema import datasets


@pytest.fixture
def store(tmp_path: Path) -> SqlMetadataStore:
    return SqlMetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}")


def test_dataset_names_are_unique_ignoring_case(store: SqlMetadataStore) -> None:
    store.create_dataset(name="Docs", fields={"embedding_model": "m"})
    with pytest.raises(DataError):
        store.create_dataset(name="docs", fields={"embedding_model": "m"})


def test_unknown_dataset_raises_not_found_with_ragflow_wording(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFound, match="You don't own the dataset nope"):
        store.get_dataset("nope")


def test_document_counts_and_versions_follow_changes(store: SqlMetadataStore) -> None:
    dataset = store.create_dataset(name="ds", fields={"embedding_model": "m"})
    store.add_documents(
        dataset,
        [NewDocument("d1", "a.txt", 1, "txt", "k1"), NewDocument("d2", "b.pdf", 2, "pdf", "k2")],
    )
    assert store.get_dataset(dataset.id).document_count == 2
    docs, total = store.list_documents(dataset.id, suffix=["pdf"])
    assert total == 1 and docs[0].id == "d2"
    version = store.dataset_versions([dataset.id])[dataset.id]
    store.delete_documents(dataset.id, ["d1"])
    assert store.dataset_versions([dataset.id])[dataset.id] > version
    assert store.get_dataset(dataset.id).document_count == 1


def test_parser_config_updates_merge_into_the_defaults(store: SqlMetadataStore) -> None:
    dataset = store.create_dataset(name="ds", fields={"embedding_model": "m"})
    updated = store.update_dataset(dataset.id, {"parser_config": {"chunk_token_num": 64}})
    assert updated.parser_config["chunk_token_num"] == 64
    assert updated.parser_config["delimiter"] == "\n"


def _can_write_now(path: Path) -> bool:
    """Another connection takes the write lock without waiting."""
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_reads_never_hold_the_write_lock_even_when_they_fail(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    store.create_dataset(name="ds", fields={"embedding_model": "m"})
    path = tmp_path / "meta.db"
    with read_only(store.engine) as conn:
        conn.execute(sa.select(datasets)).all()
        assert _can_write_now(path)  # a read in progress does not block writers
    with pytest.raises(ZeroDivisionError), read_only(store.engine) as conn:
        conn.execute(sa.select(datasets)).first()
        _ = 1 / 0  # a reader failing half-way (e.g. while converting rows)
    assert _can_write_now(path)
    store.create_dataset(name="after", fields={"embedding_model": "m"})


def test_values_stored_before_validation_still_read(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    dataset = store.create_dataset(name="ds", fields={"embedding_model": "m"})
    with store.engine.begin() as conn:  # what an older runtime let through
        conn.execute(datasets.update().where(datasets.c.id == dataset.id).values(pagerank="abc"))
    found, total = store.list_datasets(
        page=1, page_size=30, orderby="create_time", desc=True, id=None, name=None
    )
    assert total == 1 and found[0].pagerank == 0
    assert _can_write_now(tmp_path / "meta.db")


def test_document_keyword_filter_is_literal(store: SqlMetadataStore) -> None:
    dataset = store.create_dataset(name="ds", fields={"embedding_model": "m"})
    names = ["100%_off.txt", "1000 off.txt", "a\\b.txt"]
    store.add_documents(
        dataset, [NewDocument(f"d{i}", n, 1, "txt", f"k{i}") for i, n in enumerate(names)]
    )
    for keywords, expected in [("%", ["d0"]), ("_", ["d0"]), ("0%", ["d0"]), ("\\", ["d2"]),
                               ("1_0", []), ("OFF", ["d0", "d1"])]:  # fmt: skip
        docs, _ = store.list_documents(dataset.id, keywords=keywords)
        assert sorted(d.id for d in docs) == expected, keywords
