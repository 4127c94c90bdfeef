"""Fixtures shared by the operator's unit tests."""

from __future__ import annotations

from typing import Any

import kopf
import pytest


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """kopf's Events, captured (kopf.event needs a running operator otherwise)."""
    posted: list[dict[str, str]] = []

    def record(body: Any, *, type: str, reason: str, message: str = "") -> None:
        posted.append({"type": type, "reason": reason, "message": message})

    monkeypatch.setattr(kopf, "event", record)
    monkeypatch.setattr(kopf, "warn", lambda body, **kw: record(body, type="Warning", **kw))
    return posted
