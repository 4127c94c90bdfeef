"""Roles against every /api/v1 route, key management through the API, and the audit trail.

The app runs without its lifespan (no model, no vector store): the key store is opened on a
SQLite file by hand. An allowed request therefore reaches its route and fails there with 503
(runtime not open), which is all the matrix needs: a denial is a 403 with RAGFlow's code 108
before the route runs. The route list comes from the app's own OpenAPI schema, so a new route
without a decision in ``EXPECTED`` fails ``test_every_api_route_has_an_access_decision``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragruntime.app import create_app
from ragruntime.config import Settings
from ragruntime.security.keys import KeyStore
from ragruntime.security.roles import AccessRole
from ragruntime.security.sources import KeySync
from ragruntime.store.database import create_engine

LEGACY_KEY = "legacy-admin-key-from-RAGFLOW_API_KEY"
PUBLIC = "public"
VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
DOC = "/api/v1/datasets/{dataset_id}/documents/{document_id}"

#: The decision for every route: the least role that may call it (written out independently of
#: ragruntime.security.roles.RULES, so that a change to either shows up here).
EXPECTED: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/system/ping"): PUBLIC,
    ("GET", "/api/v1/system/healthz"): PUBLIC,
    ("GET", "/api/v1/datasets"): VIEWER,
    ("POST", "/api/v1/datasets"): ADMIN,
    ("PUT", "/api/v1/datasets/{dataset_id}"): ADMIN,
    ("DELETE", "/api/v1/datasets"): ADMIN,
    ("POST", "/api/v1/datasets/{dataset_id}/documents"): EDITOR,
    ("GET", "/api/v1/datasets/{dataset_id}/documents"): VIEWER,
    ("DELETE", "/api/v1/datasets/{dataset_id}/documents"): EDITOR,
    ("GET", DOC): VIEWER,
    ("PUT", DOC): EDITOR,
    ("POST", "/api/v1/datasets/{dataset_id}/chunks"): EDITOR,
    ("DELETE", "/api/v1/datasets/{dataset_id}/chunks"): EDITOR,
    ("GET", DOC + "/chunks"): VIEWER,
    ("POST", DOC + "/chunks"): EDITOR,
    ("DELETE", DOC + "/chunks"): EDITOR,
    ("PUT", DOC + "/chunks/{chunk_id}"): EDITOR,
    ("POST", "/api/v1/retrieval"): VIEWER,
    ("POST", "/api/v1/system/new_token"): ADMIN,
    ("GET", "/api/v1/system/token_list"): ADMIN,
    ("DELETE", "/api/v1/system/token/{key_id}"): ADMIN,
    ("POST", "/api/v1/system/token/{key_id}/rotate"): ADMIN,
    ("GET", "/api/v1/standby"): VIEWER,
}
RANK = {VIEWER: 1, EDITOR: 2, ADMIN: 3}


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    schema = client.get("/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1")
        for method in operations
    )


class Keys:
    """One key per role, plus the legacy single key (admin)."""

    def __init__(self, store: KeyStore) -> None:
        self.tokens = {
            role.value: store.create(name=f"{role.value}-test", role=role).token
            for role in AccessRole
        }
        self.tokens["legacy"] = LEGACY_KEY


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, KeyStore, Keys, Path]]:
    audit_file = tmp_path / "audit" / "audit.jsonl"
    settings = Settings(data_dir=tmp_path, api_key=LEGACY_KEY, audit_file=audit_file)
    app = create_app(settings)
    store = KeyStore(create_engine(f"sqlite:///{tmp_path / 'keys.db'}"))
    KeySync(store, env_key=LEGACY_KEY, keys_dir=None, grace_seconds=0).run_once()
    app.state.key_store = store
    client = TestClient(app)  # not entered: no lifespan, so no model and no stores
    yield client, store, Keys(store), audit_file
    app.state.audit.close()
    store.engine.dispose()


def call(client: TestClient, method: str, path: str, token: str | None, **kwargs: object):
    url = re.sub(r"\{(\w+)\}", lambda m: f"some-{m.group(1).replace('_', '-')}", path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, url, headers=headers, json={}, **kwargs)  # type: ignore[arg-type]


def test_every_api_route_has_an_access_decision(setup: tuple) -> None:
    client = setup[0]
    assert api_routes(client) == sorted(EXPECTED), "a route needs an entry in EXPECTED and RULES"


@pytest.mark.parametrize("role", [VIEWER, EDITOR, ADMIN, "legacy"])
def test_route_by_role_matrix(setup: tuple, role: str) -> None:
    client, _store, keys, _audit = setup
    rank = RANK.get(role, RANK[ADMIN])
    for method, path in api_routes(client):
        needed = EXPECTED[(method, path)]
        response = call(client, method, path, keys.tokens[role])
        body = response.json() if "json" in response.headers.get("content-type", "") else {}
        if needed == PUBLIC or rank >= RANK[needed]:
            assert response.status_code not in (401, 403), (role, method, path, body)
            assert body.get("code") not in (108, 109), (role, method, path, body)
        else:
            assert response.status_code == 403 and body["code"] == 108, (role, method, path)
        if needed != PUBLIC:
            anonymous = call(client, method, path, None)
            assert anonymous.status_code == 401, (method, path)


def test_wrong_revoked_and_digest_keys_are_refused(setup: tuple) -> None:
    client, store, keys, _audit = setup
    headers = {"Authorization": "Bearer not-a-key"}
    response = client.get("/api/v1/datasets", headers=headers)
    assert response.status_code == 401 and response.json()["code"] == 109
    viewer = next(k for k in store.list() if k.role == AccessRole.VIEWER)
    store.revoke(viewer.id)
    response = call(client, "GET", "/api/v1/datasets", keys.tokens[VIEWER])
    assert response.status_code == 401
    digest = "sha256:" + "0" * 64
    assert call(client, "GET", "/api/v1/datasets", digest).status_code == 401


def test_dataset_scoped_key_touches_only_its_datasets(setup: tuple) -> None:
    client, store, _keys, _audit = setup
    token = store.create(name="scoped", role=AccessRole.EDITOR, dataset_ids=["ds-a"]).token
    auth = {"Authorization": f"Bearer {token}"}
    inside = client.get("/api/v1/datasets/ds-a/documents", headers=auth)
    assert inside.status_code == 503  # allowed: reached the route (runtime not open)
    outside = client.get("/api/v1/datasets/ds-b/documents", headers=auth)
    assert outside.status_code == 403 and outside.json()["code"] == 108
    mixed = client.post(
        "/api/v1/retrieval", headers=auth, json={"question": "q", "dataset_ids": ["ds-a", "ds-b"]}
    )
    assert mixed.status_code == 403
    many = ["ds-a"] * 1000 + ["ds-b"]  # every id is checked, not only those audited
    crowded = client.post(
        "/api/v1/retrieval", headers=auth, json={"question": "q", "dataset_ids": many}
    )
    assert crowded.status_code == 403
    own = client.post(
        "/api/v1/retrieval", headers=auth, json={"question": "q", "dataset_ids": ["ds-a"]}
    )
    assert own.status_code == 503
    assert client.get("/api/v1/datasets", headers=auth).status_code == 403
    assert client.get("/api/v1/datasets?id=ds-a", headers=auth).status_code == 503


def test_keys_are_created_listed_rotated_and_revoked_through_the_api(setup: tuple) -> None:
    client, _store, keys, audit_file = setup
    admin = {"Authorization": f"Bearer {keys.tokens[ADMIN]}"}
    created = client.post(
        "/api/v1/system/new_token", headers=admin, json={"role": "viewer", "name": "ci"}
    ).json()
    assert created["code"] == 0 and created["data"]["role"] == "viewer"
    token, key_id = created["data"]["token"], created["data"]["id"]
    assert token.startswith("ragflow-") and len(token) > 40
    listed = client.get("/api/v1/system/token_list", headers=admin).json()["data"]
    assert key_id in {k["id"] for k in listed}
    assert token not in json.dumps(listed) and all("token" not in k for k in listed)
    viewer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/datasets", headers=viewer).status_code == 503

    rotated = client.post(
        f"/api/v1/system/token/{key_id}/rotate", headers=admin, json={"grace_seconds": 3600}
    ).json()["data"]
    new = {"Authorization": f"Bearer {rotated['token']}"}
    assert rotated["id"] != key_id and rotated["role"] == "viewer"
    assert client.get("/api/v1/datasets", headers=viewer).status_code == 503  # grace period
    assert client.get("/api/v1/datasets", headers=new).status_code == 503

    immediate = client.post(
        f"/api/v1/system/token/{rotated['id']}/rotate", headers=admin, json={"grace_seconds": 0}
    ).json()["data"]
    assert client.get("/api/v1/datasets", headers=new).status_code == 401
    newest = {"Authorization": f"Bearer {immediate['token']}"}
    assert client.delete(f"/api/v1/system/token/{immediate['id']}", headers=admin).json() == {
        "code": 0,
        "data": True,
    }
    assert client.get("/api/v1/datasets", headers=newest).status_code == 401

    bad = client.post("/api/v1/system/new_token", headers=admin, json={"role": "root"}).json()
    assert bad["code"] == 101 and "role" in bad["message"]
    scoped_admin = client.post(
        "/api/v1/system/new_token", headers=admin, json={"role": "admin", "dataset_ids": ["x"]}
    ).json()
    assert scoped_admin["code"] == 101

    audit_text = audit_file.read_text()
    events = [json.loads(line) for line in audit_text.splitlines()]
    revoked = next(e for e in events if e.get("action") == "revoke_key")
    admin_id = next(k["id"] for k in listed if k["name"] == "admin-test")
    assert revoked["category"] == "configuration" and revoked["outcome"] == "success"
    assert (revoked["key_id"], revoked["target_key_id"]) == (admin_id, immediate["id"])
    made = next(e for e in events if e.get("action") == "create_key")
    assert made["new_key_id"] == key_id
    for secret in (token, rotated["token"], immediate["token"], keys.tokens[ADMIN]):
        assert secret not in audit_text


def test_audit_trail_records_who_did_what_never_the_key(setup: tuple, capsys) -> None:
    client, store, keys, audit_file = setup
    viewer_id = next(k.id for k in store.list() if k.role == AccessRole.VIEWER)
    viewer = {"Authorization": f"Bearer {keys.tokens[VIEWER]}", "X-Request-ID": "req-42"}
    denied = client.request("DELETE", "/api/v1/datasets", headers=viewer, json={"ids": ["ds-9"]})
    assert denied.status_code == 403 and denied.headers["x-request-id"] == "req-42"
    client.get("/api/v1/datasets", headers={"Authorization": "Bearer nope"})
    client.post(
        "/api/v1/retrieval",
        headers={"Authorization": f"Bearer {keys.tokens[VIEWER]}"},
        json={"question": "secret question text", "dataset_ids": ["ds-1"]},
    )
    events = [json.loads(line) for line in audit_file.read_text().splitlines()]
    stdout_events = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"audit"' in line
    ]
    assert events == stdout_events
    by_outcome = {(e["category"], e["outcome"], e.get("request_id")) for e in events}
    assert ("authorization", "denied", "req-42") in by_outcome
    denial = next(e for e in events if e["category"] == "authorization")
    assert denial["key_id"] == viewer_id and denial["role"] == "viewer"
    assert denial["action"] == "delete_datasets"
    failure = next(
        e for e in events if e["category"] == "authentication" and e["outcome"] == "failure"
    )
    assert failure["reason"] == "unknown_key" and "key_id" not in failure
    access = next(e for e in events if e["category"] == "data_access")
    assert access["action"] == "retrieve" and access["dataset_ids"] == ["ds-1"]
    assert access["outcome"] == "failure" and access["status"] == 503  # runtime not open
    text = audit_file.read_text()
    assert keys.tokens[VIEWER] not in text and "nope" not in text
    assert "secret question text" not in text
    metrics = client.get("/metrics").text
    assert 'ragflow_audit_events_total{category="authorization",outcome="denied"} 1.0' in metrics
