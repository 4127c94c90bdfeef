"""RAGFlow's official client (ragflow-sdk) drives a real runtime end to end, in both modes."""

from __future__ import annotations

import pytest
import requests
from ragflow_sdk import RAGFlow

from tests.fixtures.services import RuntimeProcess

pytestmark = pytest.mark.integration

GUIDE = b"""Milvus is an open-source vector database built for similarity search.
It stores embeddings and answers nearest-neighbour queries quickly.

PostgreSQL is a relational database with strong transactional guarantees.
Redis is an in-memory key-value store often used as a cache.
"""


def test_sdk_dataset_document_chunk_and_retrieval_lifecycle(
    deployment: RuntimeProcess,
) -> None:
    rag = RAGFlow(api_key=deployment.api_key, base_url=deployment.base_url)
    dataset = rag.create_dataset(name="sdk-lifecycle")
    assert dataset.chunk_method == "naive" and dataset.id

    dataset.update({"description": "made by the SDK test"})
    assert rag.get_dataset(name="sdk-lifecycle").description == "made by the SDK test"

    docs = dataset.upload_documents(
        [
            {"display_name": "guide.txt", "blob": GUIDE},
            {"display_name": "notes.md", "blob": b"# T\nhi"},
        ]
    )
    assert [d.name for d in docs] == ["guide.txt", "notes.md"]
    assert all(d.run == "UNSTART" for d in docs)

    finished = dataset.parse_documents([d.id for d in docs])
    assert {status for _, status, _, _ in finished} == {"DONE"}

    listed = dataset.list_documents(id=docs[0].id)
    assert listed[0].run == "DONE" and listed[0].progress == 1.0 and listed[0].chunk_count >= 1

    guide = listed[0]
    chunks = guide.list_chunks()
    assert chunks and all(c.document_id == guide.id for c in chunks)
    assert "Milvus" in " ".join(c.content for c in chunks)

    added = guide.add_chunk(content="Kubernetes operators reconcile custom resources.")
    assert added.id and added.document_id == guide.id
    assert len(guide.list_chunks()) == len(chunks) + 1

    hits = rag.retrieve(dataset_ids=[dataset.id], question="Kubernetes operator reconcile")
    assert hits and hits[0].id == added.id
    assert 0.0 < hits[0].similarity <= 1.0 and hits[0].term_similarity > 0.5

    hits = rag.retrieve(dataset_ids=[dataset.id], question="vector database similarity search")
    assert hits and "Milvus" in hits[0].content

    added.update({"content": "Kubernetes operators reconcile custom resources with CRDs."})
    (updated,) = guide.list_chunks(id=added.id)
    assert updated.content.endswith("with CRDs.")
    added.update({"available": False})
    hits = rag.retrieve(dataset_ids=[dataset.id], question="Kubernetes operator reconcile")
    assert added.id not in {h.id for h in hits}
    added.update({"available": True})

    guide.delete_chunks([added.id])
    assert added.id not in {c.id for c in guide.list_chunks()}
    hits = rag.retrieve(dataset_ids=[dataset.id], question="Kubernetes operator reconcile")
    assert added.id not in {h.id for h in hits}

    dataset.delete_documents(ids=[docs[1].id])
    assert [d.id for d in dataset.list_documents()] == [guide.id]

    rag.delete_datasets(ids=[dataset.id])
    assert not [d for d in rag.list_datasets() if d.id == dataset.id]


def test_sdk_with_a_viewer_key_can_search_but_not_upload(deployment: RuntimeProcess) -> None:
    """The admin key (RAGFLOW_API_KEY) makes a viewer key through RAGFlow's new_token route."""
    admin = RAGFlow(api_key=deployment.api_key, base_url=deployment.base_url)
    dataset = admin.create_dataset(name="sdk-viewer")
    docs = dataset.upload_documents([{"display_name": "guide.txt", "blob": GUIDE}])
    dataset.parse_documents([d.id for d in docs])
    created = requests.post(
        f"{deployment.base_url}/api/v1/system/new_token",
        headers={"Authorization": f"Bearer {deployment.api_key}"},
        json={"role": "viewer", "name": "sdk-viewer"},
        timeout=30,
    ).json()
    assert created["code"] == 0, created
    token = created["data"]["token"]

    viewer = RAGFlow(api_key=token, base_url=deployment.base_url)
    hits = viewer.retrieve(dataset_ids=[dataset.id], question="vector database similarity")
    assert hits and "Milvus" in hits[0].content
    seen = viewer.get_dataset(name="sdk-viewer")
    assert [d.name for d in seen.list_documents()] == ["guide.txt"]
    with pytest.raises(Exception, match="may not upload_documents"):
        seen.upload_documents([{"display_name": "evil.txt", "blob": b"nope"}])
    with pytest.raises(Exception, match="may not delete_datasets"):
        viewer.delete_datasets(ids=[dataset.id])
    assert [d.name for d in dataset.list_documents()] == ["guide.txt"]

    admin.delete_datasets(ids=[dataset.id])
    log = deployment.log()
    assert '"category": "authorization", "outcome": "denied"' in log
    assert token not in log and deployment.api_key not in log
