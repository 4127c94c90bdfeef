"""Runtime children: ConfigMap, API key Secret, API/worker Deployments and Services."""

from __future__ import annotations

from cluster_helpers import build, external_deps_spec, find


def env_of(deployment: dict) -> dict[str, dict]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def test_api_deployment_runs_the_api_role_with_probes_and_resources():
    result = build({"api": {"replicas": 4, "resources": {"limits": {"cpu": "2", "memory": "4Gi"}}}})
    api = find(result, "Deployment", "docs-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert api["spec"]["replicas"] == 4
    assert container["args"] == ["ragruntime", "serve", "--role", "api"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["periodSeconds"] == 5
    assert container["resources"] == {"limits": {"cpu": "2", "memory": "4Gi"}}
    assert container["ports"][0]["containerPort"] == 9380


def test_worker_deployment_runs_the_worker_role():
    worker = find(build({"workers": {"replicas": 3}}), "Deployment", "docs-worker")
    assert worker["spec"]["replicas"] == 3
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "worker"


def test_pods_follow_the_restricted_pod_security_profile():
    for name in ("docs-api", "docs-worker"):
        pod = find(build(), "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = pod["containers"][0]["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}


def test_passwords_come_from_secrets_and_never_appear_in_the_pod_spec():
    env = env_of(find(build(), "Deployment", "docs-api"))
    assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "docs-postgres-credentials",
        "key": "password",
    }
    assert env["RAGFLOW_DATABASE_URL"]["value"] == (
        "postgresql://$(DATABASE_USER):$(DATABASE_PASSWORD)@docs-postgres:5432/ragflow"
    )
    assert env["RAGFLOW_CACHE_URL"]["value"] == "redis://:$(CACHE_PASSWORD)@docs-redis:6379/0"
    assert env["RAGFLOW_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "docs-api-key"
    names = [
        e["name"]
        for e in find(build(), "Deployment", "docs-api")["spec"]["template"]["spec"]["containers"][
            0
        ]["env"]
    ]
    assert names.index("DATABASE_PASSWORD") < names.index("RAGFLOW_DATABASE_URL")


def test_external_dependencies_use_the_referenced_secrets():
    result = build(external_deps_spec())
    env = env_of(find(result, "Deployment", "docs-api"))
    assert env["DATABASE_USER"]["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "username"}
    assert env["RAGFLOW_DATABASE_URL"]["value"].endswith("@pg.example:5432/ragflow?sslmode=require")
    assert env["RAGFLOW_CACHE_URL"]["value"] == "redis://:$(CACHE_PASSWORD)@cache.example:6379/0"
    assert env["RAGFLOW_VECTOR_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "mv",
        "key": "token",
    }
    config = find(result, "ConfigMap", "docs-config")["data"]
    assert config["RAGFLOW_VECTOR_URI"] == "http://milvus.example:19530"
    assert not [m for m in result.manifests if m["kind"] == "StatefulSet"]


def test_config_map_carries_the_runtime_settings_and_rolls_pods_on_change():
    first = build({"embedding": {"batchSize": 32}})
    data = find(first, "ConfigMap", "docs-config")["data"]
    assert data["RAGFLOW_EMBEDDING_BATCH_SIZE"] == "32"
    assert data["RAGFLOW_CACHE_L1_TTL_SECONDS"] == "300"
    second = build({"embedding": {"batchSize": 16}})

    def config_hash(result):
        template = find(result, "Deployment", "docs-api")["spec"]["template"]
        return template["metadata"]["annotations"]["ragflow.operator.dev/config-hash"]

    assert config_hash(first) != config_hash(second)


def test_api_key_secret_is_create_only_and_uses_generated_value():
    secret = find(build(), "Secret", "docs-api-key")
    assert secret["metadata"]["annotations"]["ragflow.operator.dev/create-only"] == "true"
    assert list(secret["stringData"]) == ["api-key"]


def test_children_carry_labels_and_a_controller_owner_reference():
    for manifest in build().manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "docs"
        assert labels["app.kubernetes.io/managed-by"] == "ragflow-operator"
        assert labels["app.kubernetes.io/part-of"] == "ragflow"
        (owner,) = manifest["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "ragflow.operator.dev/v1alpha1",
            "kind": "RagFlowCluster",
            "name": "docs",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
