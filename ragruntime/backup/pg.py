"""PostgreSQL helpers for snapshot and restore: pg_dump/pg_restore with credentials in the
environment (never on the command line, where ``ps`` would show them), and URL redaction.

Called by ``snapshot`` (dump) and ``sink`` (restore).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from sqlalchemy.engine import make_url

from ragruntime.backup import redact
from ragruntime.store.database import normalise_url


class PgToolError(Exception):
    """pg_dump or pg_restore failed; the message carries its stderr (which has no password)."""


def sqlalchemy_url(url: str) -> str:
    return normalise_url(url)


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db`` (see ``redact``)."""
    return redact.redact_url(url)


def libpq_env(url: str) -> dict[str, str]:
    parsed = make_url(normalise_url(url))
    env = dict(os.environ)
    values = {
        "PGHOST": parsed.host,
        "PGPORT": str(parsed.port) if parsed.port else None,
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
    }
    env.update({k: v for k, v in values.items() if v})
    sslmode = parsed.query.get("sslmode")
    if isinstance(sslmode, str):
        env["PGSSLMODE"] = sslmode
    return env


def run(args: Sequence[str], url: str, timeout: float = 3600) -> None:
    """Run a PostgreSQL client tool against ``url``; errors carry stderr, never the password."""
    result = subprocess.run(
        list(args), env=libpq_env(url), capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")[-1000:]
        raise PgToolError(f"{args[0]} exited with {result.returncode}: {stderr.strip()}")
