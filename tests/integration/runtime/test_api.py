"""The HTTP API of a real runtime, embedded and cluster mode: every format and endpoint, the
error cases."""

from __future__ import annotations

import pytest
import requests

from tests.fixtures.services import RuntimeProcess
from tests.integration.runtime.conftest import Api
from tests.unit.runtime.documents_factory import DISTINCTIVE, every_format

pytestmark = pytest.mark.integration


def test_every_format_is_ingested_and_retrievable_while_bad_files_fail_alone(api: Api) -> None:
    dataset_id = api.create_dataset("formats", parser_config={"chunk_token_num": 64})
    files = [*every_format().items(), ("broken.pdf", b"%PDF-1.4 junk"), ("photo.bmp", b"BM")]
    documents = api.upload(dataset_id, files)
    ids = {d["name"]: d["id"] for d in documents}
    finished = api.parse_and_wait(dataset_id, list(ids.values()))
    by_name = {d["name"]: d for d in finished.values()}
    for name in DISTINCTIVE:
        assert by_name[name]["run"] == "DONE", by_name[name]
        assert by_name[name]["chunk_count"] >= 1 and by_name[name]["progress"] == 1.0
    assert by_name["broken.pdf"]["run"] == "FAIL"
    assert "cannot parse broken.pdf" in by_name["broken.pdf"]["progress_msg"]
    assert by_name["photo.bmp"]["run"] == "FAIL"
    assert "unsupported file type '.bmp'" in by_name["photo.bmp"]["progress_msg"]
    for name, word in DISTINCTIVE.items():
        data = api.ok(
            "POST",
            "/retrieval",
            json={"question": word, "dataset_ids": [dataset_id], "highlight": True},
        )
        assert data["chunks"], name
        top = data["chunks"][0]
        assert top["document_id"] == ids[name], (name, top)
        assert "<em>" in top["highlight"]
        assert {"similarity", "vector_similarity", "term_similarity"} <= set(top)
        assert data["doc_aggs"][0]["doc_id"] == ids[name]


def test_retrieval_paging_threshold_document_filter_and_rrf(api: Api) -> None:
    dataset_id = api.create_dataset("paging", parser_config={"chunk_token_num": 8})
    text = "\n".join(f"Planet number {i} orbits a distant star." for i in range(12)).encode()
    (doc,) = api.upload(dataset_id, [("planets.txt", text)])
    (other,) = api.upload(dataset_id, [("other.txt", b"Planets and stars are far away.")])
    api.parse_and_wait(dataset_id, [doc["id"], other["id"]])
    body = {"question": "planet orbits star", "dataset_ids": [dataset_id], "page_size": 5}
    page1 = api.ok("POST", "/retrieval", json={**body, "similarity_threshold": 0.0})
    page2 = api.ok("POST", "/retrieval", json={**body, "similarity_threshold": 0.0, "page": 2})
    assert page1["total"] == 13 and len(page1["chunks"]) == 5
    assert not {c["id"] for c in page1["chunks"]} & {c["id"] for c in page2["chunks"]}
    strict = api.ok("POST", "/retrieval", json={**body, "similarity_threshold": 0.99})
    assert strict["total"] == 0 and strict["chunks"] == []
    only_other = api.ok(
        "POST",
        "/retrieval",
        json={**body, "similarity_threshold": 0, "document_ids": [other["id"]]},
    )
    assert {c["document_id"] for c in only_other["chunks"]} == {other["id"]}
    by_document_only = {"question": "planet orbits star", "document_ids": [other["id"]]}
    assert (
        api.ok("POST", "/retrieval", json={**by_document_only, "similarity_threshold": 0})["chunks"]
        == only_other["chunks"]
    )
    rrf = api.ok("POST", "/retrieval", json={**body, "similarity_threshold": 0, "fusion": "rrf"})
    assert rrf["total"] == 13
    sims = [c["similarity"] for c in rrf["chunks"]]
    assert sims == sorted(sims, reverse=True)


def test_a_change_to_the_dataset_is_never_answered_from_the_cache(api: Api) -> None:
    dataset_id = api.create_dataset("cache")
    (doc,) = api.upload(dataset_id, [("a.txt", b"Zebras have black and white stripes.")])
    api.parse_and_wait(dataset_id, [doc["id"]])
    body = {"question": "zebra stripes", "dataset_ids": [dataset_id]}
    answered = api.call("POST", "/retrieval", json=body)
    first = answered.json()["data"]
    # A small change (one completed document) is waited for: answered by the synced index.
    assert answered.headers["X-Ragflow-Retrieval-Source"] == "index"
    again = api.call("POST", "/retrieval", json=body)
    assert again.json()["data"] == first
    assert again.headers["X-Ragflow-Retrieval-Source"] == "cache"
    added = api.ok(
        "POST",
        f"/datasets/{dataset_id}/documents/{doc['id']}/chunks",
        json={"content": "Zebra stripes confuse biting flies."},
    )["chunk"]
    after = api.ok("POST", "/retrieval", json=body)
    assert added["id"] in {c["id"] for c in after["chunks"]}


def test_documents_list_filters_update_download_and_stop(api: Api) -> None:
    dataset_id = api.create_dataset("docs")
    docs = api.upload(dataset_id, [("a.txt", b"alpha"), ("b.md", b"# beta")])
    listed = api.ok("GET", f"/datasets/{dataset_id}/documents", params={"suffix": "md"})
    assert [d["name"] for d in listed["docs"]] == ["b.md"] and listed["total"] == 1
    unstarted = api.ok("GET", f"/datasets/{dataset_id}/documents", params={"run": "UNSTART"})
    assert unstarted["total"] == 2
    renamed = api.ok(
        "PUT", f"/datasets/{dataset_id}/documents/{docs[0]['id']}", json={"name": "a2.txt"}
    )
    assert renamed["name"] == "a2.txt"
    download = api.call("GET", f"/datasets/{dataset_id}/documents/{docs[0]['id']}")
    assert download.status_code == 200 and download.content == b"alpha"
    stop = api.call(
        "DELETE", f"/datasets/{dataset_id}/chunks", json={"document_ids": [docs[1]["id"]]}
    )
    assert stop.json()["code"] == 102  # nothing is running for that document
    datasets = api.ok("GET", "/datasets", params={"name": "docs"})
    assert datasets[0]["document_count"] == 2


def test_error_cases_answer_in_ragflow_envelopes(api: Api, deployment: RuntimeProcess) -> None:
    base = f"{deployment.base_url}/api/v1"
    missing = requests.get(f"{base}/datasets", timeout=10)
    assert missing.status_code == 401 and missing.json()["code"] == 109
    wrong = requests.get(f"{base}/datasets", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json() == {
        "code": 109,
        "message": "API key is invalid!",
    }

    unknown = api.call("POST", "/retrieval", json={"question": "q", "dataset_ids": ["nope"]})
    assert unknown.json() == {"code": 102, "message": "You don't own the dataset nope."}
    upload = api.call("POST", "/datasets/nope/documents", files=[("file", ("a.txt", b"x"))])
    assert upload.json()["code"] == 102
    assert api.call("PUT", "/datasets/nope", json={"name": "x"}).json()["code"] == 102

    dataset_id = api.create_dataset("errors")
    duplicate = api.call("POST", "/datasets", json={"name": "ERRORS"})
    assert duplicate.json()["code"] == 102
    assert api.call("POST", "/datasets", json={"name": ""}).json()["code"] == 101
    other_model = {"name": "m", "embedding_model": "BAAI/bge-large-zh-v1.5@BAAI"}
    assert api.call("POST", "/datasets", json=other_model).json()["code"] == 101
    same_model = {"name": "m2", "embedding_model": "sentence-transformers/all-MiniLM-L6-v2@x"}
    assert api.ok("POST", "/datasets", json=same_model)["embedding_model"] == "all-MiniLM-L6-v2"
    no_question = api.call("POST", "/retrieval", json={"dataset_ids": [dataset_id]})
    assert no_question.json()["code"] == 101
    no_datasets = api.call("POST", "/retrieval", json={"question": "q"})
    assert no_datasets.json() == {"code": 101, "message": "`dataset_ids` is required."}
    metrics = requests.get(f"{deployment.base_url}/metrics", timeout=10).text
    assert 'status="rejected"' in metrics  # client mistakes are not service errors
    no_ids = api.call("POST", f"/datasets/{dataset_id}/chunks", json={})
    assert no_ids.json() == {"code": 101, "message": "`document_ids` is required"}

    too_big = api.call(
        "POST", f"/datasets/{dataset_id}/documents", files=[("file", ("big.txt", b"x" * 3_000_000))]
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == 101


def test_probes_aliases_and_metrics(deployment: RuntimeProcess) -> None:
    base = deployment.base_url
    assert requests.get(f"{base}/health", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{base}/ready", timeout=10).json()
    assert ready["status"] == "ready" and set(ready["checks"]) == {
        "database",
        "vector_store",
        "cache",
        "model",
    }
    assert requests.get(f"{base}/api/v1/system/ping", timeout=10).text == "pong"
    assert requests.get(f"{base}/api/v1/system/healthz", timeout=10).json()["code"] == 0
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    assert "ragflow_query_latency_seconds_bucket" in metrics
    assert "ragflow_ingest_queue_depth" in metrics
