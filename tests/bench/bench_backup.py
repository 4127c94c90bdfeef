"""Backup engine throughput, memory and restore speed, each next to its plain baseline.

Run: ``python -m pytest tests/bench/bench_backup.py -s`` (or ``make bench``). Sizes can be
lowered with ``RAGFLOW_BENCH_BACKUP_MB`` (default 1024).

1. Throughput: one ~1 GB snapshot (random, incompressible bytes in a temp file) through the
   engine (chunking, keyed hashing, AES-256-GCM, pre-commit listing check, manifest, catalog) to
   moto (S3), fake-gcs-server and Azurite at once, then to each alone; baseline: a plain boto3
   ``upload_file`` of the same file to the same moto. Each row gives the ratio to the baseline,
   the engine's CPU seconds and each emulator's CPU seconds (psutil), so time spent in the
   emulators on this shared machine is not mistaken for engine overhead.
2. Memory: peak RSS of a backup process (``python bench_backup.py child``, sampled with psutil
   and its own VmHWM) at 1x and 2x the size, to a local directory and to the three emulators
   at once: it must not grow with the size (bounded in-flight objects).
3. Restore: download + authenticate + decrypt the 1 GB backup from moto (bytes discarded);
   baseline: one streamed boto3 ``get_object`` of the plainly uploaded file.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "operator")]

from ragruntime.backup import crypto  # noqa: E402
from ragruntime.backup.destinations.factory import build_destination  # noqa: E402
from ragruntime.backup.destinations.local import LocalDestination  # noqa: E402
from ragruntime.backup.engine import BackupOptions, SourceEntry, run_backup  # noqa: E402
from ragruntime.backup.format import Entry, Manifest  # noqa: E402
from ragruntime.backup.repository import Repository  # noqa: E402
from ragruntime.backup.restore import restore_backup  # noqa: E402

MB = 1_000_000
SIZE_MB = int(os.environ.get("RAGFLOW_BENCH_BACKUP_MB", "1024"))
PIECE = 16 << 20


class FileSnapshot:
    """A snapshot of one big file, as the runtime's would be for a large database dump."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> Iterator[SourceEntry]:
        yield SourceEntry("database", "bench.bin", lambda: self.path.open("rb"), 1)

    def counts(self) -> Mapping[str, int]:
        return {"database": 1}


class DiscardSink:
    """Restore target that only counts bytes (measures download + decrypt + verify)."""

    def __init__(self) -> None:
        self.bytes = 0

    def prepare(self, force: bool) -> None:
        self.bytes = 0

    def write(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        for piece in chunks:
            self.bytes += len(piece)

    def finish(self, manifest: Manifest) -> Mapping[str, int]:
        return {"database": 1}

    def discard(self) -> None:
        self.bytes = 0


def make_file(path: Path, size_mb: int) -> Path:
    written = 0
    with path.open("wb") as handle:
        while written < size_mb * MB:
            piece = os.urandom(min(PIECE, size_mb * MB - written))
            handle.write(piece)
            written += len(piece)
    return path


def keyring() -> crypto.Keyring:
    return crypto.Keyring.from_keys([os.urandom(32)])


def child(source: Path, workdir: Path, clouds: Path | None = None) -> None:
    """One backup process: the source file to a local destination, or to the destinations in
    the JSON file ``clouds``; prints its figures."""
    started = time.perf_counter()
    if clouds is None:
        destinations = [LocalDestination("local", workdir / "repo")]
    else:
        configs = json.loads(clouds.read_text())
        destinations = [build_destination(c, f"bench-rss-{source.stat().st_size}") for c in configs]
    result = run_backup(
        FileSnapshot(source),
        destinations,
        keyring(),
        BackupOptions(cluster=f"bench-rss-{source.stat().st_size}"),
    )
    seconds = time.perf_counter() - started
    assert result.succeeded, result.error
    # VmHWM: this process's peak RSS (ru_maxrss would carry the forking parent's over exec)
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
    print(json.dumps({"seconds": seconds, "vmhwm_mb": peak_kb / 1024}))


def peak_rss_of_backup(size_mb: int, clouds: list[dict] | None = None) -> dict[str, float]:
    import psutil

    with tempfile.TemporaryDirectory(prefix="bench-backup-rss-") as tmp:
        source = make_file(Path(tmp) / "source.bin", size_mb)
        extra = []
        if clouds is not None:
            (Path(tmp) / "clouds.json").write_text(json.dumps(clouds))
            extra = [str(Path(tmp) / "clouds.json")]
        process = subprocess.Popen(
            [sys.executable, __file__, "child", str(source), tmp, *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        handle = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, handle.memory_info().rss)
            time.sleep(0.05)
        output = process.stdout.read() if process.stdout else ""
        assert process.returncode == 0, output
        figures = json.loads(output.strip().splitlines()[-1])
    return {"psutil_peak_mb": peak / 2**20, **figures}


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (an emulator)."""
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def measured(fn, emulators) -> tuple[float, float, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Wall seconds, this process's CPU seconds, and each emulator's CPU seconds, for ``fn``."""
    before = {e.kind: cpu_seconds(e.process.pid) for e in emulators}
    cpu = time.process_time()
    wall = timed(fn)
    cpu = time.process_time() - cpu
    return wall, cpu, {e.kind: cpu_seconds(e.process.pid) - before[e.kind] for e in emulators}


@pytest.mark.timeout(3600)
def test_backup_throughput_memory_and_restore(tmp_path: Path) -> None:
    from tests.bench import harness
    from tests.integration.backup.emulators import start_azure, start_gcs, start_s3

    source = make_file(tmp_path / "source.bin", SIZE_MB)
    emulators = [start_s3(), start_gcs(), start_azure()]
    rows = []
    try:
        s3 = emulators[0]
        keys = keyring()
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=s3.config["s3"]["endpoint"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        t_plain, cpu_plain, emu_plain = measured(
            lambda: client.upload_file(str(source), "backups", "plain/source.bin"), emulators
        )
        rows.append(["baseline: boto3 upload_file -> S3", t_plain, 1.0, cpu_plain, emu_plain])

        runs = [("S3+GCS+Azure (parallel)", emulators)] + [
            (e.kind.upper() if e.kind != "azure" else "Azure", [e]) for e in emulators
        ]
        results = {}
        for label, targets in runs:
            cluster = f"bench-{len(targets)}-{targets[0].kind}"
            dests = [build_destination(e.config, cluster) for e in targets]
            options = BackupOptions(cluster=cluster, min_successful=len(dests))
            out: list = []
            wall, cpu, emu = measured(
                lambda d=dests, o=options, r=out: r.append(
                    run_backup(FileSnapshot(source), d, keys, o)
                ),
                emulators,
            )
            assert out[0].succeeded, out[0].error
            results[label] = (dests, out[0])
            rows.append([f"encrypted backup -> {label}", wall, t_plain / wall, cpu, emu])

        one, result_one = results["S3"]
        sink = DiscardSink()
        repo = Repository(one[0], "bench-1-s3")
        t_restore = timed(lambda: restore_backup(repo, result_one.backup_id, keys, sink))
        assert sink.bytes == SIZE_MB * MB

        def plain_download() -> None:
            body = client.get_object(Bucket="backups", Key="plain/source.bin")["Body"]
            received = sum(len(piece) for piece in body.iter_chunks(1 << 20))
            assert received == SIZE_MB * MB

        t_download = timed(plain_download)
        configs = [e.config for e in emulators]
        rss_clouds = {size: peak_rss_of_backup(size, configs) for size in (SIZE_MB, 2 * SIZE_MB)}
    finally:
        for emulator in emulators:
            emulator.stop()
    source.unlink()
    mb = SIZE_MB * MB / MB
    harness.print_report(
        "Encrypted backup vs one plain boto3 upload (ratio = plain seconds / backup seconds)",
        {
            "size": f"{SIZE_MB} MB random bytes",
            "object size": "4 MiB",
            "encryption chunk": "1 MiB",
            "emulators": "moto_server, fake-gcs-server, Azurite",
        },
        [
            "operation",
            "seconds",
            "MB/s",
            "ratio",
            "engine CPU s",
            "moto CPU s",
            "gcs CPU s",
            "azurite CPU s",
        ],
        [
            [label, wall, mb / wall, ratio, cpu, emu["s3"], emu["gcs"], emu["azure"]]
            for label, wall, ratio, cpu, emu in rows
        ],
    )
    harness.print_report(
        "Restore vs a plain download",
        {},
        ["operation", "seconds", "MB/s"],
        [
            ["restore (download+decrypt+verify) <- S3", t_restore, mb / t_restore],
            ["baseline: boto3 get_object stream <- S3", t_download, mb / t_download],
        ],
    )

    rss = {size: peak_rss_of_backup(size) for size in (SIZE_MB, 2 * SIZE_MB)}
    harness.print_report(
        "Peak RSS of the backup process (to a local directory)",
        {},
        ["size MB", "psutil peak RSS MB", "VmHWM MB", "seconds"],
        [[size, r["psutil_peak_mb"], r["vmhwm_mb"], r["seconds"]] for size, r in rss.items()],
    )
    harness.print_report(
        "Peak RSS of the backup process (to S3 + GCS + Azure at once)",
        {},
        ["size MB", "psutil peak RSS MB", "VmHWM MB", "seconds"],
        [
            [size, r["psutil_peak_mb"], r["vmhwm_mb"], r["seconds"]]
            for size, r in rss_clouds.items()
        ],
    )
    for figures in (rss, rss_clouds):
        small, big = figures[SIZE_MB]["vmhwm_mb"], figures[2 * SIZE_MB]["vmhwm_mb"]
        assert big < small * 1.25 + 20, "peak memory must not grow with the backup size"


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]) if sys.argv[4:] else None)
