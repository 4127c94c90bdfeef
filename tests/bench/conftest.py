"""Collects the ``bench_*.py`` benchmarks, but only when tests/bench is asked for by name.

The default ``pytest`` run (testpaths ``tests`` and ``e2e``) never runs a benchmark: its
``python_files`` pattern only matches ``test_*.py``. ``make bench`` (``pytest tests/bench -s``)
names this directory, and then this hook turns each ``bench_*.py`` below it into a test module.
A single file given on the command line (``pytest tests/bench/bench_ingestion.py -s``) is
collected by pytest itself, so the hook leaves it alone (it would be collected twice).
"""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent


def _bench_dir_requested(config: pytest.Config) -> bool:
    """True when a command-line path is this directory or lies inside it."""
    for argument in config.args:
        path = Path(config.invocation_params.dir, argument.split("::")[0]).resolve()
        if path == BENCH_DIR or BENCH_DIR in path.parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Make ``bench_*.py`` files under tests/bench modules when tests/bench was requested."""
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    if parent.session.isinitpath(file_path) or not _bench_dir_requested(parent.config):
        return None
    return pytest.Module.from_parent(parent, path=file_path)
