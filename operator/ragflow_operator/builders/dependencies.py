"""Managed dependencies of a RagFlowCluster: PostgreSQL, Redis and Milvus standalone.

Each managed dependency is a single-replica StatefulSet (its PVC from a volume claim template,
deleted with the StatefulSet), a ClusterIP Service and, for PostgreSQL and Redis, a generated
credentials Secret (created once, never rotated). External dependencies produce nothing here:
the runtime connects with the Secret references (builders/runtime.py). Called by
builders/cluster.py. Every pod runs with the restricted Pod Security profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragflow_operator import names
from ragflow_operator.builders import common
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest, render_manifest
from ragflow_operator.builders.runtime import (
    GENERATED_DB_NAME,
    GENERATED_DB_USER,
    MILVUS_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    build_generated_secret,
)
from ragflow_operator.model.cluster import ClusterModel, ManagedStore

Json = dict[str, Any]


@dataclass(frozen=True)
class Engine:
    """How one dependency runs: user, port, data path, command and extra volumes."""

    component: str
    user: int
    port: int
    port_name: str
    data_path: str
    scratch_paths: tuple[str, ...]


POSTGRES = Engine(
    names.COMPONENT_POSTGRES,
    70,
    POSTGRES_PORT,
    "postgres",
    "/var/lib/postgresql/data",
    ("/var/run/postgresql", "/tmp"),
)
REDIS = Engine(names.COMPONENT_REDIS, 999, REDIS_PORT, "redis", "/data", ("/tmp",))
MILVUS = Engine(
    names.COMPONENT_MILVUS, 1000, MILVUS_PORT, "grpc", "/var/lib/milvus", ("/tmp", "/milvus/logs")
)


def _secret_env(env_name: str, ctx: BuildContext, component: str, key: str) -> Json:
    return common.secret_env(
        env_name, names.credentials_secret_name(ctx.model.name, component), key
    )


def _engine_settings(
    ctx: BuildContext, engine: Engine, store: ManagedStore
) -> tuple[list[str], list[Json]]:
    """(args, env) of the container."""
    if engine is POSTGRES:
        return [], [
            _secret_env("POSTGRES_USER", ctx, engine.component, "username"),
            _secret_env("POSTGRES_PASSWORD", ctx, engine.component, "password"),
            {"name": "POSTGRES_DB", "value": GENERATED_DB_NAME},
            {"name": "PGDATA", "value": f"{engine.data_path}/pgdata"},
        ]
    if engine is REDIS:
        args = [
            "--requirepass",
            "$(REDIS_PASSWORD)",
            "--maxmemory",
            store.max_memory,
            "--maxmemory-policy",
            "allkeys-lru",
            "--appendonly",
            "yes",
            "--dir",
            engine.data_path,
        ]
        return args, [_secret_env("REDIS_PASSWORD", ctx, engine.component, "password")]
    return ["milvus", "run", "standalone"], [
        {"name": "ETCD_USE_EMBED", "value": "true"},
        {"name": "ETCD_DATA_DIR", "value": f"{engine.data_path}/etcd"},
        {"name": "COMMON_STORAGETYPE", "value": "local"},
        {"name": "LOCALSTORAGE_PATH", "value": f"{engine.data_path}/data"},
    ]


def _probes(engine: Engine) -> tuple[Json, Json]:
    """(readiness, liveness): Milvus has an HTTP health endpoint, the others a TCP port."""
    if engine is MILVUS:
        check: Json = {"httpGet": {"path": "/healthz", "port": 9091}}
        return {**check, "periodSeconds": 10, "failureThreshold": 3}, {
            **check,
            "periodSeconds": 30,
            "failureThreshold": 5,
            "initialDelaySeconds": 90,
        }
    check = {"tcpSocket": {"port": engine.port_name}}
    return {**check, "periodSeconds": 5}, {**check, "periodSeconds": 20, "failureThreshold": 6}


def _ports(engine: Engine) -> list[Json]:
    ports = [{"name": engine.port_name, "containerPort": engine.port, "protocol": "TCP"}]
    if engine is MILVUS:
        ports.append({"name": "metrics", "containerPort": 9091, "protocol": "TCP"})
    return ports


def build_statefulset(ctx: BuildContext, engine: Engine, store: ManagedStore) -> Manifest:
    model = ctx.model
    name = names.child_name(model.name, engine.component)
    args, env = _engine_settings(ctx, engine, store)
    readiness, liveness = _probes(engine)
    scratch = [(f"scratch-{i}", path) for i, path in enumerate(engine.scratch_paths)]
    claim: Json = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": store.storage}},
    }
    if store.storage_class_name:
        claim["storageClassName"] = store.storage_class_name
    return render_manifest(
        "statefulset.yaml.j2",
        meta=common.object_meta(
            name=name,
            namespace=model.namespace,
            labels=names.component_labels(model.name, engine.component),
            owner_references=ctx.owner_references(),
        ),
        service_name=name,
        selector=names.selector_labels(model.name, engine.component),
        pod_labels=names.component_labels(model.name, engine.component),
        pod_annotations={},
        pod_security=common.pod_security_context(engine.user, fs_group=engine.user),
        container_name=engine.component,
        image=store.image,
        args=args,
        ports=_ports(engine),
        env=env,
        resources=common.resources(store.resources),
        container_security=common.container_security_context(),
        readiness_probe=readiness,
        liveness_probe=liveness,
        volume_mounts=[{"name": "data", "mountPath": engine.data_path}]
        + [{"name": vol, "mountPath": path} for vol, path in scratch],
        volumes=[{"name": vol, "emptyDir": {}} for vol, _ in scratch],
        claim_spec=claim,
    )


def build_service(ctx: BuildContext, engine: Engine) -> Manifest:
    model = ctx.model
    name = names.child_name(model.name, engine.component)
    ports = [
        {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"], "protocol": "TCP"}
        for p in _ports(engine)
    ]
    return render_manifest(
        "service.yaml.j2",
        meta=common.object_meta(
            name=name,
            namespace=model.namespace,
            labels=names.component_labels(model.name, engine.component),
            owner_references=ctx.owner_references(),
        ),
        selector=names.selector_labels(model.name, engine.component),
        ports=ports,
    )


def build_dependencies(ctx: BuildContext) -> list[Manifest]:
    """Secrets, StatefulSets and Services of every managed dependency, in apply order."""
    model = ctx.model
    manifests: list[Manifest] = []
    for engine, store in (
        (POSTGRES, model.database.managed),
        (REDIS, model.cache.managed),
        (MILVUS, model.vector_store.managed),
    ):
        if store is None:
            continue
        secret = names.credentials_secret_name(model.name, engine.component)
        if engine is POSTGRES:
            keys: dict[str, str | None] = {"username": GENERATED_DB_USER, "password": None}
            manifests.append(build_generated_secret(ctx, secret, engine.component, keys))
        elif engine is REDIS:
            manifests.append(
                build_generated_secret(ctx, secret, engine.component, {"password": None})
            )
        manifests.append(build_service(ctx, engine))
        manifests.append(build_statefulset(ctx, engine, store))
    return manifests


def generated_secret_keys(model: ClusterModel) -> dict[str, list[str]]:
    """Secret name -> keys whose values the kopf layer must generate (random, once)."""
    wanted = {model.api_key.name: [model.api_key.key]}
    if model.database.is_managed:
        wanted[names.credentials_secret_name(model.name, names.COMPONENT_POSTGRES)] = ["password"]
    if model.cache.is_managed:
        wanted[names.credentials_secret_name(model.name, names.COMPONENT_REDIS)] = ["password"]
    return wanted
