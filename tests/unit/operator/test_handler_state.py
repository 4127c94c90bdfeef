"""What the kopf layer keeps between handler calls, and the settings it runs with.

Per-cluster memory lives in kopf's per-object `memo` (kopf drops it with the object), never in
a module-level table that grows with the number of clusters (the operator-wide table the resync
pass reads holds it weakly); resourceVersion is compared for
equality only (it is opaque); the settings are read once into a frozen object, and handler
modules register nothing on import.
"""

from __future__ import annotations

import copy
import gc
import itertools
import threading
import weakref
from typing import Any

import kopf
import pytest
from cluster_helpers import cluster_body
from fake_kube import FakeKube
from ragflow_operator import names
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.handlers import (
    HANDLER_MODULES,
    alert_policy,
    backup_policy,
    cluster,
    lifecycle,
    register_handlers,
)
from ragflow_operator.handlers.resync import ResyncPass
from ragflow_operator.k8s import ObjectRef
from ragflow_operator.settings import (
    ENV_OBJECT_WORKERS,
    ENV_RESYNC,
    ENV_WORKERS,
    OperatorSettings,
)

HANDLER_MODULES_LOADED = (lifecycle, cluster, alert_policy, backup_policy)


class VersionedKube(FakeKube):
    """FakeKube whose status patches land on the stored cluster with a new, opaque version."""

    def __init__(self) -> None:
        super().__init__()
        self._versions = (f"v-{n:x}z" for n in itertools.count(1000, 7919))

    def patch_status(self, ref: ObjectRef, patch: dict[str, Any]) -> dict[str, Any]:
        super().patch_status(ref, patch)
        stored = self.objects.setdefault(ref, {"metadata": {}, "status": {}})
        stored["status"] = {**(stored.get("status") or {}), **patch}
        stored["metadata"]["resourceVersion"] = next(self._versions)
        return copy.deepcopy(stored)


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf.event needs a running operator; these tests look at status writes only."""
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)
    monkeypatch.setattr(kopf, "warn", lambda *_, **__: None)


def operator_memo(kube: FakeKube) -> kopf.Memo:
    """What lifecycle's startup puts in kopf's memo (kopf copies it for every object)."""
    memo = kopf.Memo()
    memo.client, memo.capabilities = kube, Capabilities()
    memo.settings = OperatorSettings(resync_seconds=60.0)
    cluster.install_memories(memo)
    return memo


def body_of(name: str, version: str, status: dict[str, Any] | None = None) -> kopf.Body:
    raw = cluster_body(name=name)
    raw["metadata"].update(uid=f"uid-{name}", resourceVersion=version)
    if status is not None:
        raw["status"] = status
    return kopf.Body(raw)


def module_container_sizes() -> dict[str, int]:
    """Sizes of every module-level container of the handler modules."""
    sizes = {}
    for module in HANDLER_MODULES_LOADED:
        for attr, value in vars(module).items():
            if isinstance(value, dict | set | list | weakref.WeakValueDictionary):
                sizes[f"{module.__name__}.{attr}"] = len(value)
    return sizes


def test_no_module_level_state_grows_with_the_number_of_clusters() -> None:
    kube = FakeKube()
    base = operator_memo(kube)
    before = module_container_sizes()
    memos = []
    for i in range(30):
        memo = copy.copy(base)  # as kopf does: one shallow copy per object
        cluster.on_spec(body=body_of(f"c{i:02d}", "1"), memo=memo)
        cluster.resync(body_of(f"c{i:02d}", "1"), base)  # the pass: the operator-wide memo
        memos.append(memo)
    assert len(kube.status_patches) == 30  # one status write per cluster, none by the resync
    assert module_container_sizes() == before
    assert len(base[cluster.MEMORIES]) == 30
    del memos, memo
    gc.collect()
    assert len(base[cluster.MEMORIES]) == 0  # kopf forgot the objects: so does the table


def test_per_cluster_memory_goes_with_the_object_memo() -> None:
    """kopf forgets an object's memo when the object is deleted: nothing else may hold it."""
    kube = FakeKube()
    base = operator_memo(kube)
    memos = [copy.copy(base) for _ in range(5)]
    for i, memo in enumerate(memos):
        cluster.on_spec(body=body_of(f"c{i}", "1"), memo=memo)
    held = [
        weakref.ref(value)
        for memo in memos
        for value in memo.values()
        if value not in base.values()
    ]
    assert len(held) == 5  # one memory object per cluster, in its own memo
    del memos, memo
    gc.collect()
    assert [ref() for ref in held] == [None] * 5


def test_a_stale_body_after_our_status_write_does_not_repeat_it() -> None:
    """kopf may hand the pre-write body again; opaque versions are compared for equality."""
    kube = VersionedKube()
    memo = copy.copy(operator_memo(kube))
    stale = body_of("docs", "opaque-a")
    cluster.on_spec(body=stale, memo=memo)
    assert len(kube.status_patches) == 1
    cluster.on_spec(body=stale, memo=memo)  # the body still predates our write
    assert len(kube.status_patches) == 1
    written = kube.get(cluster.cluster_ref("team-a", "docs"))
    assert written is not None
    fresh = body_of("docs", written["metadata"]["resourceVersion"], written["status"])
    cluster.on_spec(body=fresh, memo=memo)
    assert len(kube.status_patches) == 1  # nothing changed


def test_without_memory_a_stale_body_is_trusted() -> None:
    """The memory is what prevents the repeat: the same calls with a fresh memo each write."""
    kube = VersionedKube()
    base = operator_memo(kube)
    stale = body_of("docs", "opaque-a")
    cluster.on_spec(body=stale, memo=copy.copy(base))
    cluster.on_spec(body=stale, memo=copy.copy(base))
    assert len(kube.status_patches) == 2


def test_settings_come_from_the_environment_once() -> None:
    environ = {ENV_RESYNC: "2.5", ENV_WORKERS: "4", ENV_OBJECT_WORKERS: "8"}
    settings = OperatorSettings.from_environment(environ)
    assert settings == OperatorSettings(resync_seconds=2.5, workers=4, object_workers=8)
    assert OperatorSettings.from_environment({}) == OperatorSettings()
    with pytest.raises(AttributeError):
        settings.workers = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value"), [(ENV_RESYNC, "soon"), (ENV_WORKERS, "0"), (ENV_OBJECT_WORKERS, "-1")]
)
def test_a_malformed_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        OperatorSettings.from_environment({name: value})


def test_handlers_register_only_when_asked_with_the_settings_interval() -> None:
    default = kopf.get_default_registry()
    assert not any(
        h.fn.__module__.startswith("ragflow_operator") for h in default._changing.get_all_handlers()
    )
    registry = kopf.OperatorRegistry()
    register_handlers(registry, OperatorSettings(resync_seconds=7.0), HANDLER_MODULES)
    intervals = {
        h.fn.__self__.kind: h.fn.__self__.interval
        for h in registry._watching.get_all_handlers()
        if isinstance(getattr(h.fn, "__self__", None), ResyncPass)
    }
    assert intervals == {
        kind: 7.0
        for kind in (names.KIND_CLUSTER, names.KIND_ALERT_POLICY, names.KIND_BACKUP_POLICY)
    }
    assert registry._activities.get_all_handlers()  # lifecycle's startup and probe
    plurals = {h.selector.any_name for h in registry._changing.get_all_handlers()}
    assert plurals == {
        names.PLURAL_CLUSTER,
        names.PLURAL_ALERT_POLICY,
        names.PLURAL_BACKUP_POLICY,
    }


def test_kopf_reads_watches_only_as_fast_as_objects_are_handled() -> None:
    """The bound on objects in flight per kind is what keeps a burst of creations small."""
    kopf_settings = kopf.OperatorSettings()
    assert kopf_settings.queueing.worker_limit is None  # kopf's default: unbounded
    lifecycle.tune_kopf(kopf_settings, OperatorSettings(workers=4, object_workers=8))
    assert kopf_settings.queueing.worker_limit == 8
    assert kopf_settings.queueing.idle_timeout <= 1.0
    assert kopf_settings.execution.max_workers == 4
    assert kopf_settings.persistence.finalizer.startswith(names.GROUP)


def test_a_handler_that_waited_for_the_lock_acts_on_the_latest_body() -> None:
    """A reconcile queued behind another must not undo a newer spec with the body it was given."""
    stale = cluster_body({"replicas": {"api": 2}})
    latest = cluster_body({"replicas": {"api": 5}})
    client = FakeKube()
    client.put(latest)
    seen: list[Any] = []

    def queued() -> None:
        with cluster._exclusive(stale, client) as body:
            seen.append(body)

    lock = cluster._lock("team-a", "docs")
    with lock:  # another reconcile of the same cluster holds it
        waiter = threading.Thread(target=queued)
        waiter.start()
        waiter.join(timeout=0.2)
        assert waiter.is_alive()  # it waits, whatever the timing
    waiter.join(timeout=10)
    assert seen[0]["spec"] == latest["spec"]
    with cluster._exclusive(stale, client) as body:
        assert body is stale  # uncontended: no extra read
    client.objects.clear()
    waiter = threading.Thread(target=queued)
    with lock:
        waiter.start()
        waiter.join(timeout=0.2)
    waiter.join(timeout=10)
    assert seen[1] is None  # deleted meanwhile: nothing to do
