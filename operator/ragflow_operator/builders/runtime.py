"""The runtime children of a RagFlowCluster: config, API key, API/worker Deployments, Services.

Called by builders/cluster.py. The pods run `ragruntime serve --role api|worker` with the
runtime's RAGFLOW_* settings (non-secret ones in the ConfigMap, secret ones from Secrets) and the
restricted Pod Security profile. Connection URLs that contain passwords are composed by
Kubernetes from earlier env vars (`$(DATABASE_PASSWORD)`), so no password is ever written
into a ConfigMap or a pod spec.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ragflow_contract import environment
from ragflow_operator import names
from ragflow_operator.builders import common, security
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest, render_manifest
from ragflow_operator.model.cluster import ClusterModel, SecretKeyRef, Workload

Json = dict[str, Any]

RUNTIME_USER = 10001
DATA_DIR = "/data"
POSTGRES_PORT = 5432
REDIS_PORT = 6379
MILVUS_PORT = 19530
GENERATED_DB_USER = "ragflow"
GENERATED_DB_NAME = "ragflow"


def _meta(ctx: BuildContext, name: str, component: str, **annotations: str) -> Json:
    return common.object_meta(
        name=name,
        namespace=ctx.model.namespace,
        labels=names.component_labels(ctx.model.name, component),
        owner_references=ctx.owner_references(),
        annotations=annotations,
    )


def dependency_host(model: ClusterModel, component: str) -> str:
    """In-cluster Service name of a managed dependency."""
    return names.child_name(model.name, component)


def config_data(model: ClusterModel) -> dict[str, str]:
    """Non-secret runtime settings (the RAGFLOW_* names of ragflow_contract.environment)."""
    external = model.vector_store.external
    if external is None:
        vector_uri = f"http://{dependency_host(model, names.COMPONENT_MILVUS)}:{MILVUS_PORT}"
    else:
        vector_uri = external.uri
    return {
        environment.CLUSTER_NAME: model.name,
        environment.DATA_DIR: DATA_DIR,
        environment.PORT: str(names.RUNTIME_PORT),
        environment.EMBEDDING_MODEL: model.embedding.model,
        environment.EMBEDDING_DEVICE: model.embedding.device,
        environment.EMBEDDING_BATCH_SIZE: str(model.embedding.batch_size),
        environment.CACHE_L1_TTL_SECONDS: str(model.cache_ttl.l1_seconds),
        environment.CACHE_L2_TTL_SECONDS: str(model.cache_ttl.l2_seconds),
        environment.VECTOR_URI: vector_uri,
        **security.config_data(model),
    }


def config_hash(data: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def build_config_map(ctx: BuildContext) -> Manifest:
    meta = _meta(ctx, names.config_name(ctx.model.name), names.COMPONENT_CONFIG)
    return render_manifest("configmap.yaml.j2", meta=meta, data=config_data(ctx.model))


def build_generated_secret(
    ctx: BuildContext, name: str, component: str, keys: dict[str, str | None]
) -> Manifest:
    """A Secret created once and never updated (apply.py's create-only annotation).

    `keys` maps each key to a fixed value, or None for a generated one.
    """
    data = {
        key: value if value is not None else ctx.generated_value(name, key)
        for key, value in sorted(keys.items())
    }
    meta = _meta(ctx, name, component, **{names.ANNOTATION_CREATE_ONLY: "true"})
    return render_manifest("secret.yaml.j2", meta=meta, string_data=data)


def build_api_key_secret(ctx: BuildContext) -> Manifest:
    return build_generated_secret(
        ctx, ctx.model.api_key.name, names.COMPONENT_API, {ctx.model.api_key.key: None}
    )


def _database_env(model: ClusterModel) -> list[Json]:
    external = model.database.external
    if external is None:
        secret = names.credentials_secret_name(model.name, names.COMPONENT_POSTGRES)
        user = SecretKeyRef(secret, "username")
        password = SecretKeyRef(secret, "password")
        host = dependency_host(model, names.COMPONENT_POSTGRES)
        port, database, query = POSTGRES_PORT, GENERATED_DB_NAME, ""
    else:
        user, password = external.username, external.password
        host, port, database = external.host, external.port, external.database
        query = f"?sslmode={external.ssl_mode}"
    url = f"postgresql://$(DATABASE_USER):$(DATABASE_PASSWORD)@{host}:{port}/{database}{query}"
    return [
        common.secret_env("DATABASE_USER", user.name, user.key),
        common.secret_env("DATABASE_PASSWORD", password.name, password.key),
        {"name": environment.DATABASE_URL, "value": url},
    ]


def _cache_env(model: ClusterModel) -> list[Json]:
    external = model.cache.external
    if external is None:
        secret = names.credentials_secret_name(model.name, names.COMPONENT_REDIS)
        host = dependency_host(model, names.COMPONENT_REDIS)
        return [
            common.secret_env("CACHE_PASSWORD", secret, "password"),
            {"name": environment.CACHE_URL, "value": f"redis://:$(CACHE_PASSWORD)@{host}:6379/0"},
        ]
    password = external.password
    if password is None:
        return [{"name": environment.CACHE_URL, "value": external.url}]
    scheme, rest = external.url.split("://", 1)
    return [
        common.secret_env("CACHE_PASSWORD", password.name, password.key),
        {"name": environment.CACHE_URL, "value": f"{scheme}://:$(CACHE_PASSWORD)@{rest}"},
    ]


def runtime_env(model: ClusterModel, role: str) -> list[Json]:
    """Env of the runtime container: role, secrets and URLs composed from them (in order)."""
    env: list[Json] = [
        {"name": environment.ROLE, "value": role},
        {"name": "HOME", "value": "/tmp"},
        common.secret_env(environment.API_KEY, model.api_key.name, model.api_key.key),
    ]
    env += _database_env(model)
    env += _cache_env(model)
    vector_store = model.vector_store.external
    if vector_store is not None and vector_store.token is not None:
        token = vector_store.token
        env.append(common.secret_env(environment.VECTOR_TOKEN, token.name, token.key))
    return env


def standby_env(model: ClusterModel) -> list[Json]:
    """`RAGFLOW_STANDBY=true` on API and worker pods of a standby: the API refuses writes and
    the workers stay idle (they keep running, so promotion only rolls the pods). Promotion
    drops it, which changes the pod template and rolls the pods writable."""
    return [{"name": environment.STANDBY, "value": "true"}] if model.is_standby else []


def _probe(path: str, timing: Mapping[str, int]) -> Json:
    probe: Json = {"httpGet": {"path": path, "port": names.RUNTIME_PORT_NAME}}
    probe.update(sorted(timing.items()))
    return probe


def _topology_spread(workload: Workload, selector: dict[str, str]) -> list[Json]:
    if not workload.topology_spread or workload.affinity:
        return []
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
        }
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


def build_deployment(ctx: BuildContext, role: str) -> Manifest:
    """API (`role="api"`) or worker (`role="worker"`) Deployment."""
    model = ctx.model
    is_api = role == names.COMPONENT_API
    workload = model.api if is_api else model.workers
    name = names.api_name(model.name) if is_api else names.worker_name(model.name)
    selector = names.selector_labels(model.name, role)
    replicas = None if (is_api and model.autoscaling.enabled) else workload.replicas
    image = model.image
    security_volumes, security_mounts = security.volumes(model, role)
    return render_manifest(
        "deployment.yaml.j2",
        meta=_meta(ctx, name, role),
        replicas=replicas,
        selector=selector,
        pod_labels=names.component_labels(model.name, role),
        pod_annotations={names.ANNOTATION_CONFIG_HASH: config_hash(config_data(model))},
        pod_security=common.pod_security_context(RUNTIME_USER, fs_group=RUNTIME_USER),
        image_pull_secrets=[{"name": s} for s in image.pull_secrets],
        node_selector=dict(workload.node_selector),
        tolerations=list(workload.tolerations),
        affinity=dict(workload.affinity),
        topology_spread=_topology_spread(workload, selector) if is_api else [],
        container_name=names.RUNTIME_CONTAINER,
        image=image.reference,
        pull_policy=image.pull_policy,
        args=["ragruntime", "serve", "--role", role],
        ports=[
            {
                "name": names.RUNTIME_PORT_NAME,
                "containerPort": names.RUNTIME_PORT,
                "protocol": "TCP",
            }
        ],
        env_from=[{"configMapRef": {"name": names.config_name(model.name)}}],
        env=runtime_env(model, role) + standby_env(model),
        resources=common.resources(workload.resources),
        container_security=common.container_security_context(),
        probes={
            "livenessProbe": _probe(names.LIVENESS_PATH, model.probes.liveness),
            "readinessProbe": _probe(names.READINESS_PATH, model.probes.readiness),
            "startupProbe": _probe(names.LIVENESS_PATH, model.probes.startup),
        },
        volume_mounts=[
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
            *security_mounts,
        ],
        volumes=[
            {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
            *security_volumes,
        ],
    )


def build_service(ctx: BuildContext, role: str) -> Manifest:
    """ClusterIP Service of the API or worker pods (port `http`, also scraped for metrics)."""
    model = ctx.model
    name = (
        names.api_name(model.name) if role == names.COMPONENT_API else names.worker_name(model.name)
    )
    port = {
        "name": names.RUNTIME_PORT_NAME,
        "port": names.RUNTIME_PORT,
        "targetPort": names.RUNTIME_PORT_NAME,
        "protocol": "TCP",
    }
    return render_manifest(
        "service.yaml.j2",
        meta=_meta(ctx, name, role),
        selector=names.selector_labels(model.name, role),
        ports=[port],
    )
