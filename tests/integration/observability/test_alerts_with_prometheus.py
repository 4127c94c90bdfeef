"""The generated alerting rules in a real Prometheus, scraping a real `ragruntime serve`.

Prometheus (apt binary) scrapes the runtime every second with the target labels its
ServiceMonitor would give it (namespace, service) and evaluates the rules file built by
`build_rule_groups` (short windows, low thresholds, `for: 3s`). Traffic then drives the alerts:
- slow queries: the Milvus server the runtime searches is paused (SIGSTOP) while queries are in
  flight, so each takes about two seconds -> RagFlowHighQueryLatency fires;
- failing queries: the vector collection of one dataset is dropped behind the runtime's back, so
  searching it fails in the store (status="error") -> RagFlowHighErrorRate fires;
- healthy queries only -> both alerts resolve.
Everything is observed through Prometheus' HTTP API. `promtool check metrics` runs on /metrics.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml
from pymilvus import MilvusClient
from ragflow_operator.builders import alerts
from ragflow_operator.model.alert_policy import AlertPolicyModel

from tests.fixtures.services import (
    MilvusLiteServer,
    RuntimeProcess,
    start_milvus_lite_server,
    start_runtime,
    stop_process,
)
from tests.integration.observability.prometheus_process import (
    PrometheusProcess,
    ScrapeTarget,
    start_prometheus,
)

pytestmark = pytest.mark.integration

NAMESPACE = "shop"
CLUSTER = "docs"
ALERT_TIMEOUT_S = 60.0
POD = f"{CLUSTER}-api-7d9f8b6c5d-x2x4k"
ADAPTER_VALUES = (
    Path(__file__).resolve().parents[3] / "deploy" / "prometheus-adapter" / "values.yaml"
)
LATENCY = "RagFlowHighQueryLatency"
ERRORS = "RagFlowHighErrorRate"
DOCUMENT = (
    "Prometheus evaluates alerting rules at a regular interval. An alert is pending while its "
    "expression returns series for less than the for duration, then it fires. Retrieval "
    "latency is measured by a histogram with buckets of 0.1, 0.5, 1, 2, 5 and 10 seconds."
)


def alert_policy() -> AlertPolicyModel:
    """Thresholds a few seconds of test traffic can cross; windows short enough to recover."""
    return AlertPolicyModel.from_body(
        {
            "metadata": {"name": "it", "namespace": NAMESPACE},
            "spec": {
                "clusterRef": {"name": CLUSTER},
                "rateWindow": "10s",
                "rules": {
                    "highQueryLatency": {"p95Seconds": 1, "for": "3s"},
                    "highErrorRate": {"ratio": 0.2, "for": "3s"},
                },
            },
        }
    )


@dataclass
class Stack:
    runtime: RuntimeProcess
    milvus: MilvusLiteServer
    prometheus: PrometheusProcess
    client: httpx.Client
    healthy_dataset: str
    broken_dataset: str
    documents: dict[str, str]  # dataset id -> its one document's id


def _ok(response: httpx.Response) -> object:
    response.raise_for_status()
    body = response.json()
    assert body["code"] == 0, body
    return body.get("data")


def _ingested_dataset(client: httpx.Client, name: str) -> tuple[str, str]:
    dataset = _ok(client.post("/api/v1/datasets", json={"name": name}))
    dataset_id = dataset["id"]  # type: ignore[index]
    files = {"file": (f"{name}.txt", DOCUMENT.encode(), "text/plain")}
    (document,) = _ok(client.post(f"/api/v1/datasets/{dataset_id}/documents", files=files))  # type: ignore[misc]
    _ok(
        client.post(
            f"/api/v1/datasets/{dataset_id}/chunks", json={"document_ids": [document["id"]]}
        )
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        docs = _ok(
            client.get(f"/api/v1/datasets/{dataset_id}/documents", params={"id": document["id"]})
        )
        (doc,) = docs["docs"]  # type: ignore[index]
        if doc["run"] == "DONE" and doc["chunk_count"] > 0:
            return str(dataset_id), str(document["id"])
        assert doc["run"] not in ("FAIL", "CANCEL"), doc
        time.sleep(0.5)
    raise TimeoutError(f"document of {name} not ingested")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("observability")
    milvus = start_milvus_lite_server(base)
    runtime = start_runtime(base / "runtime", extra_env={"RAGFLOW_VECTOR_URI": milvus.uri})
    rules_file = base / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(alerts.build_rule_groups(alert_policy())))
    target = ScrapeTarget(
        job=f"{CLUSTER}-api",
        address=f"127.0.0.1:{runtime.port}",
        labels={"namespace": NAMESPACE, "service": f"{CLUSTER}-api", "pod": POD},
    )
    prometheus = start_prometheus(base / "prometheus", [target], [rules_file])
    client = httpx.Client(
        base_url=runtime.base_url,
        headers={"Authorization": f"Bearer {runtime.api_key}"},
        timeout=60,
    )
    try:
        healthy, healthy_doc = _ingested_dataset(client, "healthy")
        broken, broken_doc = _ingested_dataset(client, "broken")
        documents = {healthy: healthy_doc, broken: broken_doc}
        yield Stack(runtime, milvus, prometheus, client, healthy, broken, documents)
    finally:
        client.close()
        prometheus.stop()
        runtime.stop()
        stop_process(milvus.process)


def query(stack: Stack, dataset_id: str) -> int:
    """One retrieval with a unique question (never a cache hit); returns the HTTP status."""
    question = f"how are alerts evaluated {uuid.uuid4().hex}"
    payload = {"question": question, "dataset_ids": [dataset_id], "page_size": 3}
    return stack.client.post("/api/v1/retrieval", json=payload).status_code


def wait_for(
    stack: Stack, condition: Callable[[dict[str, str]], bool], traffic: Callable[[], None]
) -> dict[str, str]:
    """Drive `traffic` until Prometheus' alerts satisfy `condition`; return the states."""
    deadline = time.monotonic() + ALERT_TIMEOUT_S
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        traffic()
        states = stack.prometheus.alert_states()
        if condition(states):
            return states
    raise AssertionError(
        f"alerts did not reach the expected state: {states}; rules: "
        f"{stack.prometheus.rule_health()}\n{stack.prometheus.log()[-2000:]}"
    )


def touch(stack: Stack, dataset_id: str) -> None:
    """Change the dataset's document, so that the next retrieval reads Milvus.

    Retrievals search the API process's in-memory index; Milvus is read only to sync the
    documents that changed since the index's dataset version."""
    document_id = stack.documents[dataset_id]
    body = {"meta_fields": {"touched": uuid.uuid4().hex}}
    url = f"/api/v1/datasets/{dataset_id}/documents/{document_id}"
    _ok(stack.client.put(url, json=body))


def slow_burst(stack: Stack, pause_s: float = 2.0, concurrent: int = 4) -> None:
    """Queries in flight while the Milvus server is paused, each waiting about `pause_s` for the
    index sync that the changed document makes them do."""
    touch(stack, stack.healthy_dataset)
    threads = [
        threading.Thread(target=query, args=(stack, stack.healthy_dataset))
        for _ in range(concurrent)
    ]
    os.kill(stack.milvus.process.pid, signal.SIGSTOP)
    try:
        for thread in threads:
            thread.start()
        time.sleep(pause_s)
    finally:
        os.kill(stack.milvus.process.pid, signal.SIGCONT)
    for thread in threads:
        thread.join(timeout=30)


def healthy_traffic(stack: Stack, seconds: float = 1.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert query(stack, stack.healthy_dataset) == 200


def adapter_latency(stack: Stack) -> float:
    """Run the shipped prometheus-adapter metricsQuery as the adapter would for one pod."""
    (rule,) = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    series = rule["seriesQuery"].split("{")[0]
    assert re.fullmatch(rule["name"]["matches"], series)
    assert rule["name"]["as"] == "ragflow_query_latency_p95_seconds"  # names.LATENCY_METRIC
    query = (
        rule["metricsQuery"]
        .replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", f'namespace="{NAMESPACE}",pod=~"{POD}"')
        .replace("<<.GroupBy>>", "pod")
    )
    (sample,) = stack.prometheus.api(f"/api/v1/query?query={quote(query)}")["result"]
    assert sample["metric"] == {"pod": POD}
    return float(sample["value"][1])


def test_promtool_check_metrics_passes_on_the_runtime_endpoint(stack: Stack) -> None:
    healthy_traffic(stack, seconds=0.5)
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: scripts/install.d/10-apt.sh installs prometheus"
    metrics = stack.client.get("/metrics")
    assert metrics.status_code == 200
    assert "ragflow_query_latency_seconds_bucket" in metrics.text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=metrics.content, capture_output=True, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_generated_rules_load_healthy_in_prometheus(stack: Stack) -> None:
    health = stack.prometheus.rule_health()
    assert {name for name, _, _ in health} >= {LATENCY, ERRORS}
    assert all(state in ("ok", "unknown") for _, state, _ in health), health


def test_latency_and_error_alerts_fire_under_bad_traffic_and_resolve_when_healthy(
    stack: Stack,
) -> None:
    healthy_traffic(stack, seconds=3)
    before = stack.prometheus.alert_states()
    assert LATENCY not in before and ERRORS not in before, f"alerts before bad traffic: {before}"

    states = wait_for(stack, lambda s: s.get(LATENCY) == "firing", lambda: slow_burst(stack))
    assert ERRORS not in states
    # The prometheus-adapter rule the HPA relies on sees the same slow pod.
    assert adapter_latency(stack) > 1.0

    collection = f"ragflow_ds_{stack.broken_dataset}"
    milvus = MilvusClient(uri=stack.milvus.uri, timeout=60)
    try:
        milvus.drop_collection(collection)
    finally:
        milvus.close()

    touch(stack, stack.broken_dataset)  # its next retrievals read the dropped collection

    def failing_traffic() -> None:
        for _ in range(5):
            assert query(stack, stack.broken_dataset) >= 500
        assert query(stack, stack.healthy_dataset) == 200

    wait_for(stack, lambda s: s.get(ERRORS) == "firing", failing_traffic)

    wait_for(stack, lambda s: LATENCY not in s and ERRORS not in s, lambda: healthy_traffic(stack))
