"""The `events` fixture: kopf's Events captured in a list (kopf.event needs a running operator).

Imported by the test modules that use it (`from kopf_events import captured_events`), like
cluster_helpers: a conftest.py in this folder would shadow the repository-root `conftest` module
that other tests import helpers from. The fixture is named `events`; its function has another
name so that the test parameters named `events` do not shadow the import.
"""

from __future__ import annotations

from typing import Any

import kopf
import pytest


@pytest.fixture(name="events")
def captured_events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Every Event posted through `kopf.event` or `kopf.warn`, as {type, reason, message}."""
    posted: list[dict[str, str]] = []

    def record(body: Any, *, type: str, reason: str, message: str = "") -> None:
        posted.append({"type": type, "reason": reason, "message": message})

    monkeypatch.setattr(kopf, "event", record)
    monkeypatch.setattr(kopf, "warn", lambda body, **kw: record(body, type="Warning", **kw))
    return posted
