"""A read-only standby (``RAGFLOW_STANDBY=true``): every write route answers 409 with RAGFlow's
code 103 naming the standby state, reads and retrieval pass, ``GET /api/v1/standby`` reports the
recorded state, and the ``ragflow_standby_*`` metrics come from it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from ragruntime.app import create_app
from ragruntime.config import Settings
from ragruntime.metrics import RuntimeMetrics
from ragruntime.security.keys import KeyStore
from ragruntime.security.roles import RULES, writes
from ragruntime.security.sources import KeySync
from ragruntime.store import standby as standby_state
from ragruntime.store.database import create_engine

KEY = "standby-test-admin-key"
WRITES = sorted(k for k, rule in RULES.items() if writes(k[0], rule))
READS = sorted(k for k, rule in RULES.items() if not writes(k[0], rule))


def _client(tmp_path: Path, standby: bool) -> Iterator[tuple[TestClient, object]]:
    settings = Settings(data_dir=tmp_path, api_key=KEY, standby=standby)
    app = create_app(settings)
    engine = create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    store = KeyStore(engine)
    KeySync(store, env_key=KEY, keys_dir=None, grace_seconds=0).run_once()
    app.state.key_store = store
    # what the routes reach of the runtime here: its metadata database
    app.state.runtime = SimpleNamespace(metadata=SimpleNamespace(engine=engine))
    yield TestClient(app, raise_server_exceptions=False), engine
    app.state.audit.close()
    engine.dispose()


@pytest.fixture
def standby(tmp_path: Path) -> Iterator[tuple[TestClient, object]]:
    yield from _client(tmp_path, standby=True)


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[tuple[TestClient, object]]:
    yield from _client(tmp_path, standby=False)


def _call(client: TestClient, method: str, template: str):
    url = re.sub(r"\{(\w+)\}", lambda m: f"some-{m.group(1).replace('_', '-')}", template)
    return client.request(method, url, headers={"Authorization": f"Bearer {KEY}"}, json={})


def _record(engine, backup_time: str, **extra: object) -> None:
    standby_state.ensure_tables(engine)
    with engine.begin() as conn:
        standby_state.write_state(
            conn,
            {
                "primary_cluster": "region-a",
                "backup_id": "20260101T000000Z-abcdef",
                "backup_time": backup_time,
                "applied_total": 3,
                "skipped_total": 1,
                "skipped": [{"backupId": "20251231T230000Z-000000", "reason": "corrupt"}],
                **extra,
            },
        )


def test_the_write_rules_are_every_non_get_route_but_retrieval() -> None:
    assert ("POST", "/api/v1/retrieval") in READS and ("GET", "/api/v1/standby") in READS
    assert ("POST", "/api/v1/datasets") in WRITES and ("DELETE", "/api/v1/datasets") in WRITES
    assert ("POST", "/api/v1/system/new_token") in WRITES
    assert all(method != "GET" for method, _ in WRITES)


def test_every_write_route_of_a_standby_is_refused_with_409_naming_its_primary(standby) -> None:
    client, engine = standby
    _record(engine, "2026-01-01T00:00:00.000Z")
    for method, template in WRITES:
        response = _call(client, method, template)
        body = response.json()
        assert response.status_code == 409 and body["code"] == 103, (method, template, body)
        assert "read-only standby of region-a" in body["message"]
        assert "promote" in body["message"]


def test_reads_of_a_standby_are_not_refused(standby) -> None:
    client, _engine = standby
    for method, template in READS:
        response = _call(client, method, template)
        assert response.status_code != 409, (method, template, response.text)


def test_a_writable_runtime_refuses_no_write_as_standby(primary) -> None:
    client, _engine = primary
    for method, template in WRITES:
        response = _call(client, method, template)
        assert response.status_code != 409, (method, template, response.text)


def test_standby_endpoint_reports_recorded_state_and_lag(standby) -> None:
    client, engine = standby
    empty = _call(client, "GET", "/api/v1/standby").json()["data"]
    assert empty["standby"] is True and empty["currentBackupId"] is None
    created = time.time() - 120
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + ".000Z"
    _record(engine, iso, last_sync_at_ms=int(time.time() * 1000))
    data = _call(client, "GET", "/api/v1/standby").json()["data"]
    assert data["standby"] is True and data["primary"] == "region-a"
    assert data["currentBackupId"] == "20260101T000000Z-abcdef"
    assert data["currentBackupTime"] == iso
    assert 118 <= data["lagSeconds"] <= 130
    assert data["skipped"] == [{"backupId": "20251231T230000Z-000000", "reason": "corrupt"}]
    assert data["lastSyncAt"].endswith("Z")


def test_metrics_export_lag_only_on_a_standby_and_the_counters_always(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    created = time.time() - 60
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + ".000Z"
    _record(engine, iso)
    for standby, has_lag in ((True, True), (False, False)):
        metrics = RuntimeMetrics()
        metrics.bind_standby(lambda: standby_state.read_state(engine), standby)
        text = metrics.render().decode()
        assert ("ragflow_standby_lag_seconds " in text) is has_lag
        assert "ragflow_standby_applied_total 3.0" in text
        assert "ragflow_standby_skipped_total 1.0" in text
        if has_lag:
            line = next(x for x in text.splitlines() if x.startswith("ragflow_standby_lag"))
            assert 58 <= float(line.split()[1]) <= 70
    nothing = RuntimeMetrics()
    nothing.bind_standby(lambda: None, True)
    assert "ragflow_standby" not in nothing.render().decode()
    engine.dispose()


def test_promotion_is_recorded_once(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    assert standby_state.mark_promoted(engine, 1000) is False  # never followed: nothing to do
    _record(engine, "2026-01-01T00:00:00.000Z")
    assert standby_state.mark_promoted(engine, 2000) is True
    assert standby_state.mark_promoted(engine, 3000) is False
    state = standby_state.read_state(engine)
    assert state is not None and state.promoted_at_ms == 2000
    engine.dispose()


@pytest.mark.parametrize("standby", [True, False])
def test_a_standby_worker_takes_no_task_and_a_writable_one_records_promotion(
    tmp_path: Path, monkeypatch, standby: bool
) -> None:
    from ragruntime import app as app_module
    from ragruntime.config import Role

    engine = create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    _record(engine, "2026-01-01T00:00:00.000Z")
    runtime = SimpleNamespace(metadata=SimpleNamespace(engine=engine), close=lambda: None)
    workers: list[object] = []

    class FakeWorker:
        def __init__(self, *args: object) -> None:
            workers.append(self)

        def start(self) -> None: ...

        def stop(self, *_: object) -> None: ...

    monkeypatch.setattr(app_module, "open_runtime", lambda *a, **k: runtime)
    monkeypatch.setattr(app_module, "Worker", FakeWorker)
    settings = Settings(data_dir=tmp_path, api_key=KEY, role=Role.WORKER, standby=standby)
    app = create_app(settings, embedder=object())  # type: ignore[arg-type]
    with TestClient(app):
        deadline = time.monotonic() + 30
        while app.state.runtime is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    state = standby_state.read_state(engine)
    assert state is not None
    if standby:
        assert workers == [] and state.promoted_at_ms is None
    else:
        assert len(workers) == 1 and state.promoted_at_ms is not None
    engine.dispose()
