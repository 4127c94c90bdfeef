"""Shared plumbing of the benchmarks: machine description, tables, timing, a runtime HTTP client.

Used by tests/bench/bench_*.py. The client speaks the runtime's RAGFlow-compatible ``/api/v1``
(DESIGN.md: Bearer key, ``{"code", "data"}`` envelope); it holds no retrieval logic of its own.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

PARSE_TIMEOUT_S = 900.0


def machine_description() -> str:
    """CPU model, usable cores and torch threads: the context every figure needs."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    description = f"{model}, {cores} usable cores, Python {platform.python_version()}"
    try:
        import torch

        description += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        pass
    return description


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table, columns padded to their widest cell; floats with 4 digits."""

    def cell(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    text_rows = [[cell(value) for value in row] for row in rows]
    widths = [
        max(len(header), *(len(row[index]) for row in text_rows))
        for index, header in enumerate(headers)
    ]
    lines = [
        "  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)),
        "  ".join("-" * width for width in widths),
    ]
    lines += [
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        for row in text_rows
    ]
    return "\n".join(lines)


def print_report(
    title: str,
    parameters: Mapping[str, object],
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
) -> None:
    """Print a benchmark's result block: title, machine, parameters, then the table."""
    print(f"\n=== {title} ===")
    print(f"machine: {machine_description()}")
    for name, value in parameters.items():
        print(f"{name}: {value}")
    print(format_table(headers, rows))


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of a list of durations, in milliseconds."""

    p50_ms: float
    p95_ms: float
    mean_ms: float
    samples: int


def summarise_latencies(seconds: Sequence[float]) -> LatencySummary:
    """p50/p95 (inclusive quantiles) and mean of durations given in seconds."""
    if len(seconds) < 2:
        raise ValueError("need at least two samples for percentiles")
    cuts = statistics.quantiles([value * 1000 for value in seconds], n=100, method="inclusive")
    return LatencySummary(
        p50_ms=cuts[49],
        p95_ms=cuts[94],
        mean_ms=statistics.fmean(seconds) * 1000,
        samples=len(seconds),
    )


class RuntimeClient:
    """Just enough of the runtime's HTTP API to load a dataset and query it."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 120.0) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    def _data(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        body = response.json()
        if body.get("code") != 0:
            raise RuntimeError(f"{response.request.url.path}: {body}")
        return body.get("data")

    def create_dataset(self, name: str, **fields: Any) -> str:
        """Create a dataset; returns its id."""
        data = self._data(self._http.post("/api/v1/datasets", json={"name": name, **fields}))
        return str(data["id"])

    def upload_documents(self, dataset_id: str, files: Sequence[tuple[str, bytes]]) -> list[dict]:
        """Upload ``(file name, content)`` pairs in one multipart request."""
        multipart = [("file", (name, content, "text/plain")) for name, content in files]
        return list(
            self._data(self._http.post(f"/api/v1/datasets/{dataset_id}/documents", files=multipart))
        )

    def start_parsing(self, dataset_id: str, document_ids: Sequence[str]) -> None:
        """Queue documents for parse -> chunk -> embed -> index."""
        self._data(
            self._http.post(
                f"/api/v1/datasets/{dataset_id}/chunks", json={"document_ids": list(document_ids)}
            )
        )

    def list_documents(self, dataset_id: str, page_size: int = 1000) -> list[dict]:
        """Every document of a dataset (paged)."""
        documents: list[dict] = []
        page = 1
        while True:
            data = self._data(
                self._http.get(
                    f"/api/v1/datasets/{dataset_id}/documents",
                    params={"page": page, "page_size": page_size},
                )
            )
            batch = list(data["docs"])
            documents += batch
            if len(batch) < page_size:
                return documents
            page += 1

    def count_documents(self, dataset_id: str, run: str) -> int:
        """How many documents of a dataset have run status ``run`` (one row fetched, the total)."""
        data = self._data(
            self._http.get(
                f"/api/v1/datasets/{dataset_id}/documents",
                params={"run": run, "page_size": 1},
            )
        )
        return int(data["total"])

    def wait_until_parsed(self, dataset_id: str, expected: int, poll_s: float = 0.5) -> list[dict]:
        """Poll until ``expected`` documents are DONE; fail loudly on FAIL or timeout.

        Each poll asks for counts only (``run`` filter, one row), as a progress display would:
        listing every document several times a second would load the server being measured.
        """
        deadline = time.monotonic() + PARSE_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.count_documents(dataset_id, "FAIL"):
                failed = [d for d in self.list_documents(dataset_id) if d["run"] == "FAIL"]
                raise RuntimeError(f"{len(failed)} documents failed: {failed[0]}")
            if self.count_documents(dataset_id, "DONE") >= expected:
                return self.list_documents(dataset_id)
            time.sleep(poll_s)
        raise TimeoutError(f"documents not parsed after {PARSE_TIMEOUT_S}s")

    def list_chunks(self, dataset_id: str, document_id: str) -> list[dict]:
        """The chunks of one document."""
        data = self._data(
            self._http.get(
                f"/api/v1/datasets/{dataset_id}/documents/{document_id}/chunks",
                params={"page": 1, "page_size": 1024},
            )
        )
        return list(data["chunks"])

    def retrieve(self, question: str, dataset_ids: Sequence[str], **options: Any) -> list[dict]:
        """POST /api/v1/retrieval; returns ``data.chunks`` in rank order."""
        return self.retrieve_with_source(question, dataset_ids, **options)[0]

    def retrieve_with_source(
        self, question: str, dataset_ids: Sequence[str], **options: Any
    ) -> tuple[list[dict], str]:
        """``retrieve`` and where the server answered from (``X-Ragflow-Retrieval-Source``)."""
        payload = {"question": question, "dataset_ids": list(dataset_ids), **options}
        response = self._http.post("/api/v1/retrieval", json=payload)
        chunks = list(self._data(response)["chunks"])
        return chunks, response.headers.get("x-ragflow-retrieval-source", "")

    def metric(self, sample: str) -> float:
        """The value of one ``/metrics`` sample (name with labels as printed), 0 if absent."""
        for line in self._http.get("/metrics").text.splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0
