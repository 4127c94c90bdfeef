"""Property-based fuzzing of every /api/v1 operation of the app's OpenAPI schema, against a real
runtime (embedded mode: SQLite, Milvus Lite, the real model, the worker in a thread).

For each operation Hypothesis draws requests mixing values that follow the schema, the same
objects with one field replaced by hostile JSON (wrong types, 1e999, NaN, huge integers, NUL
bytes, lone surrogates, deep nesting), and arbitrary bodies; path parameters are real ids most of
the time. The property: no request gets a 5xx, and every answer is RAGFlow's envelope. After the
run every dataset still lists, retrieves and backs up. Derandomized (fixed examples), bounded
by ``EXAMPLES`` per operation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragruntime.embedding import Embedder
from tests.integration.runtime.robustness.conftest import (
    Client,
    assert_backs_up,
    assert_datasets_healthy,
    serve,
    settings_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 50
JSON_TYPE = {"Content-Type": "application/json"}

TRICKY_CHARACTERS = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "%", "_", "\\", '"', "\n", "\N{GRINNING FACE}", "a", " "]
)
EDGE_INTEGERS = st.sampled_from(
    [-1, 0, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**20, -(2**63) - 1, 10**400]
)
hostile_scalars = st.one_of(
    EDGE_INTEGERS,
    st.none(),
    st.booleans(),
    st.sampled_from(["false", "true", "", " ", "abc", "1e999", "NaN", "-1", "0", "10" * 12]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(TRICKY_CHARACTERS, min_size=1),
    st.text(min_size=300, max_size=9000, alphabet=st.sampled_from("k\N{GRINNING FACE}")),
)
hostile_json = st.recursive(
    hostile_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values following the JSON-schema subset FastAPI emits for the request models."""
    if "anyOf" in schema:
        return st.one_of([from_schema(option) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 80), 80)
        return st.text(min_size=low, max_size=max(low, high)) | st.text(
            TRICKY_CHARACTERS, min_size=max(low, 1), max_size=max(low, high, 1)
        )
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum")) | EDGE_INTEGERS
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}))
        return st.lists(items, max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in properties.items() if k in required},
            optional={k: from_schema(v) for k, v in properties.items() if k not in required},
        )
    return hostile_json  # no type given: anything


def resolve(node: Any, components: dict[str, Any]) -> Any:
    """The schema with every ``$ref`` inlined (the API's models are not recursive)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return resolve(components[node["$ref"].rsplit("/", 1)[-1]], components)
        return {k: resolve(v, components) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, components) for v in node]
    return node


def body_strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Schema-following objects, the same with one field made hostile, or any JSON at all."""
    valid = from_schema(schema)
    names = sorted(schema.get("properties", {}))

    def corrupt(value: Any, data: st.DataObject) -> Any:
        if not isinstance(value, dict) or not names:
            return value
        field = data.draw(st.sampled_from(names))
        return {**value, field: data.draw(hostile_json)}

    corrupted = st.tuples(valid, st.data()).map(lambda pair: corrupt(*pair))
    return st.one_of(valid, corrupted, corrupted, hostile_json)


def query_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """Schema values, text and numbers, as a URL can carry them (no lone surrogates)."""
    numbers = (EDGE_INTEGERS | st.integers(-(2**70), 2**70)).map(str)
    special = st.sampled_from(["1e999", "NaN", "true", "False", "%", "_", "\n", "%00", ""])
    valid = from_schema(schema).filter(lambda v: v is not None)
    valid = valid.map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
    values = st.one_of(valid, st.text(max_size=30), numbers, special)
    return values.map(lambda v: v.encode("utf-8", "replace").decode())


class Operation:
    def __init__(self, method: str, path: str, spec: dict[str, Any], components: dict) -> None:
        self.method, self.path = method.upper(), path
        parameters = [resolve(p, components) for p in spec.get("parameters", [])]
        self.path_params = [p["name"] for p in parameters if p["in"] == "path"]
        self.query = {p["name"]: p["schema"] for p in parameters if p["in"] == "query"}
        content = spec.get("requestBody", {}).get("content", {})
        self.json_schema = (
            resolve(content["application/json"]["schema"], components)
            if "application/json" in content
            else None
        )
        self.multipart = "multipart/form-data" in content

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


def operations(client: Client) -> list[Operation]:
    schema = client.http.app.openapi()
    components = schema.get("components", {}).get("schemas", {})
    return [
        Operation(method, path, spec, components)
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/") and "/system/" not in path
        for method, spec in item.items()
    ]


def request_strategy(op: Operation, ids: dict[str, list[str]]) -> st.SearchStrategy[dict]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        path = op.path
        for name in op.path_params:
            pool = ids.get(name, [])
            value = draw(st.sampled_from(pool) if pool else st.text(max_size=10))
            if pool and draw(st.integers(0, 4)) == 0:
                value = draw(st.text(min_size=1, max_size=70))
            # No "/" in an id: the server decodes %2F before routing, so such a path reaches
            # no route at all (a plain 404, not the operation under test).
            value = value.replace("/", "")
            path = path.replace(f"{{{name}}}", quote(value, safe="", errors="replace") or "x")
        params = {
            name: draw(query_value(schema))
            for name, schema in op.query.items()
            if draw(st.booleans())
        }
        request: dict[str, Any] = {
            "method": op.method,
            "path": path.removeprefix("/api/v1"),  # Client.call adds it
            "params": params,
        }
        if op.json_schema is not None:
            body = draw(body_strategy(op.json_schema))
            if op.method == "DELETE" and op.path == "/api/v1/datasets" and _deletes_all(body):
                body = {"ids": [draw(st.text(max_size=8))]}  # keep the datasets under test
            request["content"] = json.dumps(body, allow_nan=True)
            request["headers"] = JSON_TYPE
        elif op.multipart:
            names = draw(st.lists(st.text(max_size=300), min_size=0, max_size=3))
            request["files"] = [
                ("file", (name or "f.txt", draw(st.binary(max_size=2000)))) for name in names
            ]
            if not names:
                request["content"] = draw(st.binary(max_size=200))
        return request

    return build()


def _deletes_all(body: Any) -> bool:
    return isinstance(body, dict) and "ids" in body and body["ids"] is None


def test_no_generated_request_gets_a_5xx_and_every_dataset_survives(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = settings_for(tmp_path / "data")
    with serve(settings, embedder) as client:
        ids = seed(client)
        for op in operations(client):
            check_operation(client, op, ids)
        assert set(ids["protected"]) <= set(assert_datasets_healthy(client))
    assert_backs_up(settings, tmp_path)


def seed(client: Client) -> dict[str, list[str]]:
    """Two datasets with an ingested document each; the fuzzer targets the first by id."""
    target = client.ok("POST", "/datasets", json={"name": "fuzz-target"})["id"]
    protected = client.ok("POST", "/datasets", json={"name": "fuzz-protected"})["id"]
    text = b"Geostationary satellites orbit above the equator.\nHoney bees dance."
    (document,) = client.ingest(target, [("sat.txt", text)])
    client.ingest(protected, [("bees.txt", text)])
    chunks = client.ok("GET", f"/datasets/{target}/documents/{document}/chunks")["chunks"]
    return {
        "dataset_id": [target],
        "document_id": [document],
        "chunk_id": [c["id"] for c in chunks],
        "protected": [protected],
    }


def check_operation(client: Client, op: Operation, ids: dict[str, list[str]]) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request_strategy(op, ids))
    def property_(request: dict[str, Any]) -> None:
        method, path = request.pop("method"), request.pop("path")
        response = client.call(method, path, **request)
        assert response.status_code < 500, (op, path, request, response.text[:300])
        assert response.status_code != 404 or response.json()["code"] == 102, "unrouted"
        if response.headers.get("content-type", "").startswith("application/json"):
            assert "code" in response.json(), (op, response.text[:300])

    property_()
