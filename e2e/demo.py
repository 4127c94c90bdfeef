"""``python -m e2e.demo`` (``make demo``): the whole product on one machine, no cloud, no Docker.

The README's first command. It walks through what a user does with the project, printing each step:

1. starts the local Kubernetes control plane (etcd, kube-apiserver, controllers, kwok fake nodes);
2. installs the CRDs from ``crds/`` and runs the operator against it;
3. applies the sample RagFlowCluster, BackupPolicy and AlertPolicy and waits until all are Ready
   (the cluster's Pods run on kwok's fake nodes, so the API answers come from step 4);
4. runs ``ragruntime serve`` on the embedded default (SQLite, Milvus Lite, in-process cache and
   worker), uploads the sample documents with RAGFlow's own Python client and answers a retrieval
   query over them;
5. takes an encrypted backup of that runtime to a local destination and verifies it;
6. stops everything it started, by PID, also on Ctrl-C or an error.

``--hold`` keeps everything running until Ctrl-C, printing how to reach it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from e2e.controlplane import launcher
from e2e.controlplane.cluster import Cluster

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "ragflow-demo"
QUESTION = "How are backups encrypted and what happens when a destination is down?"


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def info(message: str) -> None:
    print(f"    {message}", flush=True)


def wait_until(
    what: str, check: Callable[[], bool], timeout_s: float, interval_s: float = 1.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def background(
    command: list[str], log_path: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process logging to ``log_path``; stopped (SIGTERM, then SIGKILL) on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def ready_status(cluster: Cluster, kind: str, name: str) -> str:
    result = cluster.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json", check=False)
    if result.returncode:
        return "Missing"
    conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
    ready = [c for c in conditions if c.get("type") == "Ready"]
    return ready[0]["status"] if ready else "Unknown"


def install_crds(cluster: Cluster) -> None:
    step("Installing the CRDs (crds/)")
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    for crd in sorted((REPO / "crds").glob("*.yaml")):
        cluster.kubectl("wait", "--for=condition=Established", "-f", str(crd), "--timeout=60s")
    info(
        cluster.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=ragflow").stdout.strip()
        or cluster.kubectl("get", "crd").stdout.strip()
    )

    step(f"Creating namespace {NAMESPACE} and the Secrets the samples refer to")
    cluster.kubectl("create", "namespace", NAMESPACE)
    # Demo values only: a fresh random keyring, and placeholder cloud credentials (the demo's
    # backup CronJobs are scheduled but never reach a cloud: kwok runs no containers).
    secrets_by_name = {
        "backup-keys": {"keyring": base64.b64encode(secrets.token_bytes(32)).decode()},
        "backup-aws": {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"},
        "backup-gcs": {"service-account.json": json.dumps({"type": "service_account"})},
        "backup-azure": {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"},
        "alerting": {"pagerduty-routing-key": "demo", "webhook-url": "http://127.0.0.1:1/"},
    }
    for name, data in secrets_by_name.items():
        literals = [f"--from-literal={key}={value}" for key, value in data.items()]
        cluster.kubectl("create", "secret", "generic", name, "-n", NAMESPACE, *literals)
        info(f"secret/{name} ({', '.join(data)})")


def apply_samples(cluster: Cluster) -> list[tuple[str, str]]:
    step("Applying the sample RagFlowCluster, BackupPolicy and AlertPolicy")
    applied: list[tuple[str, str]] = []
    for sample, kind in (
        ("ragflowcluster-minimal.yaml", "ragflowcluster"),
        ("backuppolicy.yaml", "backuppolicy"),
        ("alertpolicy.yaml", "alertpolicy"),
    ):
        path = REPO / "samples" / sample
        document = cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(path), "-o", "json")
        name = json.loads(document.stdout)["metadata"]["name"]
        applied.append((kind, name))
        info(f"{kind}/{name} applied from samples/{sample}")
    return applied


def wait_ready(cluster: Cluster, applied: list[tuple[str, str]], timeout_s: float) -> None:
    step("Waiting for Ready=True (the operator reconciles; kwok runs the Pods)")
    for kind, name in applied:
        started = time.monotonic()
        wait_until(
            f"{kind}/{name} Ready",
            lambda k=kind, n=name: ready_status(cluster, k, n) == "True",
            timeout_s,
        )
        info(f"{kind}/{name} Ready after {time.monotonic() - started:.1f}s")
    print(cluster.kubectl("get", "rfc,rbp,rap", "-n", NAMESPACE).stdout, flush=True)
    print(
        cluster.kubectl("get", "deploy,sts,svc,cronjob,hpa,pdb", "-n", NAMESPACE).stdout, flush=True
    )


def runtime_env(data_dir: Path, port: int, api_key: str) -> dict[str, str]:
    return {
        **os.environ,
        "RAGFLOW_DATA_DIR": str(data_dir),
        "RAGFLOW_API_KEY": api_key,
        "RAGFLOW_PORT": str(port),
        "RAGFLOW_HOST": "127.0.0.1",
        "RAGFLOW_CLUSTER_NAME": "docs",
        "HF_HUB_OFFLINE": "1",
    }


@contextlib.contextmanager
def serving_runtime(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``ragruntime serve --role all`` until the block ends; yields its base URL once /ready."""
    base_url = f"http://{env['RAGFLOW_HOST']}:{env['RAGFLOW_PORT']}"
    with background(["ragruntime", "serve", "--role", "all"], log_path, env) as runtime:

        def ready() -> bool:
            if runtime.poll() is not None:
                raise RuntimeError(f"ragruntime exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/ready", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until("ragruntime /ready", ready, timeout_s=300)
        info(f"serving at {base_url} (pid {runtime.pid}); model loaded, stores ready")
        yield base_url


def ask(base_url: str, api_key: str) -> list[tuple[str, str]]:
    """The demo question over every dataset; prints and returns (document, content) per hit."""
    from ragflow_sdk import RAGFlow

    rag = RAGFlow(api_key=api_key, base_url=base_url)
    step(f"Retrieval: {QUESTION!r}")
    dataset_ids = [dataset.id for dataset in rag.list_datasets()]
    chunks = rag.retrieve(dataset_ids=dataset_ids, question=QUESTION, page_size=3)
    for rank, chunk in enumerate(chunks, start=1):
        text = " ".join(chunk.content.split())
        info(f"{rank}. [{chunk.document_name} similarity={chunk.similarity:.3f}] {text[:160]}…")
    if not chunks:
        raise RuntimeError("the retrieval returned no chunks")
    return [(chunk.document_name, chunk.content) for chunk in chunks]


def ingest_samples(base_url: str, api_key: str) -> None:
    """Upload the sample documents with RAGFlow's client and parse them."""
    from ragflow_sdk import RAGFlow

    rag = RAGFlow(api_key=api_key, base_url=base_url)
    dataset = rag.create_dataset(name="operations-handbook")
    documents = sorted((REPO / "samples" / "documents").iterdir())
    uploaded = dataset.upload_documents(
        [{"display_name": path.name, "blob": path.read_bytes()} for path in documents]
    )
    info(f"uploaded {len(uploaded)} documents: {', '.join(d.name for d in uploaded)}")
    dataset.async_parse_documents([d.id for d in uploaded])

    def parsed() -> bool:
        runs = {d.run for d in dataset.list_documents()}
        if "FAIL" in runs:
            raise RuntimeError(f"a document failed to parse: {runs}")
        return runs == {"DONE"}

    wait_until("documents parsed", parsed, timeout_s=300)
    total = sum(d.chunk_count for d in dataset.list_documents())
    info(f"parsed and embedded: {total} chunks")


def backup_command(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        ["ragruntime", "backup", *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    if result.returncode:
        detail = (result.stdout + result.stderr)[-2000:]
        raise RuntimeError(f"ragruntime backup {args[0]} failed: {detail}")
    for line in result.stdout.strip().splitlines()[-6:]:
        info(f"backup {args[0]}: {line[:300]}")


def backup_and_restore(env: dict[str, str], work: Path, restored_env: dict[str, str]) -> None:
    """Encrypted backup, ``list``, ``verify`` (integrity, scratch restore, speed), ``restore``."""
    step("Encrypted backup of the runtime to a local destination; list; verify")
    info("(a Milvus Lite file is opened by one process at a time, so the runtime was stopped;")
    info(" in a cluster the backup Job reads the Milvus server while the API keeps serving)")
    keyring = work / "keyring"
    keyring.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    keyring.chmod(0o600)
    config = work / "backup.json"
    destination = {"name": "local", "local": {"path": str(work / "backups")}}
    config.write_text(
        json.dumps({"cluster": "docs", "destinations": [destination], "keyringFile": str(keyring)})
    )
    backup_env = {**env, "RAGFLOW_BACKUP_CONFIG": str(config)}
    backup_command(backup_env, "run", "--type", "full")
    backup_command(backup_env, "list")
    backup_command(backup_env, "verify")
    step("Restoring the latest backup into a fresh, empty runtime")
    backup_command({**restored_env, "RAGFLOW_BACKUP_CONFIG": str(config)}, "restore")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--hold", action="store_true", help="keep everything running until Ctrl-C")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for each Ready")
    parser.add_argument("--skip-runtime", action="store_true", help="only the Kubernetes part")
    args = parser.parse_args(argv)

    with (
        tempfile.TemporaryDirectory(prefix="ragflow-demo-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        started = time.monotonic()
        step(
            "Starting the local Kubernetes control plane (etcd, kube-apiserver, controllers, kwok)"
        )
        plane = launcher.ControlPlane(work / "controlplane", launcher.Options(nodes=3))
        plane_info = plane.start()  # cleans up after itself if a component fails to start
        stack.callback(plane.stop)
        cluster = Cluster.from_control_plane(plane)
        info(f"ready in {plane_info.phase_seconds['total']:.1f}s at {plane_info.server}")
        info(f"kubeconfig: {plane_info.kubeconfig}")

        install_crds(cluster)
        step("Starting the operator (ragflow-operator run)")
        operator_log = work / "operator.log"
        operator = stack.enter_context(
            background(
                ["ragflow-operator", "run", "-n", NAMESPACE, "--log-format", "plain"],
                operator_log,
                cluster.env(),
            )
        )
        info(f"pid {operator.pid}, log {operator_log}")
        try:
            wait_ready(cluster, apply_samples(cluster), args.timeout)
        except Exception:
            print(operator_log.read_text()[-4000:], file=sys.stderr)
            raise

        if not args.skip_runtime:
            step("Starting ragruntime, embedded default (SQLite, Milvus Lite, in-process worker)")
            api_key = secrets.token_urlsafe(24)
            env = runtime_env(work / "runtime", free_port(), api_key)
            with serving_runtime(env, work / "runtime.log") as base_url:
                ingest_samples(base_url, api_key)
                answer = ask(base_url, api_key)
            restored_env = runtime_env(work / "restored", free_port(), api_key)
            backup_and_restore(env, work, restored_env)
            step("Starting a runtime on the restored data: the same question, the same answer")
            with serving_runtime(restored_env, work / "restored.log") as base_url:
                if ask(base_url, api_key) != answer:
                    raise RuntimeError("the restored runtime answers differently")
            info("identical results after the backup -> restore round trip")

        info(f"demo finished in {time.monotonic() - started:.0f}s")
        if args.hold:
            print(
                f"\nexport KUBECONFIG={plane_info.kubeconfig}   # then: kubectl get rfc,rbp,rap -A"
            )
            print("Everything keeps running; press Ctrl-C to stop and clean up.", flush=True)
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            stop.wait()
        step("Stopping the runtime, the operator and the control plane")
    print("    stopped; nothing left running", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
