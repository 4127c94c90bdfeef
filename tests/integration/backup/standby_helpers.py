"""Helpers of the standby tests: ``ragruntime`` CLI processes with a region's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ragflow_contract import standby_result


def region_env(data_dir: Path, vector_uri: str, cluster: str, **extra: str) -> dict[str, str]:
    """The ``RAGFLOW_*`` environment of one region's runtime (SQLite file, given vectors)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGFLOW_")}
    env.update(
        {
            "RAGFLOW_DATA_DIR": str(data_dir),
            "RAGFLOW_VECTOR_URI": vector_uri,
            "RAGFLOW_CACHE_URL": "",
            "RAGFLOW_CLUSTER_NAME": cluster,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **extra,
        }
    )
    return env


def ragruntime(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragruntime", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def json_line(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON summary line a command printed on stdout."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"rc={result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    return json.loads(lines[0])  # type: ignore[no-any-return]


def backup(config: Path, env: dict[str, str], *extra: str) -> str:
    result = ragruntime(["backup", "run", "--config", str(config), "--no-prune", *extra], env)
    summary = json_line(result)
    assert result.returncode == 0 and summary["succeeded"], result.stderr[-3000:]
    return str(summary["id"])


def sync(
    config: Path, env: dict[str, str], termination: Path | None = None
) -> tuple[int, dict[str, Any]]:
    args = ["standby", "sync", "--config", str(config)]
    if termination is not None:
        args += ["--termination-log", str(termination)]
    result = ragruntime(args, env)
    return result.returncode, json_line(result)


SUMMARY_FIELDS = set(standby_result.SUMMARY_FIELDS)
