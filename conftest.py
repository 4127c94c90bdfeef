"""Repository-wide pytest setup: the local Kubernetes control plane's fixtures, and logging hygiene.

``cluster`` (session) and ``namespace`` (per test) come from ``e2e.controlplane.pytest_plugin``;
see docs/controlplane.md.

Logging: a test that runs a command in-process (``ragruntime backup ...``) installs that
command's JSON handler on the root logger, bound to the stream pytest captures the test with,
which pytest closes afterwards. Each test's additions to the root logger are taken out again, and
the embedded Milvus Lite servers a test run started are stopped at its end, while logging still
works, instead of by Milvus Lite's own exit hook writing "server stopped" to closed streams.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

pytest_plugins = ["e2e.controlplane.pytest_plugin"]


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    level, before = root.level, set(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.fixture(autouse=True, scope="session")
def _embedded_milvus_stopped() -> Iterator[None]:
    yield
    lite = sys.modules.get("milvus_lite.server_manager")
    if lite is not None:
        lite.server_manager_instance.release_all()
