"""Full backup → restore round trips of a real runtime through the CLI and the emulators.

The runtime ingests documents with the real embedding model; ``ragruntime backup run`` writes to
moto (S3), fake-gcs-server and Azurite at once; ``ragruntime backup restore`` rebuilds a fresh
runtime, whose search results must equal the original's. Also PostgreSQL metadata (pg_dump /
pg_restore), validation, and the faults: wrong key, unknown id, non-empty target, a process
killed mid-upload, and a destination that is down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from runtime_helpers import (
    backup_cli,
    close,
    open_with,
    populate,
    runtime_env,
    search_results,
    settings_for,
    summary,
    write_backup_config,
)

from ragruntime.backup.destinations.factory import build_destination
from ragruntime.backup.repository import Repository
from ragruntime.embedding import Embedder
from ragruntime.services.documents import Upload, upload_documents
from tests.fixtures.services import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def source(tmp_path_factory, embedder):
    """A populated SQLite + Milvus Lite runtime, its dataset and expected search results."""
    settings = settings_for(tmp_path_factory.mktemp("source") / "data")
    runtime = open_with(settings, embedder)
    dataset_id = populate(runtime)
    expected = search_results(runtime, dataset_id)
    close(runtime)
    return settings, dataset_id, expected


def cluster_name() -> str:
    return f"rt-{uuid.uuid4().hex[:8]}"


def test_backup_to_three_clouds_restores_identical_search_results(
    source, emulators, embedder, tmp_path
) -> None:
    settings, dataset_id, expected = source
    assert expected[0], "the source runtime must find something"
    config = write_backup_config(
        tmp_path, [e.config for e in emulators], cluster=cluster_name(), minimum=3
    )
    termination = tmp_path / "termination-log"
    run = backup_cli(["run", "--termination-log", str(termination)], settings, config)
    result = summary(run)
    assert run.returncode == 0 and result["succeeded"], run.stderr
    assert [d["state"] for d in result["destinations"]] == ["succeeded"] * 3
    assert json.loads(termination.read_text())["id"] == result["id"]
    assert result["counts"]["vectors"] > 0 and result["counts"]["files"] == 5

    listing = backup_cli(["list", "--json"], settings, config)
    assert {item["destination"] for item in json.loads(listing.stdout)} == {"s3", "gcs", "azure"}

    for emulator in emulators:  # each destination alone restores the same state
        target = settings_for(tmp_path / f"restored-{emulator.kind}")
        restore = backup_cli(
            ["restore", "--backup-id", result["id"], "--destination", emulator.kind], target, config
        )
        assert restore.returncode == 0, restore.stderr
        assert summary(restore)["counts"] == result["counts"]
        runtime = open_with(target, embedder)
        try:
            assert search_results(runtime, dataset_id) == expected
        finally:
            close(runtime)

    verify = backup_cli(["verify", "--destination", "gcs"], settings, config)
    report = summary(verify)
    assert verify.returncode == 0 and report["ok"], verify.stdout
    restore_report = next(d for d in report["details"] if d["test"] == "restore")
    assert restore_report["mbPerS"] > 0


def test_restore_errors_are_clear_and_never_damage_anything(source, s3_emulator, tmp_path) -> None:
    settings, _, _ = source
    config = write_backup_config(tmp_path, [s3_emulator.config], cluster=cluster_name())
    backup_id = summary(backup_cli(["run"], settings, config))["id"]

    unknown = backup_cli(["restore", "--backup-id", "20990101T000000Z-000000"], settings, config)
    assert unknown.returncode == 2 and "20990101T000000Z-000000" in unknown.stderr

    not_empty = backup_cli(["restore", "--backup-id", backup_id], settings, config)
    assert not_empty.returncode == 2 and "not empty" in not_empty.stderr

    other_key = tmp_path / "other-key"
    other_key.mkdir()
    cluster = json.loads(config.read_text())["cluster"]
    wrong = write_backup_config(other_key, [s3_emulator.config], cluster=cluster)
    fresh = settings_for(tmp_path / "fresh")
    wrong_key = backup_cli(["restore", "--backup-id", backup_id], fresh, wrong)
    assert wrong_key.returncode == 2 and "not in the keyring" in wrong_key.stderr
    missing = json.loads(config.read_text())
    missing["keyringFile"] = str(tmp_path / "nope")
    (tmp_path / "missing.json").write_text(json.dumps(missing))
    no_key = backup_cli(["restore"], fresh, tmp_path / "missing.json")
    assert no_key.returncode == 2 and "keyring" in no_key.stderr
    ok = backup_cli(["restore", "--backup-id", backup_id], fresh, config)
    assert ok.returncode == 0, ok.stderr


def test_unreachable_destination_is_retried_recorded_and_min_successful_decides(
    source, s3_emulator, tmp_path
) -> None:
    settings, _, _ = source
    dead = {
        "name": "dead",
        "s3": {**s3_emulator.config["s3"], "endpoint": f"http://127.0.0.1:{free_port()}"},
    }
    cluster = cluster_name()
    lenient = write_backup_config(tmp_path, [s3_emulator.config, dead], cluster=cluster)
    result = summary(run := backup_cli(["run"], settings, lenient))
    assert run.returncode == 0 and result["succeeded"]
    states = {d["name"]: d for d in result["destinations"]}
    assert states["s3"]["state"] == "succeeded"
    assert states["dead"]["state"] == "failed" and "dead" in states["dead"]["error"]

    strict_dir = tmp_path / "strict"
    strict_dir.mkdir()
    keys = [Path(json.loads(lenient.read_text())["keyringFile"]).read_text()]
    strict = write_backup_config(strict_dir, [s3_emulator.config, dead], cluster=cluster, minimum=2)
    Path(json.loads(strict.read_text())["keyringFile"]).write_text(keys[0])
    failed = backup_cli(["run"], settings, strict)
    assert failed.returncode == 1 and not summary(failed)["succeeded"]
    repo = Repository(build_destination(s3_emulator.config, cluster), cluster)
    assert [e.backup_id for e in repo.load_catalog().entries] == [result["id"]]


def test_killed_mid_upload_leaves_only_complete_backups(s3_emulator, embedder, tmp_path) -> None:
    settings = settings_for(tmp_path / "data")
    runtime = open_with(settings, embedder)
    try:
        dataset_id = populate(runtime, {"bees.txt": "Bees dance to point at flowers."})
    finally:
        close(runtime)
    cluster = cluster_name()
    config = write_backup_config(tmp_path, [s3_emulator.config], cluster=cluster)
    first = summary(backup_cli(["run"], settings, config))
    assert first["succeeded"]
    runtime = open_with(settings, embedder)  # a 120 MB document makes the next backup slow
    try:
        upload_documents(runtime, dataset_id, [Upload("big.bin", os.urandom(120 << 20))])
    finally:
        close(runtime)
    repo = Repository(build_destination(s3_emulator.config, cluster), cluster)
    before = {i.key for i in repo.destination.list("data/")}
    process = subprocess.Popen(
        [sys.executable, "-m", "ragruntime", "backup", "run", "--config", str(config)],
        env=runtime_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len({i.key for i in repo.destination.list("data/")} - before) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the backup finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert len({i.key for i in repo.destination.list("data/")} - before) >= 3
    assert [e.backup_id for e in repo.load_catalog().entries] == [first["id"]]

    again = summary(backup_cli(["run"], settings, config))
    assert again["succeeded"]
    old = backup_cli(["verify", "--backup-id", first["id"]], settings, config)
    assert old.returncode == 0 and summary(old)["ok"], old.stdout


def test_prune_racing_a_backup_across_processes_never_sweeps_its_objects(
    source, s3_emulator, tmp_path
) -> None:
    """Two CLI processes: ``prune`` over a proxy that holds its listing of ``data/`` (slowed
    storage), and a whole ``run`` in between. A backup that exits 0 must stay complete."""
    from faultproxy import Fault, FaultProxy

    settings, _, _ = source
    cluster = cluster_name()
    schedules = [{"name": "daily", "retention": {"count": 1}}]
    direct = write_backup_config(
        tmp_path, [s3_emulator.config], cluster=cluster, schedules=schedules
    )
    assert backup_cli(["run", "--schedule", "daily"], settings, direct).returncode == 0
    proxy = FaultProxy(s3_emulator.port)
    try:
        raw = json.loads(direct.read_text())
        block = raw["destinations"][0]["s3"]
        block["endpoint"] = proxy.endpoint_for(block["endpoint"], s3_emulator.port)
        slowed = tmp_path / "slowed.json"
        slowed.write_text(json.dumps(raw))
        proxy.inject(Fault("hold", "up", connections=-1, match=b"%2Fdata%2F"))
        prune = subprocess.Popen(
            [sys.executable, "-m", "ragruntime", "backup", "prune", "--config", str(slowed)],
            env=runtime_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not proxy.triggered and time.monotonic() < deadline:  # prune is about to sweep
            time.sleep(0.05)
        assert proxy.triggered, "prune never listed data/"
        run = backup_cli(["run", "--schedule", "daily", "--no-prune"], settings, direct)
        proxy.release()
        _, err = prune.communicate(timeout=120)
    finally:
        proxy.close()
    assert prune.returncode == 0, err
    result = summary(run)
    assert run.returncode == 0 and result["succeeded"], run.stderr
    check = backup_cli(
        ["verify", "--backup-id", result["id"], "--tests", "integrity"], settings, direct
    )
    assert check.returncode == 0 and summary(check)["ok"], check.stdout


def test_restore_without_a_destination_falls_back_to_an_intact_copy(
    source, s3_emulator, embedder, tmp_path
) -> None:
    """The bootstrap restore passes no destination: a damaged first copy must not block it,
    and a restore no copy can finish leaves an empty target behind."""
    from ragruntime.backup.sink import RuntimeSink

    settings, dataset_id, expected = source
    cluster = cluster_name()
    local = {"name": "local", "local": {"path": str(tmp_path / "local-backups")}}
    config = write_backup_config(tmp_path, [s3_emulator.config, local], cluster=cluster)
    backup_id = summary(backup_cli(["run"], settings, config))["id"]
    repos = [
        Repository(build_destination(raw, cluster), cluster) for raw in (s3_emulator.config, local)
    ]
    manifest = repos[0].committed_manifest(backup_id)
    last = manifest.entries[-1].objects[-1].path  # everything before it gets restored first
    repos[0].destination.delete(last)

    target = settings_for(tmp_path / "restored")
    restore = backup_cli(["restore"], target, config)
    assert restore.returncode == 0, restore.stderr
    report = summary(restore)
    assert report["destination"] == "local" and report["id"] == backup_id
    assert [s["destination"] for s in report["skipped"]] == ["s3"]
    assert (
        "missing" in report["skipped"][0]["reason"] or "not found" in report["skipped"][0]["reason"]
    )
    runtime = open_with(target, embedder)
    try:
        assert search_results(runtime, dataset_id) == expected
    finally:
        close(runtime)

    repos[1].destination.delete(last)
    empty = settings_for(tmp_path / "never-restored")
    failed = backup_cli(["restore"], empty, config)
    assert failed.returncode == 2 and "s3:" in failed.stderr and "local:" in failed.stderr
    RuntimeSink(empty).prepare(force=False)  # raises TargetNotEmpty if anything was left
