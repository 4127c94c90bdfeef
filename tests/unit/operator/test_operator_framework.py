"""Framework pieces: semantic compare, hashes, conditions, schema defaulting, capabilities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ragflow_operator import conditions, names
from ragflow_operator.apply import is_up_to_date, manifest_hash, with_hash
from ragflow_operator.capabilities import Capabilities, parse_flags
from ragflow_operator.compare import is_semantic_subset, parse_quantity
from ragflow_operator.errors import InvalidSpec
from ragflow_operator.k8s import collection_path, plural_of
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.model.defaults import crd_schema, defaulted_body

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "right"), [("1000m", "1"), ("1Gi", "1073741824"), ("0.5", "500m"), (2, "2")]
)
def test_quantities_compare_by_value(left, right):
    assert parse_quantity(left) == parse_quantity(right)
    assert is_semantic_subset({"cpu": left}, {"cpu": right})


def test_semantic_subset_ignores_server_fields_and_absent_zero_values():
    desired = {"spec": {"replicas": 2, "readOnly": False, "volumes": [{"emptyDir": {}}]}}
    live = {"spec": {"replicas": 2, "volumes": [{"emptyDir": {}}], "revisionHistoryLimit": 10}}
    assert is_semantic_subset(desired, live)
    assert not is_semantic_subset({"spec": {"replicas": 3}}, live)
    assert not is_semantic_subset({"spec": {"volumes": [{}, {}]}}, live)
    assert not is_semantic_subset({"a": True}, {"a": "true"})


def test_up_to_date_needs_the_same_hash_and_no_drift():
    desired = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {"a": "1"},
    }
    stamped = with_hash(desired)
    assert manifest_hash(stamped) == manifest_hash(desired)
    live = {**stamped, "metadata": {**stamped["metadata"], "uid": "u", "resourceVersion": "9"}}
    assert is_up_to_date(stamped, live)
    assert not is_up_to_date(stamped, {**live, "data": {"a": "2"}})  # drift
    changed = with_hash({**desired, "data": {"a": "1", "b": "2"}})
    assert not is_up_to_date(changed, live)  # spec change
    assert not is_up_to_date(stamped, None)


def test_transition_time_moves_only_when_status_changes():
    first = conditions.set_condition(
        [], type_="Ready", status="False", reason="A", message="m", generation=1, now=NOW
    )
    later = NOW + timedelta(minutes=5)
    same = conditions.set_condition(
        first, type_="Ready", status="False", reason="B", message="n", generation=2, now=later
    )
    flipped = conditions.set_condition(
        same, type_="Ready", status="True", reason="C", message="o", generation=2, now=later
    )
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["reason"] == "B"
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"


def test_one_status_editor_keeps_or_drops_fields_and_edits_conditions():
    current = {
        "observedGeneration": 1,
        "lastBackup": {"id": "b1"},
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2025-12-31T00:00:00Z"},
            {"type": "Old", "status": "True"},
        ],
    }
    editor = conditions.StatusEditor(2, current, NOW)
    editor.set("Ready", conditions.TRUE, "Fine", "x" * 5000)
    editor.set("New", conditions.state(None), "Unknown", "not yet")
    editor.remove("Old")
    ready, new = editor.status["conditions"]
    assert editor.status["observedGeneration"] == 2
    assert editor.status["lastBackup"] == {"id": "b1"}
    assert ready["lastTransitionTime"] == "2025-12-31T00:00:00Z"  # status unchanged: time kept
    assert len(ready["message"]) == conditions.MESSAGE_MAX_CHARS
    assert (new["type"], new["status"]) == ("New", "Unknown")
    assert current["conditions"][1]["type"] == "Old"  # the current status is never edited
    rebuilt = conditions.StatusEditor(2, current, NOW, keep_fields=False)
    assert set(rebuilt.status) == {"observedGeneration", "conditions"}
    assert [conditions.state(v) for v in (True, False, None)] == ["True", "False", "Unknown"]


def test_status_patch_is_none_when_nothing_changed():
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert conditions.status_patch(status, dict(status)) is None
    assert conditions.status_patch({**status, "lastBackup": {"id": "x"}}, status) is None
    assert conditions.status_patch(status, {**status, "phase": "Degraded"}) == {"phase": "Degraded"}


def test_defaults_come_from_the_crd_schema():
    body = defaulted_body({"metadata": {"name": "x"}}, names.PLURAL_CLUSTER)
    spec = body["spec"]
    assert spec["api"]["replicas"] == 2
    assert spec["autoscaling"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 60
    assert spec["database"] == {"managed": {"image": "postgres:16-alpine", "storage": "10Gi"}}
    external = defaulted_body(
        {"spec": {"database": {"external": {"host": "h", "credentialsSecret": {"name": "s"}}}}},
        names.PLURAL_CLUSTER,
    )["spec"]["database"]
    assert "managed" not in external
    assert external["external"]["port"] == 5432
    assert external["external"]["credentialsSecret"]["passwordKey"] == "password"


def test_cluster_model_is_a_frozen_tree_with_the_crds_defaults():
    from dataclasses import FrozenInstanceError

    schema = crd_schema(names.PLURAL_CLUSTER)["properties"]["spec"]["properties"]
    model = ClusterModel.from_body({"metadata": {"name": "x", "namespace": "ns"}})
    # every default comes from the CRD (model/defaults.py), none is re-stated in Python
    assert model.api.replicas == schema["api"]["properties"]["replicas"]["default"]
    assert model.image.tag == schema["image"]["properties"]["tag"]["default"]
    ingress = schema["ingress"]["properties"]
    assert model.ingress.rate_limit_rps == ingress["rateLimit"]["properties"]["rps"]["default"]
    assert model.database.managed is not None and model.database.external is None
    assert model.standby is None and model.restore_from is None
    with pytest.raises(FrozenInstanceError):
        model.api.replicas = 5  # type: ignore[misc]
    external = ClusterModel.from_body(
        {
            "metadata": {"name": "x"},
            "spec": {"database": {"external": {"host": "pg", "credentialsSecret": {"name": "s"}}}},
        }
    ).database.external
    assert external is not None and (external.port, external.password.key) == (5432, "password")


def test_model_rejects_both_managed_and_external():
    body = {
        "metadata": {"name": "x"},
        "spec": {"cache": {"managed": {}, "external": {"url": "redis://r"}}},
    }
    with pytest.raises(InvalidSpec, match=r"exactly one of spec\.cache"):
        ClusterModel.from_body(body)


def test_endpoint_prefers_the_ingress_host():
    plain = ClusterModel.from_body({"metadata": {"name": "x", "namespace": "ns"}})
    assert plain.endpoint() == "http://x-api.ns.svc:9380"
    tls = ClusterModel.from_body(
        {
            "metadata": {"name": "x"},
            "spec": {"ingress": {"enabled": True, "host": "h.io", "tls": {}}},
        }
    )
    assert tls.endpoint() == "https://h.io"


def test_capabilities_from_discovery_and_flags():
    served = {"monitoring.coreos.com/v1": {"ServiceMonitor", "PodMonitor"}}
    caps = Capabilities.from_resources(served)
    assert caps == Capabilities(service_monitor=True)
    routing = {"monitoring.coreos.com/v1alpha1": {"AlertmanagerConfig"}}
    assert Capabilities.from_resources(routing) == Capabilities(alertmanager_config=True)
    assert parse_flags("servicemonitor,vpa") == Capabilities(
        service_monitor=True, vertical_pod_autoscaler=True
    )
    assert parse_flags("all") == Capabilities.all_enabled()
    with pytest.raises(ValueError, match="unknown capability"):
        parse_flags("istio")


def test_resource_paths():
    assert plural_of("Ingress") == "ingresses"
    assert plural_of("NetworkPolicy") == "networkpolicies"
    assert collection_path("v1", "Secret", "ns") == "/api/v1/namespaces/ns/secrets"
    assert (
        collection_path("apps/v1", "Deployment", "ns") == "/apis/apps/v1/namespaces/ns/deployments"
    )
