"""The operator's own settings: read from the environment once, when `run` starts.

`OperatorSettings.from_environment()` is called by cli.py (and by the e2e tests' in-process
operator); the frozen result is passed to every handler module's `register` (handlers/) and
installed in kopf's `memo` by the startup handler, so no module reads the environment on
import. Each variable is documented in docs/operator.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_RESYNC = "RAGFLOW_OPERATOR_RESYNC_SECONDS"
ENV_WORKERS = "RAGFLOW_OPERATOR_WORKERS"
ENV_OBJECT_WORKERS = "RAGFLOW_OPERATOR_OBJECT_WORKERS"


@dataclass(frozen=True)
class OperatorSettings:
    """Knobs of one operator process."""

    #: Seconds between level-based checks of every object (drift repair, missing references).
    #: 60s keeps a few hundred clusters cheap; tests lower it.
    resync_seconds: float = 60.0
    #: Threads running sync handlers; each reconcile is a few dozen short API calls.
    workers: int = 16
    #: Objects of one watched kind processed at once (kopf's `queueing.worker_limit`). Beyond
    #: it kopf stops reading that watch until a worker is free, so a burst of creations
    #: waits in the API server instead of as decoded bodies in the operator's memory.
    object_workers: int = 32

    @property
    def resync_concurrency(self) -> int:
        """Objects the resync pass of one kind checks at once (handlers/resync.py): a quarter
        of the handler threads, so a pass never crowds out the event handlers."""
        return max(1, self.workers // 4)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> OperatorSettings:
        """Settings from `environ`; a malformed value is an error naming the variable."""
        return cls(
            resync_seconds=_number(environ, ENV_RESYNC, float, cls.resync_seconds),
            workers=int(_number(environ, ENV_WORKERS, int, cls.workers)),
            object_workers=int(_number(environ, ENV_OBJECT_WORKERS, int, cls.object_workers)),
        )


def _number(environ: Mapping[str, str], name: str, kind: type[float], default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be a positive number, not {raw!r}")
    return value
