"""Pure status editing in the shape of metav1.Condition, shared by every kind.

Every kind builds the status it wants from the current one with a `StatusEditor` (its `set`
edits one condition), then `status_patch` gives a merge patch only when something really
changed, so a reconcile that changes nothing writes nothing. `lastTransitionTime` moves only when
a condition's status changes. No I/O here; `now` is passed in.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"
MESSAGE_MAX_CHARS = 1000  # a condition's message is cut here (API server errors can be long)


class Condition(TypedDict):
    type: str
    status: str
    reason: str
    message: str
    observedGeneration: int
    lastTransitionTime: str


def timestamp(now: datetime) -> str:
    """RFC 3339 UTC timestamp with second precision, as Kubernetes writes them."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_condition(conditions: list[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """The condition of the given type, or None."""
    for condition in conditions:
        if condition.get("type") == type_:
            return condition
    return None


def set_condition(
    conditions: list[dict[str, Any]],
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Return a new condition list with `type_` set; other conditions and the order are kept.

    The transition time is copied from the existing condition unless `status` changed.
    """
    result = [dict(c) for c in conditions]
    new: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": timestamp(now),
    }
    for index, existing in enumerate(result):
        if existing.get("type") == type_:
            if existing.get("status") == status and existing.get("lastTransitionTime"):
                new["lastTransitionTime"] = existing["lastTransitionTime"]
            result[index] = new
            return result
    result.append(new)
    return result


def state(ok: bool | None) -> str:
    """A condition status from a yes / no / don't-know answer."""
    return UNKNOWN if ok is None else (TRUE if ok else FALSE)


class StatusEditor:
    """The status one reconcile wants, started from the current one.

    ``observedGeneration`` is the reconciled generation; the current conditions are kept until
    ``set`` (or ``remove``) edits them; the other current fields are kept too unless
    ``keep_fields`` is false (a kind that rebuilds them on every pass). ``status`` is the
    result, for `status_patch`.
    """

    def __init__(
        self,
        generation: int,
        current: Mapping[str, Any],
        now: datetime,
        *,
        keep_fields: bool = True,
    ) -> None:
        self.generation, self.now = generation, now
        fields = {k: v for k, v in current.items() if k != "conditions"} if keep_fields else {}
        self.status: dict[str, Any] = copy.deepcopy(fields)
        self.status["observedGeneration"] = generation
        self.status["conditions"] = [dict(c) for c in current.get("conditions") or []]

    def set(self, type_: str, status: str, reason: str, message: str) -> None:
        self.status["conditions"] = set_condition(
            self.status["conditions"],
            type_=type_,
            status=status,
            reason=reason,
            message=message[:MESSAGE_MAX_CHARS],
            generation=self.generation,
            now=self.now,
        )

    def remove(self, type_: str) -> None:
        self.status["conditions"] = [c for c in self.status["conditions"] if c.get("type") != type_]


def is_true(conditions: list[Mapping[str, Any]], type_: str) -> bool:
    condition = find_condition(conditions, type_)
    return bool(condition and condition.get("status") == TRUE)


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch turning `current` status into `desired` status, or None if equal.

    Only the top-level keys of `desired` are compared (others, written by other controllers
    such as `lastBackup`, are left alone); within an object value, keys `desired` drops are
    removed. `conditions` is replaced as a whole list, which a merge patch does anyway.
    """
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if current.get(key) != value:
            patch[key] = _merge_value(current.get(key), value)
    return patch or None


def _merge_value(current: Any, desired: Any) -> Any:
    """Merge-patch value turning `current` into `desired`; inside an object we own (such as
    `standby`), keys `desired` no longer has are removed (null), since a merge patch would
    otherwise keep them and the status would never equal the desired one."""
    if not (isinstance(current, Mapping) and isinstance(desired, Mapping)):
        return copy.deepcopy(desired)
    result: dict[str, Any] = {key: None for key in current if key not in desired}
    for key, value in desired.items():
        if current.get(key) != value:
            result[key] = _merge_value(current.get(key), value)
    return result
