"""Pure comparison of a desired manifest with a live object, tolerant of API server rewrites.

`is_semantic_subset(desired, live)` is True when every field the operator sets has the same
meaning in the live object: quantities are compared by value (`1000m` == `1`), a zero value
(`false`, `0`, `""`, `{}`, `[]`) equals an absent field (the API server drops `omitempty`
zeros), and fields only the server or other controllers set are ignored. Used by apply.py to
decide whether a child drifted; kept free of I/O so it is unit-tested directly.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: Any) -> Decimal | None:
    """The numeric value of a Kubernetes quantity (`500m`, `1Gi`, `2`), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if not match:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number * (Decimal(10) ** _DECIMAL[suffix])
    return number * (Decimal(10) ** int(suffix[1:]))


def _is_zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value in ("", {}, [])


def _scalars_equal(desired: Any, live: Any) -> bool:
    if desired == live and type(desired) is type(live):
        return True
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    left, right = parse_quantity(desired), parse_quantity(live)
    return left is not None and right is not None and left == right


def is_semantic_subset(desired: Any, live: Any) -> bool:
    """True when `live` already carries everything `desired` says (see module docstring)."""
    if live is None:
        return _is_zero(desired)
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(is_semantic_subset(value, live.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_semantic_subset(d, lv) for d, lv in zip(desired, live, strict=True))
    return _scalars_equal(desired, live)
