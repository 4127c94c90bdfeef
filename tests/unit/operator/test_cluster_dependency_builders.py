"""Managed PostgreSQL, Redis and Milvus: StatefulSet + PVC template + Service + Secret."""

from __future__ import annotations

from cluster_helpers import build, external_deps_spec, find, kinds


def test_managed_dependencies_are_statefulsets_with_storage_services_and_credentials():
    result = build({"database": {"managed": {"storage": "50Gi", "storageClassName": "fast"}}})
    pg = find(result, "StatefulSet", "docs-postgres")
    claim = pg["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "50Gi"
    assert claim["storageClassName"] == "fast"
    assert pg["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    env = {e["name"]: e for e in pg["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (
        env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "docs-postgres-credentials"
    )
    secret = find(result, "Secret", "docs-postgres-credentials")
    assert secret["stringData"]["username"] == "ragflow"
    assert secret["metadata"]["annotations"]["ragflow.operator.dev/create-only"] == "true"
    assert find(result, "Service", "docs-postgres")["spec"]["ports"][0]["port"] == 5432
    assert find(result, "Service", "docs-redis")["spec"]["ports"][0]["port"] == 6379
    milvus = find(result, "StatefulSet", "docs-milvus")
    assert milvus["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "milvus",
        "run",
        "standalone",
    ]
    assert find(result, "Secret", "docs-redis-credentials")["stringData"] == {
        "password": "generated-by-operator-on-create"
    }


def test_dependency_pods_are_restricted_too():
    for name in ("docs-postgres", "docs-redis", "docs-milvus"):
        pod = find(build(), "StatefulSet", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]["securityContext"]
        assert container["readOnlyRootFilesystem"] is True
        assert container["capabilities"]["drop"] == ["ALL"]


def test_external_dependencies_build_no_statefulsets_services_or_credentials():
    built = kinds(build(external_deps_spec()))
    assert not [k for k in built if k.startswith("StatefulSet/")]
    assert "Secret/docs-postgres-credentials" not in built
    assert "Service/docs-postgres" not in built
    assert "NetworkPolicy/docs-dependencies" not in built


def test_generated_values_are_used_when_given():
    from cluster_helpers import cluster_body
    from ragflow_operator.builders import cluster
    from ragflow_operator.capabilities import Capabilities
    from ragflow_operator.model.cluster import ClusterModel

    model = ClusterModel.from_body(cluster_body())
    built = cluster.build(model, Capabilities(), generated={"docs-api-key": {"api-key": "s3cr3t"}})
    secret = next(m for m in built.manifests if m["metadata"]["name"] == "docs-api-key")
    assert secret["stringData"] == {"api-key": "s3cr3t"}
