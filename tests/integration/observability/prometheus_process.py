"""A private Prometheus server (the apt binary) for the observability integration tests.

`start_prometheus(base_dir, targets, rule_files)` writes a config that scrapes each target every
second and evaluates the rules every second, starts `prometheus` on a free loopback port with its
TSDB in `base_dir`, and waits until it is ready. `PrometheusProcess.alerts()` reads
`/api/v1/alerts`; `stop()` ends the process by its PID. A missing binary fails loudly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.services import free_port, stop_process

READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job: `host:port`, plus target labels (e.g. namespace, service)."""

    job: str
    address: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class PrometheusProcess:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (resolved ones disappear from this list)."""
        return list(self.api("/api/v1/alerts")["alerts"])

    def alert_states(self) -> dict[str, str]:
        """alertname -> "firing" if any instance fires, else "pending"."""
        states: dict[str, str] = {}
        for alert in self.alerts():
            name = alert["labels"]["alertname"]
            if states.get(name) != "firing":
                states[name] = alert["state"]
        return states

    def rule_health(self) -> list[tuple[str, str, str]]:
        """(rule name, health, lastError) of every loaded rule."""
        groups = self.api("/api/v1/rules")["groups"]
        return [
            (rule["name"], rule.get("health", ""), rule.get("lastError", ""))
            for group in groups
            for rule in group["rules"]
        ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        return stop_process(self.process)


def start_prometheus(
    base_dir: Path, targets: list[ScrapeTarget], rule_files: list[Path]
) -> PrometheusProcess:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: scripts/install.d/10-apt.sh installs the apt package"
    base_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": target.job,
                "static_configs": [{"targets": [target.address], "labels": target.labels}],
            }
            for target in targets
        ],
    }
    config_path = base_dir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = base_dir / "prometheus.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={base_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PrometheusProcess(port=port, process=process, log_path=log_path)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise TimeoutError(f"prometheus not ready after {READY_TIMEOUT_S}s:\n{server.log()}")
