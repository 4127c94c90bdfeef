"""The standby use case: what ``GET /api/v1/standby`` reports.

The state is what ``ragruntime standby sync`` recorded in the metadata database
(``ragruntime.store.standby``); ``enabled`` is this process's ``RAGFLOW_STANDBY``.
"""

from __future__ import annotations

from typing import Any

from ragruntime.runtime import Runtime
from ragruntime.store import standby as standby_state


def describe(runtime: Runtime, enabled: bool) -> dict[str, Any]:
    """The served backup, its lag, the last pass and the counters (empty if never a standby)."""
    recorded = standby_state.read_state(runtime.metadata.engine)
    if recorded is None:
        return {**standby_state.EMPTY_API, "standby": enabled}
    return recorded.to_api(enabled)


def primary(runtime: Runtime) -> str | None:
    """The primary this cluster follows, or followed before it was promoted."""
    recorded = standby_state.read_state(runtime.metadata.engine)
    return recorded.primary_cluster if recorded else None
