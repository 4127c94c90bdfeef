"""Regression tests for the bad requests of issue 17: each is answered with a 400 naming the
field, nothing invalid is stored, and the dataset stays usable for everyone afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ragruntime.embedding import Embedder
from tests.integration.runtime.robustness.conftest import (
    Client,
    assert_datasets_healthy,
    serve,
    settings_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT = b"Volcanoes erupt when magma rises through the crust.\nBees dance to show where flowers are."


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Client]:
    with serve(settings_for(tmp_path_factory.mktemp("bad-input")), embedder) as served:
        yield served


@pytest.fixture(scope="module")
def dataset(client: Client) -> dict[str, str]:
    dataset_id = client.ok("POST", "/datasets", json={"name": "healthy"})["id"]
    (document_id,) = client.ingest(dataset_id, [("facts.txt", TEXT)])
    return {"dataset": dataset_id, "document": document_id}


def test_a_bad_pagerank_is_refused_and_listing_keeps_working(
    client: Client, dataset: dict[str, str]
) -> None:
    path = f"/datasets/{dataset['dataset']}"
    client.rejected("PUT", path, "pagerank", json={"pagerank": "abc"})
    client.rejected("PUT", path, "pagerank", json={"pagerank": 101})
    assert client.ok("GET", "/datasets")[0]["pagerank"] == 0
    assert client.ok("PUT", path, json={"pagerank": 7})["pagerank"] == 7  # writes still work
    assert_datasets_healthy(client)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("important_keywords", ["k" * 9000]),
        ("important_keywords", ["k" * 1000] * 9),
        ("questions", ["\N{GRINNING FACE}" * 3000]),
        ("questions", "not a list"),
        ("important_keywords", [{}]),
    ],
)
def test_oversized_keywords_or_questions_are_refused(
    client: Client, dataset: dict[str, str], field: str, value: object
) -> None:
    chunks = f"/datasets/{dataset['dataset']}/documents/{dataset['document']}/chunks"
    client.rejected("POST", chunks, field, json={"content": "c", field: value})
    chunk_id = client.ok("GET", chunks)["chunks"][0]["id"]
    client.rejected("PUT", f"{chunks}/{chunk_id}", field, json={field: value})
    assert_datasets_healthy(client)


def test_keywords_and_questions_at_the_limit_are_stored_and_read_back(
    client: Client, dataset: dict[str, str]
) -> None:
    chunks = f"/datasets/{dataset['dataset']}/documents/{dataset['document']}/chunks"
    keywords = ["\N{GRINNING FACE}" * 50] * 6  # 6 * (50 * 12 + 2) + 2 + 5 ASCII JSON chars
    added = client.ok("POST", chunks, json={"content": "limits", "important_keywords": keywords})[
        "chunk"
    ]
    listed = client.ok("GET", chunks, params={"id": added["id"]})["chunks"]
    assert listed[0]["important_keywords"] == keywords
    assert_datasets_healthy(client)


BAD_PARSER_CONFIGS = [
    ({"overlapped_percent": "abc"}, "parser_config.overlapped_percent"),
    ("1e999", "parser_config.overlapped_percent"),
    ({"delimiter": "\\x"}, "parser_config.delimiter"),
    ({"delimiter": ""}, "parser_config.delimiter"),
    ({"chunk_token_num": "abc"}, "parser_config.chunk_token_num"),
    ({"chunk_token_num": True}, "parser_config.chunk_token_num"),
    ({"chunk_token_num": 0}, "parser_config.chunk_token_num"),
    ({"raptor": {"x": "\x00"}}, "parser_config"),
    ("x", "parser_config"),
]


def _parser_config_body(config: object, name: str | None = None) -> str:
    """JSON text (1e999 has to be written raw: it is not a Python float literal)."""
    value = '{"overlapped_percent": 1e999}' if config == "1e999" else json.dumps(config)
    prefix = f'"name": {json.dumps(name)}, ' if name else ""
    return "{" + prefix + f'"parser_config": {value}' + "}"


@pytest.mark.parametrize(("config", "field"), BAD_PARSER_CONFIGS)
def test_parser_settings_that_break_parsing_are_refused(
    client: Client, dataset: dict[str, str], config: object, field: str
) -> None:
    json_header = {"Content-Type": "application/json"}
    body = _parser_config_body(config, name="new-dataset")
    client.rejected("POST", "/datasets", field, content=body, headers=json_header)
    body = _parser_config_body(config)
    client.rejected("PUT", f"/datasets/{dataset['dataset']}", field, content=body,
                    headers=json_header)  # fmt: skip
    document = f"/datasets/{dataset['dataset']}/documents/{dataset['document']}"
    client.rejected("PUT", document, field, content=body, headers=json_header)
    assert client.call("GET", "/datasets", params={"name": "new-dataset"}).json()["code"] == 102
    stored = client.ok("GET", "/datasets", params={"id": dataset["dataset"]})[0]["parser_config"]
    assert stored["chunk_token_num"] == 512 and stored["delimiter"] == "\n"


TYPE_CONFUSED = [
    ("POST", "/datasets", {"name": "x", "description": {}}, "description"),
    ("POST", "/datasets", {"name": "x", "chunk_method": ["naive"]}, "chunk_method"),
    ("POST", "/datasets", {"name": ["x"]}, "name"),
    ("POST", "/datasets", {"name": "x", "permission": 1}, "permission"),
    ("POST", "/datasets", {"name": "x" * 129}, "name"),
    ("POST", "/datasets", {"name": "bad\ud800"}, "name"),
    ("POST", "/datasets", {"name": "nul\x00"}, "name"),
    ("DELETE", "/datasets", {"ids": [{}]}, "ids.0"),
    ("DELETE", "/datasets", {"ids": "all"}, "ids"),
    ("DELETE", "/datasets", {}, "ids"),
    ("POST", "/retrieval", {"question": "q", "dataset_ids": [{}]}, "dataset_ids.0"),
    ("POST", "/retrieval", {"question": {}, "dataset_ids": ["d"]}, "question"),
    ("POST", "/retrieval", {"question": "q\ud800", "dataset_ids": ["d"]}, "question"),
    ("POST", "/retrieval", {"question": "q", "dataset_ids": ["d"], "top_k": 1e300}, "top_k"),
    ("POST", "/retrieval", {"question": "q", "dataset_ids": ["d"], "page": 10**20}, "page"),
    ("POST", "/retrieval", {"question": "q", "dataset_ids": ["d"], "page_size": -1}, "page_size"),
    ("POST", "/retrieval", {"question": "q", "dataset_ids": ["d"], "highlight": "false"},
     "highlight"),
    ("POST", "/retrieval", {"question": "q", "dataset_ids": ["d"], "keyword": "false"},
     "keyword"),
    ("POST", "/retrieval", {"question": "q", "dataset_ids": "d"}, "dataset_ids"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "field"), TYPE_CONFUSED)
def test_type_confused_input_is_a_400_naming_the_field(
    client: Client, method: str, path: str, body: dict[str, object], field: str
) -> None:
    client.rejected(method, path, field, json=body)


def test_numbers_json_cannot_hold_are_refused(client: Client, dataset: dict[str, str]) -> None:
    header = {"Content-Type": "application/json"}
    base = f'"question": "q", "dataset_ids": ["{dataset["dataset"]}"]'
    for raw, field in [
        (f'{{{base}, "similarity_threshold": NaN}}', "similarity_threshold"),
        (f'{{{base}, "vector_similarity_weight": Infinity}}', "vector_similarity_weight"),
        (f'{{{base}, "top_k": 1e999}}', "top_k"),
        (f'{{{base}, "page": 1e999}}', "page"),
    ]:
        client.rejected("POST", "/retrieval", field, content=raw, headers=header)
    for query in ({"page": 10**20}, {"page_size": "1e999"}, {"page": 0}, {"desc": "maybe"}):
        field = next(iter(query))
        client.rejected("GET", "/datasets", field, params=query)
        client.rejected("GET", f"/datasets/{dataset['dataset']}/documents", field, params=query)


def test_retrieval_options_needing_absent_components_are_refused_when_asked_for(
    client: Client, dataset: dict[str, str]
) -> None:
    """keyword, rerank_id, ...: accepted when they ask for nothing (ragflow-sdk's defaults),
    a 400 naming the option when they ask for a feature this runtime does not run."""
    base = {"question": "facts", "dataset_ids": [dataset["dataset"]], "similarity_threshold": 0}
    for option, asks in [
        ("keyword", True),
        ("use_kg", True),
        ("toc_enhance", True),
        ("rerank_id", "BAAI/bge-reranker-v2-m3"),
        ("cross_languages", ["German"]),
        ("metadata_condition", {"conditions": [{"name": "author", "value": "x"}]}),
    ]:
        message = client.rejected("POST", "/retrieval", option, json={**base, option: asks})
        assert "not supported by this runtime" in message
    sdk_defaults = {"keyword": False, "rerank_id": None, "cross_languages": None}
    plain = client.ok("POST", "/retrieval", json=base)
    assert client.ok("POST", "/retrieval", json={**base, **sdk_defaults}) == plain
    assert plain["chunks"]


def test_chunk_fields_are_typed_and_bounded(client: Client, dataset: dict[str, str]) -> None:
    chunks = f"/datasets/{dataset['dataset']}/documents/{dataset['document']}/chunks"
    chunk_id = client.ok("GET", chunks)["chunks"][0]["id"]
    client.rejected("PUT", f"{chunks}/{chunk_id}", "available", json={"available": "false"})
    client.rejected("POST", chunks, "content", json={"content": "x" * 65536})
    client.rejected("POST", chunks, "content", json={"content": "\N{GRINNING FACE}" * 20000})
    client.rejected("POST", chunks, "content", json={"content": ["x"]})
    client.ok("PUT", f"{chunks}/{chunk_id}", json={"available": False})
    assert client.ok("GET", chunks, params={"id": chunk_id})["chunks"][0]["available"] is False
    client.ok("PUT", f"{chunks}/{chunk_id}", json={"available": True})


def test_document_names_and_metadata_are_checked(client: Client, dataset: dict[str, str]) -> None:
    document = f"/datasets/{dataset['dataset']}/documents/{dataset['document']}"
    client.rejected("PUT", document, "name", json={"name": "n" * 256})
    client.rejected("PUT", document, "name", json={"name": "\N{GRINNING FACE}" * 64 + ".txt"})
    client.rejected("PUT", document, "name", json={"name": "a\x00b.txt"})
    client.rejected("PUT", document, "name", json={"name": "../escape.txt"})
    client.rejected("PUT", document, "meta_fields", json={"meta_fields": []})
    client.rejected("PUT", document, "meta_fields", json={"meta_fields": {"k": "\ud800"}})
    long_name = "n" * 251 + ".txt"
    assert client.ok("PUT", document, json={"name": long_name})["name"] == long_name
    client.ok("PUT", document, json={"name": "facts.txt"})


def test_keyword_filters_are_literal_text_not_patterns(
    client: Client, dataset: dict[str, str]
) -> None:
    dataset_id = dataset["dataset"]
    (percent_id,) = [
        d["id"]
        for d in client.ok(
            "POST", f"/datasets/{dataset_id}/documents", files=[("file", ("100%_off.txt", b"x"))]
        )
    ]
    documents = f"/datasets/{dataset_id}/documents"
    for keywords, expected in [("%", {percent_id}), ("_", {percent_id}), ("0%_o", {percent_id}),
                               ("1_0", set()), ("%%", set())]:  # fmt: skip
        found = client.ok("GET", documents, params={"keywords": keywords})["docs"]
        assert {d["id"] for d in found} == expected, keywords
    chunks = f"{documents}/{dataset['document']}/chunks"
    for keywords in ["%", "50%", "line\nbreak", '"quoted"', "back\\slash", "_"]:
        assert client.ok("GET", chunks, params={"keywords": keywords})["total"] == 0
    assert client.ok("GET", chunks, params={"keywords": "MAGMA"})["total"] == 1
    client.ok("DELETE", documents, json={"ids": [percent_id]})
    api_lines = [
        line
        for line in client.http.get("/metrics").text.splitlines()
        if line.startswith("ragflow_http_requests_total") and 'route="/api/v1' in line
    ]
    assert api_lines and not [line for line in api_lines if 'code="5' in line]
