"""The kopf layer. Importing a module listed in HANDLER_MODULES registers its handlers.

To plug a kind into the operator, add ONE line with its handler module to HANDLER_MODULES;
`ragflow-operator run` (cli.py) imports them all through `load_handlers()`. lifecycle.py (startup
settings, probes, shared client/capabilities in kopf's `memo`) is always first.
"""

from __future__ import annotations

import importlib

HANDLER_MODULES: tuple[str, ...] = (
    "ragflow_operator.handlers.lifecycle",
    "ragflow_operator.handlers.cluster",
    "ragflow_operator.handlers.alert_policy",
    "ragflow_operator.handlers.backup_policy",
)


def load_handlers() -> None:
    """Import every handler module (kopf registers decorated functions on import)."""
    for module in HANDLER_MODULES:
        importlib.import_module(module)
