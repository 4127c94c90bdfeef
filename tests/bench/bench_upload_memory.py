"""Server memory while it receives one large upload (streamed to disk, limit counted on the way).

Run: ``python -m pytest tests/bench/bench_upload_memory.py -s``. Starts ``ragruntime serve``
(embedded), sends a chunked multipart upload of ``RAGFLOW_BENCH_UPLOAD_MB`` MiB (default 200)
once under a larger limit (stored) and once over a smaller one (413), and samples the server's
RSS with psutil every 20 ms. Prints the growth; it must stay far below the upload size.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import requests

from tests.fixtures.services import start_runtime

MIB = 1024 * 1024
SIZE_MIB = int(os.environ.get("RAGFLOW_BENCH_UPLOAD_MB", "200"))
BOUNDARY = "bench-upload-boundary"


def _body(size: int) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
    ).encode()
    piece = b"x" * MIB
    for _ in range(size // MIB):
        yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _peak_growth(limit_mib: int, tmp_path: Path) -> tuple[int, int]:
    env = {"RAGFLOW_MAX_UPLOAD_BYTES": str(limit_mib * MIB)}
    runtime = start_runtime(tmp_path / f"limit-{limit_mib}", extra_env=env)
    try:
        server = psutil.Process(runtime.process.pid)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {runtime.api_key}"
        api = f"{runtime.base_url}/api/v1"
        dataset = session.post(f"{api}/datasets", json={"name": "upload"}).json()["data"]["id"]
        time.sleep(2)
        base = server.memory_info().rss
        peak, done = [base], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], server.memory_info().rss)
                time.sleep(0.02)

        threading.Thread(target=sample, daemon=True).start()
        response = session.post(
            f"{api}/datasets/{dataset}/documents",
            data=_body(SIZE_MIB * MIB),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=600,
        )
        done.set()
        return response.status_code, (peak[0] - base) // MIB
    finally:
        runtime.stop()


def test_upload_memory_stays_flat(tmp_path: Path) -> None:
    for limit in (SIZE_MIB + 100, SIZE_MIB // 2):
        status, growth = _peak_growth(limit, tmp_path)
        print(
            f"\n{SIZE_MIB} MiB chunked upload, limit {limit} MiB: HTTP {status}, "
            f"server RSS +{growth} MiB at peak"
        )
        assert status == (200 if limit > SIZE_MIB else 413)
        assert growth < SIZE_MIB // 4
