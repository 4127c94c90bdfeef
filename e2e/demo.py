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


def runtime_env(work: Path, port: int, api_key: str) -> dict[str, str]:
    return {
        **os.environ,
        "RAGFLOW_DATA_DIR": str(work / "runtime"),
        "RAGFLOW_API_KEY": api_key,
        "RAGFLOW_PORT": str(port),
        "RAGFLOW_HOST": "127.0.0.1",
        "RAGFLOW_CLUSTER_NAME": "docs",
        "HF_HUB_OFFLINE": "1",
    }


def query_runtime(base_url: str, api_key: str) -> str:
    """Upload the sample documents with RAGFlow's client, parse them, ask a question."""
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
    step(f"Retrieval: {QUESTION!r}")
    chunks = rag.retrieve(dataset_ids=[dataset.id], question=QUESTION, page_size=3)
    for rank, chunk in enumerate(chunks, start=1):
        text = " ".join(chunk.content.split())
        info(f"{rank}. [{chunk.document_name} similarity={chunk.similarity:.3f}] {text[:160]}…")
    if not chunks:
        raise RuntimeError("the retrieval returned no chunks")
    return dataset.id


def backup_runtime(env: dict[str, str], work: Path) -> None:
    """``ragruntime backup run`` then ``list`` and ``verify`` (integrity + restore + speed)."""
    step("Encrypted backup of the runtime to a local destination, then verify it")
    keyring = work / "keyring"
    keyring.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    keyring.chmod(0o600)
    config = work / "backup.yaml"
    config.write_text(
        json.dumps(
            {
                "cluster": "docs",
                "destinations": [{"name": "local", "local": {"path": str(work / "backups")}}],
                "keyringFile": str(keyring),
            }
        )
    )
    backup_env = {**env, "RAGFLOW_BACKUP_CONFIG": str(config)}
    for command in (
        ["run", "--type", "full", "--workdir", str(work / "snapshot")],
        ["list"],
        ["verify", "--workdir", str(work / "scratch")],
    ):
        result = subprocess.run(
            ["ragruntime", "backup", *command],
            env=backup_env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(
                f"ragruntime backup {command[0]} failed: {result.stdout[-1500:]}"
                f"{result.stderr[-1500:]}"
            )
        for line in result.stdout.strip().splitlines()[-6:]:
            info(f"backup {command[0]}: {line[:300]}")


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
            port, api_key = free_port(), secrets.token_urlsafe(24)
            env = runtime_env(work, port, api_key)
            runtime_log = work / "runtime.log"
            runtime = stack.enter_context(
                background(["ragruntime", "serve", "--role", "all"], runtime_log, env)
            )
            base_url = f"http://127.0.0.1:{port}"
            import urllib.request

            def runtime_ready() -> bool:
                if runtime.poll() is not None:
                    raise RuntimeError(f"ragruntime exited: {runtime_log.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{base_url}/ready", timeout=2) as response:
                        return bool(response.status == 200)
                except OSError:
                    return False

            wait_until("ragruntime /ready", runtime_ready, timeout_s=300)
            info(f"serving at {base_url} (pid {runtime.pid}); model loaded, stores ready")
            query_runtime(base_url, api_key)
            backup_runtime(env, work)

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
