"""The kopf layer. Each module listed in HANDLER_MODULES has `register(registry, settings)`.

To plug a kind into the operator, write its handlers in a module with such a `register` and add
ONE line to HANDLER_MODULES; `ragflow-operator run` (cli.py) reads the settings once and
registers them all through `register_handlers()`. lifecycle.py (startup settings, probes, the
shared settings/client/capabilities in kopf's `memo`) is always first. Nothing registers on
import, so a module can be imported (tests, `render`) without touching kopf's registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import kopf

from ragflow_operator.settings import OperatorSettings

LIFECYCLE = "ragflow_operator.handlers.lifecycle"
HANDLER_MODULES: tuple[str, ...] = (
    LIFECYCLE,
    "ragflow_operator.handlers.cluster",
    "ragflow_operator.handlers.alert_policy",
    "ragflow_operator.handlers.backup_policy",
)


def register_handlers(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    modules: Iterable[str] = HANDLER_MODULES,
) -> None:
    """Register the handlers of `modules` (lifecycle's always, first) into `registry`."""
    wanted = [LIFECYCLE, *(m for m in modules if m != LIFECYCLE)]
    for name in wanted:
        importlib.import_module(name).register(registry, settings)
