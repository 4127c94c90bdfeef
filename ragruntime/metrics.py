"""Prometheus metrics of one runtime, in its own ``CollectorRegistry`` (several apps per process).

Names follow docs/runtime.md and DESIGN.md: ``ragflow_query_latency_seconds`` (histogram),
``ragflow_query_total{status,model}``, ``ragflow_active_connections``,
``ragflow_memory_usage_bytes``, ``ragflow_cpu_usage_percent``,
``ragflow_documents_processed_total{status}``, ``ragflow_ingest_queue_depth{state}``,
``ragflow_cache_requests_total{layer,result}``, ``ragflow_http_requests_total``,
``ragflow_audit_events_total{category,outcome}``, ``ragflow_index_sync_total{result}``,
``ragflow_index_sync_duration_seconds``, ``ragflow_retrieval_source_total{source}``, and on a
standby ``ragflow_standby_lag_seconds``, ``ragflow_standby_applied_total``,
``ragflow_standby_skipped_total``. Process gauges, the queue depth and the standby state (what
``ragruntime standby sync`` recorded in the metadata database) are read at scrape time. Used by
the app, worker and retrieval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

QUERY_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
SYNC_BUCKETS = (0.1, 1.0, 10.0, 60.0, 300.0, 1800.0)


class QueueDepthSource(Protocol):
    def depth(self) -> dict[str, int]: ...


class _ScrapeTimeCollector(Collector):
    """Memory, CPU and queue depth, measured when Prometheus scrapes."""

    def __init__(self, metrics: RuntimeMetrics) -> None:
        self._metrics = metrics
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only primes the counter

    def collect(self) -> Iterator[GaugeMetricFamily]:
        memory = GaugeMetricFamily(
            "ragflow_memory_usage_bytes", "Resident memory of this runtime process in bytes."
        )
        memory.add_metric([], float(self._process.memory_info().rss))
        yield memory
        cpu = GaugeMetricFamily(
            "ragflow_cpu_usage_percent",
            "CPU used by this process since the previous scrape, percent of one core.",
        )
        cpu.add_metric([], float(self._process.cpu_percent(None)))
        yield cpu
        queue = self._metrics.queue
        if queue is None:
            return
        depth = GaugeMetricFamily(
            "ragflow_ingest_queue_depth",
            "Ingestion tasks waiting (queued) or in progress (running).",
            labels=["state"],
        )
        try:
            for state, count in sorted(queue.depth().items()):
                depth.add_metric([state], float(count))
        except Exception:
            log.warning("queue depth unavailable for metrics", exc_info=True)
            return
        yield depth

    def describe(self) -> list[GaugeMetricFamily]:
        return []


class StandbyCollector(Collector):
    """The standby's lag and counters, from its recorded state at scrape time.

    The lag is exported only while this process runs as a standby (a promoted cluster is not
    behind anything); the counters whenever the database ever followed a primary.
    """

    def __init__(self, read_state: Callable[[], Any], standby: bool) -> None:
        self._read_state, self._standby = read_state, standby

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            state = self._read_state()
        except Exception:
            log.warning("standby state unavailable for metrics", exc_info=True)
            return
        if state is None:
            return
        lag = state.lag_seconds()
        if self._standby and lag is not None:
            gauge = GaugeMetricFamily(
                "ragflow_standby_lag_seconds",
                "Age of the backup this standby serves (now minus its creation time): its RPO.",
            )
            gauge.add_metric([], float(lag))
            yield gauge
        applied = CounterMetricFamily(
            "ragflow_standby_applied", "Backups of the primary applied by this standby."
        )
        applied.add_metric([], float(state.applied_total))
        yield applied
        skipped = CounterMetricFamily(
            "ragflow_standby_skipped",
            "Backups of the primary skipped as corrupt, undecryptable or incomplete.",
        )
        skipped.add_metric([], float(state.skipped_total))
        yield skipped

    def describe(self) -> list[GaugeMetricFamily]:
        return []


class RuntimeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.queue: QueueDepthSource | None = None
        self._standby: StandbyCollector | None = None
        self.query_latency = Histogram(
            "ragflow_query_latency_seconds",
            "Retrieval latency in seconds, cache hits included.",
            buckets=QUERY_BUCKETS,
            registry=self.registry,
        )
        self.query_total = Counter(
            "ragflow_query",
            "Retrieval requests by outcome (success or error) and embedding model.",
            ["status", "model"],
            registry=self.registry,
        )
        self.active_connections = Gauge(
            "ragflow_active_connections",
            "HTTP requests being served right now.",
            registry=self.registry,
        )
        self.documents_processed = Counter(
            "ragflow_documents_processed",
            "Ingestion tasks finished by this process, by status (done or failed).",
            ["status"],
            registry=self.registry,
        )
        self.chunks_embedded = Counter(
            "ragflow_chunks_embedded",
            "Chunks embedded and written to the vector store by this process's ingest workers.",
            registry=self.registry,
        )
        self.cache_requests = Counter(
            "ragflow_cache_requests",
            "Query cache lookups by layer (l1, l2) and result (hit, miss, error).",
            ["layer", "result"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "ragflow_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.audit_events = Counter(
            "ragflow_audit_events",
            "Audit events by category (authentication, authorization, data_access,"
            " configuration) and outcome (success, failure, denied).",
            ["category", "outcome"],
            registry=self.registry,
        )
        self.index_syncs = Counter(
            "ragflow_index_sync",
            "Query-side index sync attempts by result (success, error); errors are retried.",
            ["result"],
            registry=self.registry,
        )
        self.index_sync_duration = Histogram(
            "ragflow_index_sync_duration_seconds",
            "Duration of query-side index sync attempts in seconds.",
            buckets=SYNC_BUCKETS,
            registry=self.registry,
        )
        self.retrieval_source = Counter(
            "ragflow_retrieval_source",
            "Answered retrievals by source: index (current snapshot), index-stale (the newest"
            " complete snapshot while a large sync runs), vector-store (Milvus, before the"
            " first snapshot), cache.",
            ["source"],
            registry=self.registry,
        )
        self.registry.register(_ScrapeTimeCollector(self))

    def bind_queue(self, queue: QueueDepthSource) -> None:
        self.queue = queue

    def bind_standby(self, read_state: Callable[[], Any], standby: bool) -> None:
        """Export the ``ragflow_standby_*`` series from ``read_state()`` (once per registry)."""
        if self._standby is None:
            self._standby = StandbyCollector(read_state, standby)
            self.registry.register(self._standby)

    def record_cache(self, layer: str, result: str) -> None:
        self.cache_requests.labels(layer=layer, result=result).inc()

    def record_index_sync(self, result: str, seconds: float) -> None:
        self.index_syncs.labels(result=result).inc()
        self.index_sync_duration.observe(seconds)

    def record_audit(self, category: str, outcome: str) -> None:
        self.audit_events.labels(category=category, outcome=outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
