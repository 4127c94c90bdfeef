"""Invalid resources are rejected or reported, never half-applied (issue: all-or-nothing).

Covers, without a cluster: the API error classification (k8s._translate, handlers/outcome.py),
the dry-run phase of apply.py (one refused child and nothing is written; a name another owner
controls is refused), every kind's handler turning a failure into Ready=False plus a Warning
Event instead of a traceback loop, and the review defects (the backup-now field path, forgotten
backup metrics). The real API server's side is in e2e/test_invalid_resources.py.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest
from cluster_helpers import cluster_body
from croniter import CroniterBadDateError
from fake_kube import FakeKube
from kopf_events import captured_events  # noqa: F401 - the `events` fixture
from ragflow_operator import errors, metrics, names
from ragflow_operator.apply import apply_children
from ragflow_operator.builders.alerts import template_problem
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.handlers import alert_policy, backup_policy, cluster, outcome
from ragflow_operator.k8s import _translate
from ragflow_operator.model.backup_policy import BackupPolicyModel
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.settings import OperatorSettings

NS = "team-a"
SELECTOR = names.instance_labels("docs")


def child(kind: str, name: str, api_version: str = "v1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "labels": dict(SELECTOR)},
        **({"spec": spec} if spec else {"data": {"k": "v"}}),
    }


# --- classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.ApiInvalid),
        (422, errors.ApiInvalid),
        (409, errors.ApiConflict),
        (404, errors.ApiNotFound),
        (408, errors.ApiThrottled),
        (429, errors.ApiThrottled),
        (500, errors.ApiThrottled),
        (503, errors.ApiThrottled),
        (403, errors.ApiError),
    ],
)
def test_api_statuses_translate_to_their_class(status: int, kind: type) -> None:
    err = _translate(status, b'{"message": "quantities must match the regular expression"}', "x")
    assert type(err) is kind
    assert "quantities must match" in str(err)


def test_an_object_the_server_cannot_decode_is_invalid_not_busy() -> None:
    body = (
        b'{"message": "failed to convert new object (ns/x; batch/v1, Kind=CronJob) to proper '
        b"version: unable to convert unstructured object to batch/v1, Kind=CronJob: quantities "
        b'must match the regular expression"}'
    )
    assert type(_translate(500, body, "check CronJob/x")) is errors.ApiInvalid
    assert type(_translate(500, b'{"message": "etcdserver: leader changed"}', "x")) is (
        errors.ApiThrottled
    )


@pytest.mark.parametrize(
    ("exc", "reason", "transient"),
    [
        (errors.ApiInvalid("apply Deployment/docs-api: bad quantity", 400), "ChildRejected", False),
        (errors.ChildrenRejected(["a", "b"]), "ChildRejected", False),
        (errors.InvalidSpec("bad", reason="InvalidCron"), "InvalidCron", False),
        (errors.MissingReference("no Secret", reason="MissingSecret"), "MissingSecret", False),
        (errors.ApiError("forbidden", 403), "ApiError", False),
        (errors.ApiConflict("conflict", 409), "ApiError", True),
        (errors.ApiThrottled("busy", 429), "ApiError", True),
        (errors.ApiThrottled("timeout", 0), "ApiError", True),
        (CroniterBadDateError("failed to find next date"), "ReconcileError", False),
        (KeyError("spec"), "ReconcileError", False),
    ],
)
def test_every_failure_has_a_reason_and_a_retry_class(exc, reason, transient) -> None:
    failure = outcome.classify(exc)
    assert (failure.reason, failure.transient) == (reason, transient)
    assert failure.message


def test_transient_retries_back_off_up_to_a_ceiling() -> None:
    delays = [outcome.backoff(retry) for retry in range(10)]
    assert delays[:4] == [5.0, 10.0, 20.0, 40.0]
    assert delays == sorted(delays) and max(delays) == outcome.BACKOFF_MAX_SECONDS
    assert outcome.backoff(10_000) == outcome.BACKOFF_MAX_SECONDS


# --- all or nothing --------------------------------------------------------------------------


def reject_cpu_above_limit(manifest: dict[str, Any]) -> str | None:
    if (manifest.get("spec") or {}).get("cpu") == "too-much":
        return "spec.cpu: Invalid value: must be less than or equal to cpu limit"
    return None


def test_one_refused_child_means_nothing_is_written() -> None:
    kube = FakeKube(reject=reject_cpu_above_limit)
    desired = [
        child("ConfigMap", "docs-config"),
        child("Service", "docs-api", port=80),
        child("Deployment", "docs-api", "apps/v1", cpu="too-much"),
        child("ConfigMap", "docs-later"),
    ]
    with pytest.raises(errors.ChildrenRejected) as raised:
        apply_children(kube, desired, namespace=NS, owner_uid="uid-1", selector=SELECTOR)
    assert kube.writes == []
    assert raised.value.reason == "ChildRejected"
    assert "Deployment/docs-api" in str(raised.value) and "cpu limit" in str(raised.value)
    # every child was checked by the server, the refused one included
    assert len(kube.dry_runs) == 3


def test_existing_children_stay_as_they_were_when_an_update_is_refused() -> None:
    kube = FakeKube(reject=reject_cpu_above_limit)
    first = [child("ConfigMap", "docs-config"), child("Deployment", "docs-api", "apps/v1", cpu="1")]
    apply_children(kube, first, namespace=NS, owner_uid="uid-1", selector=SELECTOR)
    before = copy.deepcopy(kube.objects)
    changed = [
        {**child("ConfigMap", "docs-config"), "data": {"k": "new"}},
        child("Deployment", "docs-api", "apps/v1", cpu="too-much"),
    ]
    kube.writes.clear()
    with pytest.raises(errors.ChildrenRejected):
        apply_children(kube, changed, namespace=NS, owner_uid="uid-1", selector=SELECTOR)
    assert kube.writes == [] and kube.objects == before


def test_unchanged_children_cost_no_dry_run() -> None:
    kube = FakeKube()
    desired = [child("ConfigMap", "docs-config")]
    apply_children(kube, desired, namespace=NS, owner_uid="uid-1", selector=SELECTOR)
    kube.dry_runs.clear()
    result = apply_children(kube, desired, namespace=NS, owner_uid="uid-1", selector=SELECTOR)
    assert kube.dry_runs == [] and result.writes == 0


def test_a_name_controlled_by_another_owner_is_refused_not_taken_over() -> None:
    kube = FakeKube()
    theirs = child("ConfigMap", "docs-backup-config")
    theirs["metadata"]["labels"] = {"app.kubernetes.io/instance": "docs-backup"}
    theirs["metadata"]["ownerReferences"] = [
        {"kind": "RagFlowCluster", "name": "docs-backup", "uid": "uid-other", "controller": True}
    ]
    kube.put(theirs)
    with pytest.raises(errors.ChildrenRejected) as raised:
        apply_children(
            kube,
            [child("ConfigMap", "docs-backup-config")],
            namespace=NS,
            owner_uid="uid-1",
            selector=SELECTOR,
        )
    assert raised.value.reason == "NameConflict"
    assert "RagFlowCluster docs-backup" in str(raised.value)
    assert kube.writes == []


# --- every kind reports instead of looping ---------------------------------------------------


def test_cluster_with_a_refused_child_is_ready_false_with_an_event_and_no_children(
    events,
) -> None:
    kube = FakeKube(
        reject=lambda m: (
            "minAvailable: Invalid value" if m["kind"] == "PodDisruptionBudget" else None
        )
    )
    body = cluster_body({"podDisruptionBudget": {"minAvailable": "150%"}})
    cluster.reconcile(body, kube, _capabilities())
    assert kube.writes == []
    (_, patch), *_ = kube.status_patches
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ChildRejected")
    assert "PodDisruptionBudget/docs-api" in ready["message"]
    assert events == [{"type": "Warning", "reason": "ChildRejected", "message": ready["message"]}]


def test_cluster_with_an_inline_cache_password_is_refused_and_the_password_is_nowhere(
    events,
) -> None:
    secret = "hunter2-s3cr3t"
    kube = FakeKube()
    spec = {"cache": {"external": {"url": f"redis://app:{secret}@cache:6379/0"}}}
    cluster.reconcile(cluster_body(spec), kube, _capabilities())
    assert kube.writes == []
    (_, patch), *_ = kube.status_patches
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "CredentialsInSpec"
    assert secret not in repr(patch) and secret not in repr(events)


def test_a_username_alone_in_a_url_is_not_a_credential() -> None:
    spec = {"cache": {"external": {"url": "redis://app@cache:6379/0"}}}
    external = ClusterModel.from_body(cluster_body(spec)).cache.external
    assert external is not None and external.url.startswith("redis://")


def _capabilities() -> Capabilities:
    return Capabilities.all_enabled()


POLICY: dict[str, Any] = {
    "apiVersion": names.API_VERSION,
    "kind": names.KIND_BACKUP_POLICY,
    "metadata": {"name": "nightly", "namespace": NS, "uid": "uid-p", "generation": 2},
    "spec": {
        "clusterRef": {"name": "docs"},
        "schedules": [{"name": "hourly", "schedule": "0 * * * *"}],
        "destinations": [
            {"name": "primary", "s3": {"bucket": "b", "credentialsSecret": {"name": "aws"}}},
            {"name": "secondary", "azure": {"container": "c", "credentialsSecret": {"name": "az"}}},
        ],
        "encryption": {"keySecret": {"name": "backup-keys"}},
    },
}


def _policy_body(**spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(POLICY)
    body["spec"].update(spec)
    return body


def test_a_cron_that_never_fires_is_invalid_spec_not_a_croniter_crash() -> None:
    body = _policy_body(schedules=[{"name": "never", "schedule": "0 0 31 2 *"}])
    with pytest.raises(errors.InvalidSpec) as raised:
        BackupPolicyModel.from_body(body)
    assert raised.value.reason == "InvalidCron" and "never fires" in str(raised.value)


def test_backup_policy_failure_is_ready_false_with_a_warning_event(events) -> None:
    kube = FakeKube()
    body = _policy_body(schedules=[{"name": "never", "schedule": "0 0 31 2 *"}])
    backup_policy.run_reconcile(kube, body)  # no exception: reported, not retried in a loop
    (_, patch), *_ = kube.status_patches
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidCron")
    assert kube.writes == []
    assert [e["reason"] for e in events if e["type"] == "Warning"] == ["InvalidCron"]


def test_backup_policy_with_a_refused_cronjob_writes_nothing(events) -> None:
    kube = FakeKube(reject=lambda m: "spec.schedule: bad" if m["kind"] == "CronJob" else None)
    body = _policy_body()
    kube.put(
        {
            "apiVersion": names.API_VERSION,
            "kind": names.KIND_CLUSTER,
            "metadata": {"name": "docs", "namespace": NS, "uid": "uid-c"},
            "spec": {},
        }
    )
    for name in ("aws", "az"):
        kube.put(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}}
        )
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "backup-keys", "namespace": NS},
            "data": {"keyring": "eA=="},
        }
    )
    backup_policy.run_reconcile(kube, body)
    assert kube.writes == []
    (_, patch), *_ = kube.status_patches
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ChildRejected")
    assert events[-1]["type"] == "Warning"


def test_backup_now_is_watched_on_the_whole_annotation_key() -> None:
    """kopf splits a dotted string path; the tuple keeps `ragflow.operator.dev/backup-now` whole."""
    registry = kopf.OperatorRegistry()
    backup_policy.register(registry, OperatorSettings())
    fields = {
        handler.field
        for handler in registry._changing.get_all_handlers()
        if handler.fn is backup_policy.on_change and handler.field is not None
    }
    assert ("metadata", "annotations", names.ANNOTATION_BACKUP_NOW) in fields
    assert not any("ragflow" in f and "operator" in f for f in fields)


def test_a_deleted_backup_policy_forgets_its_metrics() -> None:
    body = _policy_body()
    labels = ("team-a", "docs", "nightly")
    finished = "2026-03-01T00:00:00Z"
    status = {
        "lastBackup": {"succeeded": True, "finishedAt": finished, "job": "j"},
        "lastSuccessfulBackup": {"finishedAt": finished, "job": "j"},
    }
    metrics.observe_backup_policy(
        namespace=labels[0], cluster=labels[1], policy=labels[2], previous={}, status=status
    )
    assert _has_series(labels)
    backup_policy.on_event(event={"type": "MODIFIED"}, body=body)
    assert _has_series(labels)
    backup_policy.on_event(event={"type": "DELETED"}, body=body)
    assert not _has_series(labels)


def _has_series(labels: tuple[str, str, str]) -> bool:
    wanted = dict(zip(("namespace", "cluster", "policy"), labels, strict=True))
    for family in metrics.BACKUP_LAST_SUCCESS.collect():
        for sample in family.samples:
            if all(sample.labels.get(k) == v for k, v in wanted.items()):
                return True
    return False


def test_a_second_alert_policy_for_one_cluster_is_reported_not_overlapping(events) -> None:
    kube = FakeKube()
    first = _alert_body("prod", "2026-01-01T00:00:00Z")
    second = _alert_body("prod-copy", "2026-01-02T00:00:00Z")
    kube.put(first)
    kube.put(second)
    alert_policy.run_reconcile(kube, second)
    assert kube.writes == []
    (_, patch), *_ = kube.status_patches
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DuplicatePolicy")
    assert "AlertPolicy prod" in ready["message"]
    assert events[-1]["type"] == "Warning"
    alert_policy.run_reconcile(kube, first)  # the oldest one is in charge
    assert any(verb == "apply" for verb, _ in kube.writes)


def _alert_body(name: str, created: str) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_ALERT_POLICY,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": created,
        },
        "spec": {"clusterRef": {"name": "docs"}},
    }


def test_an_unterminated_template_is_an_invalid_rule(events) -> None:
    kube = FakeKube()
    body = _alert_body("prod", "2026-01-01T00:00:00Z")
    body["spec"]["customRules"] = [
        {"name": "Broken", "expr": "up == 0", "summary": "down: {{ $labels.pod"}
    ]
    kube.put(body)
    alert_policy.run_reconcile(kube, body)
    assert kube.writes == []
    (_, patch), *_ = kube.status_patches
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidRule")
    assert "rule Broken: summary" in ready["message"]


@pytest.mark.parametrize(
    ("text", "ok"),
    [("{{ $value }}", True), ("plain", True), ("a {{ b }} c", True), ("{{ x", False)],
)
def test_template_problem(text: str, ok: bool) -> None:
    assert (template_problem(text) == "") is ok


def test_handlers_never_let_a_reported_failure_escape(monkeypatch, events) -> None:
    """An unexpected error in a reconcile is reported (Ready=False), not re-raised by kopf."""

    def boom(*_: Any, **__: Any) -> None:
        raise CroniterBadDateError("failed to find next date")

    monkeypatch.setattr(backup_policy, "reconcile_backup_policy", boom)
    kube = FakeKube()
    backup_policy.run_reconcile(kube, _policy_body())
    (_, patch), *_ = kube.status_patches
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["reason"], ready["status"]) == ("ReconcileError", "False")
    assert "CroniterBadDateError" in ready["message"]
