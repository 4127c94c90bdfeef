"""The images a real node runs: built with the private Docker engine, imported into containerd.

Called by e2e/node/conftest.py. The node images (pause, PostgreSQL, Redis, Milvus Lite) come from
e2e/node/images (Debian packages and PyPI); the operator and runtime images from `make images`
(scripts/images/build.sh), built here when missing. Everything is exported with one
`docker save` into an archive that the node's containerd imports.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts" / "images"
NODE_IMAGES = Path(__file__).resolve().parent / "images"
DOCKER = "/usr/bin/docker"
BUILD_TIMEOUT_SECONDS = 3600


@contextmanager
def docker_engine() -> Iterator[dict[str, str]]:
    """The environment of a running private engine (started here, and stopped, if needed)."""
    status = subprocess.run(
        ["bash", str(SCRIPTS / "dockerd.sh"), "status"], capture_output=True, text=True
    )
    started = not status.stdout.startswith("running")
    result = subprocess.run(
        ["bash", str(SCRIPTS / "dockerd.sh"), "start"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"the private Docker engine did not start: {result.stderr.strip()}")
    key, _, value = result.stdout.strip().partition("=")
    env = {**os.environ, key: value}
    try:
        yield env
    finally:
        if started:
            subprocess.run(["bash", str(SCRIPTS / "dockerd.sh"), "stop"], check=False)


def project_images() -> tuple[str, str]:
    names = subprocess.run(
        ["python3", str(SCRIPTS / "names.py")], capture_output=True, text=True, check=True
    ).stdout.split()
    return names[0], names[1]


def build_node_images(env: dict[str, str]) -> dict[str, str]:
    """Target → image name of the node images (built once; the engine caches the layers)."""
    result = subprocess.run(
        ["bash", str(NODE_IMAGES / "build.sh")],
        env=env, capture_output=True, text=True, check=False, timeout=BUILD_TIMEOUT_SECONDS,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"building the node images failed:\n{result.stderr[-3000:]}")
    return dict(line.split() for line in result.stdout.splitlines())


def build_project_images(env: dict[str, str], missing: Sequence[str]) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPTS / "build.sh")],
        env={**env, "TARGETS": " ".join(missing)},
        capture_output=True, text=True, check=False, timeout=BUILD_TIMEOUT_SECONDS,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"make images failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")


def save(env: dict[str, str], images: Sequence[str], archive: Path) -> Path:
    subprocess.run(
        [DOCKER, "save", "-o", str(archive), *images],
        env=env, check=True, capture_output=True, timeout=BUILD_TIMEOUT_SECONDS,
    )  # fmt: skip
    return archive
