"""Metadata store: dataset names are unique case-insensitively; counts and versions follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragruntime.errors import DataError, NotFound
from ragruntime.models import NewDocument
from ragruntime.store.metadata import SqlMetadataStore


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
