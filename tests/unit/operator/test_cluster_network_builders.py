"""NetworkPolicies, Ingress (TLS, cert-manager, rate limits, security headers), ServiceMonitor."""

from __future__ import annotations

from cluster_helpers import build, find, kinds

INGRESS = {
    "enabled": True,
    "host": "rag.example.com",
    "tls": {"clusterIssuer": "letsencrypt"},
    "rateLimit": {"rps": 5, "burst": 12},
    "annotations": {"example.com/team": "search"},
}


def test_ingress_has_tls_issuer_rate_limits_and_security_headers():
    result = build({"ingress": INGRESS})
    ingress = find(result, "Ingress", "docs-api")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert annotations["nginx.ingress.kubernetes.io/limit-rps"] == "5"
    assert annotations["nginx.ingress.kubernetes.io/limit-burst-multiplier"] == "3"
    assert (
        annotations["nginx.ingress.kubernetes.io/custom-headers"] == "team-a/docs-security-headers"
    )
    assert annotations["example.com/team"] == "search"
    assert ingress["spec"]["tls"] == [{"hosts": ["rag.example.com"], "secretName": "docs-tls"}]
    assert ingress["spec"]["rules"][0]["host"] == "rag.example.com"
    headers = find(result, "ConfigMap", "docs-security-headers")["data"]
    assert headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" in headers


def test_no_ingress_unless_enabled():
    built = kinds(build())
    assert "Ingress/docs-api" not in built
    assert "ConfigMap/docs-security-headers" not in built


def test_api_is_reachable_from_ingress_and_namespace_dependencies_only_from_clients():
    result = build()
    api = find(result, "NetworkPolicy", "docs-api")["spec"]
    peers = api["ingress"][0]["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in peers
    assert {"podSelector": {}} in peers
    deps = find(result, "NetworkPolicy", "docs-dependencies")["spec"]
    assert deps["podSelector"]["matchExpressions"][0]["values"] == ["milvus", "postgres", "redis"]
    (rule,) = deps["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "docs"
    assert peer["podSelector"]["matchExpressions"][0]["values"] == ["api", "backup", "worker"]


def test_network_policies_follow_their_toggle():
    assert not [
        k
        for k in kinds(build({"networkPolicy": {"enabled": False}}))
        if k.startswith("NetworkPolicy/")
    ]


def test_service_monitor_scrapes_api_and_worker_services():
    monitor = find(build({"monitoring": {"labels": {"release": "kps"}}}), "ServiceMonitor", "docs")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchExpressions"][0]["values"] == ["api", "worker"]
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
