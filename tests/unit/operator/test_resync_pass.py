"""The operator-wide resync pass (handlers/resync.py) that replaced a kopf timer per object.

What a pass checks (every known object once, read fresh; nothing deleted, nothing a kind says
is not due), how a transient failure backs off for that object alone, how many checks run at
once, and that the loop's checks run in the context of the kopf call that started it (where
kopf.event reaches kopf's poster). The RagFlowCluster wiring: the skip after a recent
reconcile; no timers, no finalizer and no kopf index for any kind.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import gc
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import kopf
import pytest
from cluster_helpers import cluster_body
from fake_kube import FakeKube
from ragflow_operator import errors, metrics, names
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.handlers import HANDLER_MODULES, cluster, register_handlers
from ragflow_operator.handlers.resync import ResyncPass
from ragflow_operator.k8s import ObjectRef
from ragflow_operator.settings import OperatorSettings

NAMESPACE = "team-a"


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf.event needs a running operator; these tests look at checks and status writes."""
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)
    monkeypatch.setattr(kopf, "warn", lambda *_, **__: None)


class CountingKube(FakeKube):
    """FakeKube that counts reads of RagFlowClusters."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        if ref.kind == names.KIND_CLUSTER:
            self.reads.append(ref.name)
        return super().get(ref)


class Checks:
    """A kind's check that records what it saw and fails as told, per object name."""

    def __init__(self, failures: Mapping[str, list[Exception]] | None = None) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.failures = {name: list(excs) for name, excs in (failures or {}).items()}
        self.guard = threading.Lock()

    def __call__(self, body: Mapping[str, Any], memo: kopf.Memo) -> None:
        name = body["metadata"]["name"]
        with self.guard:
            self.seen.append((name, body.get("spec")))
            pending = self.failures.get(name)
            failure = pending.pop(0) if pending else None
        if failure is not None:
            raise failure

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


def stored(kube: FakeKube, name: str, **meta: Any) -> tuple[str, str]:
    body = cluster_body({"replicas": {"api": 1}}, name=name)
    body["metadata"].update(meta)
    kube.put(body)
    return (NAMESPACE, name)


def started(kube: FakeKube, keys: list[tuple[str, str]], check: Any, **options: Any) -> ResyncPass:
    resync = ResyncPass(
        api_version=names.API_VERSION,
        kind=names.KIND_CLUSTER,
        check=check,
        interval=options.pop("interval", 0.01),  # its starts spread over 5 ms
        concurrency=options.pop("concurrency", 2),
        **options,
    )
    memo = kopf.Memo()
    memo.client = kube
    asyncio.run(resync.start(memo))
    resync.keys.update(keys)  # as the watch events of these objects would
    return resync


def test_a_pass_checks_every_known_object_once_on_a_fresh_body() -> None:
    kube = CountingKube()
    keys = [stored(kube, f"c{i}") for i in range(4)]
    keys.append(stored(kube, "leaving", deletionTimestamp="2026-01-01T00:00:00Z"))
    keys.append((NAMESPACE, "gone"))  # deleted before the pass read it, its event missed
    check = Checks()
    resync = started(kube, keys, check)
    kube.objects[cluster.cluster_ref(NAMESPACE, "c2")]["spec"] = {"replicas": {"api": 7}}
    asyncio.run(resync.run_pass())
    assert sorted(check.names) == ["c0", "c1", "c2", "c3"]
    assert dict(check.seen)["c2"] == {"replicas": {"api": 7}}  # read now, not when seen
    assert resync.retries == {}
    assert (NAMESPACE, "gone") not in resync.keys and (NAMESPACE, "leaving") in resync.keys


def test_an_object_not_due_is_skipped_without_a_read() -> None:
    kube = CountingKube()
    keys = [stored(kube, name) for name in ("busy", "idle")]
    check = Checks()
    resync = started(kube, keys, check, due=lambda namespace, name, memo: name == "idle")
    asyncio.run(resync.run_pass())
    assert check.names == ["idle"]
    assert kube.reads == ["idle"]


def test_a_transient_failure_retries_that_object_alone_with_growing_delays() -> None:
    kube = CountingKube()
    keys = [stored(kube, name) for name in ("flaky", "fine")]
    busy = errors.ApiThrottled("apply Deployment/flaky-api: HTTP 503", 503)
    check = Checks({"flaky": [busy, busy]})
    delays: list[int] = []

    def backoff(attempt: int) -> float:
        delays.append(attempt)
        return 30.0

    resync = started(kube, keys, check, backoff=backoff)
    before = time.monotonic()
    asyncio.run(resync.run_pass())
    assert sorted(check.names) == ["fine", "flaky"]
    retry = resync.retries[(NAMESPACE, "flaky")]
    assert retry.attempts == 1 and retry.at >= before + 30.0
    asyncio.run(resync.run_retries())  # not due yet: nothing runs
    assert len(check.names) == 2
    resync.retries[(NAMESPACE, "flaky")] = type(retry)(retry.attempts, 0.0)
    asyncio.run(resync.run_retries())
    assert check.names[2:] == ["flaky"]  # the other object is not checked again
    assert resync.retries[(NAMESPACE, "flaky")].attempts == 2
    resync.retries[(NAMESPACE, "flaky")] = type(retry)(2, 0.0)
    asyncio.run(resync.run_retries())
    assert check.names[3:] == ["flaky"] and resync.retries == {}
    assert delays == [0, 1]  # 5 s, then 10 s with outcome.backoff


def test_a_reported_failure_is_logged_and_left_to_the_next_pass(caplog) -> None:
    kube = CountingKube()
    keys = [stored(kube, "broken")]
    check = Checks({"broken": [errors.ApiError("patch status of broken: HTTP 403", 403)]})
    resync = started(kube, keys, check)
    with caplog.at_level(logging.WARNING, logger="ragflow_operator.handlers.resync"):
        asyncio.run(resync.run_pass())
    assert resync.retries == {}
    assert [r.message for r in caplog.records] == ["resync failed"]
    asyncio.run(resync.run_pass())
    assert check.names == ["broken", "broken"]


def test_a_retry_of_a_deleted_object_is_dropped() -> None:
    kube = CountingKube()
    keys = [stored(kube, "flaky")]
    check = Checks({"flaky": [errors.ApiThrottled("timeout", 0)]})
    resync = started(kube, keys, check)
    asyncio.run(resync.run_pass())
    assert list(resync.retries) == [(NAMESPACE, "flaky")]
    resync.keys.discard((NAMESPACE, "flaky"))  # as its DELETED event does
    asyncio.run(resync.run_pass())
    assert resync.retries == {}


def test_no_more_checks_run_at_once_than_the_concurrency() -> None:
    kube = CountingKube()
    keys = [stored(kube, f"c{i}") for i in range(8)]
    running, most = [0], [0]
    guard = threading.Lock()

    def slow(body: Mapping[str, Any], memo: kopf.Memo) -> None:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with guard:
            running[0] -= 1

    resync = started(kube, keys, slow, concurrency=3, interval=0.01)
    asyncio.run(resync.run_pass())
    assert sorted(kube.reads) == sorted(name for _, name in keys)
    assert 1 <= most[0] <= 3


def test_the_loop_runs_in_the_context_of_the_watch_event_that_started_it() -> None:
    """kopf.event needs kopf's per-object context; the loop's checks must run inside it."""
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker")
    kube = CountingKube()
    keys = [stored(kube, "docs")]
    seen: list[str] = []

    def check(body: Mapping[str, Any], memo: kopf.Memo) -> None:
        seen.append(marker.get("unset"))

    resync = started(kube, keys, check, interval=0.02)

    async def operator() -> None:
        async def kopf_event_call(name: str) -> None:
            marker.set("kopf's context")
            await resync.observe(event={"type": "ADDED"}, namespace=NAMESPACE, name=name)

        await asyncio.create_task(kopf_event_call("docs"))
        first = resync.task
        await resync.observe(event={"type": "ADDED"}, namespace=NAMESPACE, name="more")
        await resync.observe(event={"type": "DELETED"}, namespace=NAMESPACE, name="more")
        assert resync.task is first  # one loop, whatever the number of objects
        assert resync.keys == {(NAMESPACE, "docs")}
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await resync.stop()
        assert first is not None and first.cancelled() and resync.task is None

    asyncio.run(operator())
    assert seen[:2] == ["kopf's context", "kopf's context"]  # a pass every interval


# --- RagFlowCluster's use of it --------------------------------------------------------------


def operator_memo(kube: FakeKube, resync_seconds: float = 60.0) -> kopf.Memo:
    memo = kopf.Memo()
    memo.client, memo.capabilities = kube, Capabilities()
    memo.settings = OperatorSettings(resync_seconds=resync_seconds)
    cluster.install_memories(memo)
    return memo


def test_a_cluster_reconciled_less_than_half_an_interval_ago_is_not_due() -> None:
    kube = FakeKube()
    base = operator_memo(kube)
    memo = copy.copy(base)  # as kopf does: one shallow copy per object
    assert cluster.resync_due(NAMESPACE, "docs", base)  # never handled: due
    cluster.on_spec(body=kopf.Body(cluster_body()), memo=memo)
    assert not cluster.resync_due(NAMESPACE, "docs", base)
    memo["cluster_memory"].last_reconcile -= 31.0
    assert cluster.resync_due(NAMESPACE, "docs", base)
    del memo
    gc.collect()
    assert len(base[cluster.MEMORIES]) == 0  # kopf forgot the object: so does the table
    assert cluster.resync_due(NAMESPACE, "docs", base)


def test_the_pass_reconciles_a_cluster_with_its_memory_and_writes_nothing_when_all_is_well():
    kube = FakeKube()
    base = operator_memo(kube)
    body = cluster_body()
    kube.put(body)
    memo = copy.copy(base)
    cluster.on_spec(body=kopf.Body(body), memo=memo)
    writes = (len(kube.writes), len(kube.status_patches))
    fresh = kube.get(cluster.cluster_ref(NAMESPACE, "docs"))
    assert fresh is not None and writes[1] == 1
    fresh["status"] = kube.status_patches[0][1]  # what the API server now holds
    fresh["metadata"]["resourceVersion"] = "2"
    cluster.resync(fresh, base)
    assert (len(kube.writes), len(kube.status_patches)) == writes


def test_a_deleted_cluster_forgets_its_standby_series(monkeypatch: pytest.MonkeyPatch) -> None:
    forgotten: list[dict[str, str]] = []
    monkeypatch.setattr(metrics, "forget_standby", lambda **who: forgotten.append(who))
    body = kopf.Body(cluster_body())
    asyncio.run(cluster.forget(event={"type": "MODIFIED"}, body=body))
    assert forgotten == []
    asyncio.run(cluster.forget(event={"type": "DELETED"}, body=body))
    assert forgotten == [{"namespace": NAMESPACE, "cluster": "docs"}]


def test_no_kind_has_a_timer_or_needs_a_finalizer() -> None:
    """One pass per kind: no per-object timer, so deletion never waits on the operator."""
    registry = kopf.OperatorRegistry()
    register_handlers(registry, OperatorSettings(resync_seconds=7.0, workers=8), HANDLER_MODULES)
    assert registry._spawning.get_all_handlers() == []
    assert not any(h.requires_finalizer for h in registry._changing.get_all_handlers())
    # a kopf index would hold every handler until all objects are indexed, which objects
    # beyond queueing.worker_limit never are: an operator restarted with more would stall
    assert registry._indexing.get_all_handlers() == []
    passes = {
        h.fn.__self__.kind: h.fn.__self__
        for h in registry._watching.get_all_handlers()
        if isinstance(getattr(h.fn, "__self__", None), ResyncPass)
    }
    assert sorted(passes) == sorted(
        [names.KIND_CLUSTER, names.KIND_BACKUP_POLICY, names.KIND_ALERT_POLICY]
    )
    assert {(p.interval, p.concurrency) for p in passes.values()} == {(7.0, 2)}
    assert passes[names.KIND_CLUSTER].due is cluster.resync_due


def test_a_pass_that_fails_is_logged_and_the_loop_goes_on(caplog) -> None:
    kube = CountingKube()
    keys = [stored(kube, "docs")]
    check = Checks()
    calls = [0]

    def due(namespace: str, name: str, memo: kopf.Memo) -> bool:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("a bug in a due check")
        return True

    resync = started(kube, keys, check, due=due, interval=0.02)

    async def operator() -> None:
        await resync.observe(event={"type": "ADDED"}, namespace=NAMESPACE, name="docs")
        deadline = time.monotonic() + 10
        while not check.seen and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await resync.stop()

    with caplog.at_level(logging.ERROR, logger="ragflow_operator.handlers.resync"):
        asyncio.run(operator())
    assert [r.message for r in caplog.records] == ["resync pass failed"]
    assert check.names == ["docs"]  # the next pass checked it
