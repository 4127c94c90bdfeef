"""Network exposure of a RagFlowCluster: NetworkPolicies, Ingress and its security headers.

Called by builders/cluster.py. Policies: API pods accept traffic on the `http` port from the
ingress controller's namespace, Prometheus' namespace and this namespace; worker pods only from
Prometheus; managed dependencies only from this cluster's API, worker and backup pods. The
Ingress carries the cert-manager issuer, ingress-nginx rate limits and a custom-headers
ConfigMap with security response headers.
"""

from __future__ import annotations

import math
from typing import Any

from ragflow_operator import names
from ragflow_operator.builders import common
from ragflow_operator.builders.context import BuildContext
from ragflow_operator.builders.render import Manifest, render_manifest

Json = dict[str, Any]

NGINX = "nginx.ingress.kubernetes.io/"
#: Request bodies up to this size pass the ingress (document uploads).
PROXY_BODY_SIZE = "64m"
DEPENDENCY_COMPONENTS = [names.COMPONENT_POSTGRES, names.COMPONENT_REDIS, names.COMPONENT_MILVUS]
CLIENT_COMPONENTS = [names.COMPONENT_API, names.COMPONENT_WORKER, names.COMPONENT_BACKUP]


def _meta(
    ctx: BuildContext, name: str, component: str, annotations: dict[str, str] | None = None
) -> Json:
    return common.object_meta(
        name=name,
        namespace=ctx.model.namespace,
        labels=names.component_labels(ctx.model.name, component),
        owner_references=ctx.owner_references(),
        annotations=annotations,
    )


def _namespace_peer(namespace: str) -> Json:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def _instance_selector(ctx: BuildContext, components: list[str]) -> Json:
    return {
        "matchLabels": {
            names.LABEL_NAME: names.APP_NAME,
            names.LABEL_INSTANCE: ctx.model.name,
        },
        "matchExpressions": [
            {"key": names.LABEL_COMPONENT, "operator": "In", "values": sorted(components)}
        ],
    }


def build_network_policies(ctx: BuildContext) -> list[Manifest]:
    model = ctx.model
    ingress_ns = model.network_policy.ingress_namespace
    monitoring_ns = model.network_policy.monitoring_namespace
    http = [{"port": names.RUNTIME_PORT_NAME, "protocol": "TCP"}]
    manifests = [
        render_manifest(
            "networkpolicy.yaml.j2",
            meta=_meta(ctx, names.api_name(model.name), names.COMPONENT_API),
            pod_selector={"matchLabels": names.selector_labels(model.name, names.COMPONENT_API)},
            ingress_rules=[
                {
                    "from": [
                        _namespace_peer(ingress_ns),
                        _namespace_peer(monitoring_ns),
                        {"podSelector": {}},
                    ],
                    "ports": http,
                }
            ],
        ),
        render_manifest(
            "networkpolicy.yaml.j2",
            meta=_meta(ctx, names.worker_name(model.name), names.COMPONENT_WORKER),
            pod_selector={"matchLabels": names.selector_labels(model.name, names.COMPONENT_WORKER)},
            ingress_rules=[{"from": [_namespace_peer(monitoring_ns)], "ports": http}],
        ),
    ]
    managed = [d.component for d in model.dependencies if d.is_managed]
    if managed:
        manifests.append(
            render_manifest(
                "networkpolicy.yaml.j2",
                meta=_meta(ctx, names.child_name(model.name, "dependencies"), "dependencies"),
                pod_selector=_instance_selector(ctx, managed),
                ingress_rules=[
                    {"from": [{"podSelector": _instance_selector(ctx, CLIENT_COMPONENTS)}]}
                ],
            )
        )
    return manifests


def security_headers(tls: bool) -> dict[str, str]:
    """Response headers added by ingress-nginx (the seed's nginx `add_header` list)."""
    headers = {
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    if tls:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def headers_config_name(cluster: str) -> str:
    return names.child_name(cluster, "security-headers")


def ingress_annotations(ctx: BuildContext) -> dict[str, str]:
    model = ctx.model
    ingress = model.ingress
    rps, burst = ingress.rate_limit_rps, ingress.rate_limit_burst
    annotations = {
        f"{NGINX}limit-rps": str(rps),
        f"{NGINX}limit-burst-multiplier": str(max(1, math.ceil(burst / rps))),
        f"{NGINX}proxy-body-size": PROXY_BODY_SIZE,
        f"{NGINX}custom-headers": f"{model.namespace}/{headers_config_name(model.name)}",
    }
    if ingress.tls is not None:
        annotations[f"{NGINX}ssl-redirect"] = "true"
        annotations[f"{NGINX}force-ssl-redirect"] = "true"
        if ingress.tls.cluster_issuer:
            annotations["cert-manager.io/cluster-issuer"] = ingress.tls.cluster_issuer
    annotations.update(ingress.annotations)
    return annotations


def build_ingress(ctx: BuildContext) -> list[Manifest]:
    """The Ingress and its security-headers ConfigMap (empty list when disabled)."""
    model = ctx.model
    ingress = model.ingress
    if not ingress.enabled:
        return []
    tls = ingress.tls
    tls_secret = (tls.secret_name or names.child_name(model.name, "tls")) if tls is not None else ""
    headers = render_manifest(
        "configmap.yaml.j2",
        meta=_meta(ctx, headers_config_name(model.name), names.COMPONENT_API),
        data=security_headers(tls is not None),
    )
    return [
        headers,
        render_manifest(
            "ingress.yaml.j2",
            meta=_meta(
                ctx, names.api_name(model.name), names.COMPONENT_API, ingress_annotations(ctx)
            ),
            class_name=ingress.class_name,
            host=ingress.host,
            tls_secret=tls_secret,
            service=names.api_name(model.name),
            port_name=names.RUNTIME_PORT_NAME,
        ),
    ]
