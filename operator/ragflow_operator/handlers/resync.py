"""One operator-wide resync pass per kind, instead of a kopf timer per object.

A kopf timer keeps, for every object and for the object's whole life, a task, the object's
latest body and the timer's own state: 35 KiB and more per RagFlowCluster, most of what the
operator grew per cluster (docs/operator.md). A `ResyncPass` keeps per object only its
(namespace, name), taken from the kind's watch events (which kopf receives anyway) and, after
a transient failure, its back-off. Every `interval` seconds one loop walks these keys, reads
each object fresh and runs the kind's level-based `check` on it: `concurrency` at a time,
their starts spread over half the interval, so neither memory nor API load comes in bursts.
A pass that outlasts the interval is followed by the next one half an interval after it ends.

- `due(namespace, name, memo)` lets a kind skip an object it reconciled a moment ago (before
  the read). A deleted object, or one being deleted, is skipped (and a key whose object is
  gone, its DELETED event missed, is dropped).
- Not a kopf index (`@kopf.index`): with indexes, kopf holds every object's handlers until
  all objects are indexed, and with `queueing.worker_limit` (lifecycle.tune_kopf) the objects beyond
  the limit can never get a worker to be indexed: more objects than the limit at startup
  would stall the operator for good.
- A transient failure (outcome.classify) retries that object alone, backing off 5 s, 10 s,
  ... 300 s (outcome.backoff), as kopf's TemporaryError did for the timers; any other failure
  was reported by the check itself (Ready=False and an Event) and is logged; the next pass
  tries again.
- Events: kopf.event reaches kopf's poster only from the context kopf gives its resource
  handlers (the startup context has none), so the loop is started by the first watch event
  and inherits that context; the startup handler records the operator's memo, and the cleanup
  handler stops the loop.
Used by handlers/cluster.py, handlers/backup_policy.py and handlers/alert_policy.py through
`ResyncPass(...).register(registry, resource)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from ragflow_operator.handlers import outcome
from ragflow_operator.k8s import KubeClient, ObjectRef

logger = logging.getLogger(__name__)
Key = tuple[str, str]
#: One object's level-based check, on a body just read; a transient failure raises.
Check = Callable[[Mapping[str, Any], kopf.Memo], None]
#: Whether an object needs its check in this pass (False: it was reconciled a moment ago).
Due = Callable[[str, str, kopf.Memo], bool]


@dataclass(frozen=True)
class _Retry:
    """An object whose last check failed transiently: how often, and when to try again."""

    attempts: int
    at: float


class ResyncPass:
    """The periodic level-based check of every object of one kind (see the module docstring)."""

    def __init__(
        self,
        *,
        api_version: str,
        kind: str,
        check: Check,
        interval: float,
        concurrency: int,
        due: Due | None = None,
        backoff: Callable[[int], float] = outcome.backoff,
    ) -> None:
        self.api_version = api_version
        self.kind = kind
        self.check = check
        self.interval = interval
        self.concurrency = max(1, concurrency)
        self.due = due
        self.backoff = backoff
        #: The prefix of the ids of its kopf handlers.
        self.handler_id = f"resync_{kind.lower()}"
        self.memo: kopf.Memo | None = None
        #: (namespace, name) of every object of the kind, from the watch events.
        self.keys: set[Key] = set()
        self.retries: dict[Key, _Retry] = {}
        self.task: asyncio.Task[None] | None = None

    def register(self, registry: kopf.OperatorRegistry, resource: tuple[str, str, str]) -> None:
        """The watch-event handler that tracks the kind's objects, and the loop's startup and
        cleanup handlers."""
        kopf.on.event(*resource, registry=registry, id=self.handler_id)(self.observe)
        kopf.on.startup(registry=registry, id=f"{self.handler_id}_start")(self.start)
        kopf.on.cleanup(registry=registry, id=f"{self.handler_id}_stop")(self.stop)

    # --- kopf handlers -------------------------------------------------------------------------
    async def start(self, memo: kopf.Memo, **_: Any) -> None:
        """Operator startup: the operator-wide memo the checks get."""
        self.memo = memo

    async def observe(
        self, event: Mapping[str, Any], namespace: str | None, name: str, **_: Any
    ) -> None:
        """Each watch event of the kind: track its key; the first one starts the loop."""
        key = (namespace or "", name)  # every kind of this operator is namespaced
        if event.get("type") == "DELETED":
            self.keys.discard(key)
        else:
            self.keys.add(key)
        if self.task is None:
            # created here, in kopf's per-object context, so the loop's checks can post Events
            self.task = asyncio.create_task(self.run_forever(), name=f"resync {self.kind}")

    async def stop(self, **_: Any) -> None:
        """Operator cleanup: stop the loop (a check already running in a thread finishes)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    # --- the loop ------------------------------------------------------------------------------
    async def run_forever(self) -> None:
        """A pass every interval; in between, the retries that fall due."""
        next_pass = time.monotonic() + self.interval
        while True:
            wake = min([next_pass, *(retry.at for retry in self.retries.values())])
            await asyncio.sleep(max(0.0, wake - time.monotonic()))
            started = time.monotonic()
            try:
                if started >= next_pass:
                    await self.run_pass()
                else:
                    await self.run_retries()
            except Exception:  # a bug of ours must not end the resync, nor make it spin
                logger.exception("resync pass failed", extra={"kind": self.kind})
                self.retries.clear()
            if started >= next_pass:
                next_pass = max(started + self.interval, time.monotonic() + self.interval / 2)

    async def run_pass(self) -> None:
        """Check every indexed object once (those `due` says are not due are skipped)."""
        keys = list(self.keys)
        live = set(keys)
        for gone in [key for key in self.retries if key not in live]:
            del self.retries[gone]
        spacing = self.interval / 2 / max(1, len(keys))
        await self._check_all(keys, spacing)

    async def run_retries(self) -> None:
        """Check again the objects whose back-off is over."""
        now = time.monotonic()
        await self._check_all([key for key, r in self.retries.items() if r.at <= now], 0.0)

    async def _check_all(self, keys: list[Key], spacing: float) -> None:
        started = time.monotonic()
        queue = iter(enumerate(keys))  # shared by the workers: each key is taken once

        async def worker() -> None:
            for position, key in queue:
                if self._skip(key):
                    continue
                await asyncio.sleep(max(0.0, started + position * spacing - time.monotonic()))
                await self.check_one(key)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(keys)))))

    def _skip(self, key: Key) -> bool:
        if self.due is None or key in self.retries:
            return False
        assert self.memo is not None, "the startup handler records the memo first"
        return not self.due(key[0], key[1], self.memo)

    async def check_one(self, key: Key) -> None:
        """Read the object and run its check in a thread; record a transient failure's retry."""
        try:
            if not await asyncio.to_thread(self._read_and_check, key):
                self.keys.discard(key)  # gone, and its DELETED event was missed
        except Exception as exc:
            failure = outcome.classify(exc)
            if not failure.transient:
                # only the status write itself can get here: the next pass tries again
                logger.warning(
                    "resync failed",
                    extra={"kind": self.kind, "object": "/".join(key), "error": failure.message},
                )
            else:
                attempts = self.retries[key].attempts if key in self.retries else 0
                delay = self.backoff(attempts)
                self.retries[key] = _Retry(attempts + 1, time.monotonic() + delay)
                logger.info(
                    "resync will retry",
                    extra={"kind": self.kind, "object": "/".join(key), "delay": delay},
                )
                return
        self.retries.pop(key, None)

    def _read_and_check(self, key: Key) -> bool:
        """Run the check on the object as it is now; False when it no longer exists."""
        assert self.memo is not None, "the startup handler records the memo first"
        client: KubeClient = self.memo.client
        body = client.get(ObjectRef(self.api_version, self.kind, *key))
        if body is None:
            return False
        if not body["metadata"].get("deletionTimestamp"):
            self.check(body, self.memo)
        return True
