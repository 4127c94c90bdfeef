"""Helpers for the operator unit tests: literal RagFlowCluster bodies and a build shortcut."""

from __future__ import annotations

from typing import Any

from ragflow_operator.builders import cluster
from ragflow_operator.builders.children import Children
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.cluster import ClusterModel


def cluster_body(spec: dict[str, Any] | None = None, name: str = "docs") -> dict[str, Any]:
    return {
        "apiVersion": "ragflow.operator.dev/v1alpha1",
        "kind": "RagFlowCluster",
        "metadata": {"name": name, "namespace": "team-a", "uid": "uid-1", "generation": 3},
        "spec": spec or {},
    }


def build(spec: dict[str, Any] | None = None, capabilities: Capabilities | None = None) -> Children:
    model = ClusterModel.from_body(cluster_body(spec))
    return cluster.build(model, capabilities or Capabilities.all_enabled())


def find(result: Children, kind: str, name: str) -> dict[str, Any]:
    for manifest in result.manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    raise AssertionError(
        f"{kind}/{name} not built; got {[m['metadata']['name'] for m in result.manifests]}"
    )


def kinds(result: Children) -> list[str]:
    return [f"{m['kind']}/{m['metadata']['name']}" for m in result.manifests]


def external_deps_spec() -> dict[str, Any]:
    """Every dependency external, with Secret references."""
    return {
        "database": {"external": {"host": "pg.example", "credentialsSecret": {"name": "pg"}}},
        "cache": {
            "external": {"url": "redis://cache.example:6379/0", "credentialsSecret": {"name": "rd"}}
        },
        "vectorStore": {
            "external": {"uri": "http://milvus.example:19530", "tokenSecret": {"name": "mv"}}
        },
    }
