"""PostgreSQL helpers for snapshot and restore: pg_dump/pg_restore with credentials in the
environment (never on the command line, where ``ps`` would show them), and URL redaction.

Called by ``snapshot`` (dump) and ``sink`` (restore).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ragflow_contract.environment import DATABASE_TLS
from ragruntime.backup import redact
from ragruntime.security.tls import TlsFiles, postgres_connect_args
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
    # The runtime's TLS settings (ragruntime.security.tls) apply to the dump tools too.
    for setting, variable in (
        (DATABASE_TLS.ca, "PGSSLROOTCERT"),
        (DATABASE_TLS.cert, "PGSSLCERT"),
        (DATABASE_TLS.key, "PGSSLKEY"),
    ):
        if env.get(setting):
            env[variable] = env[setting]
    if env.get(DATABASE_TLS.ca):
        env["PGSSLMODE"] = "verify-full"
    return env


def tls_connect_args() -> dict[str, Any]:
    """psycopg arguments from the runtime's RAGFLOW_DATABASE_TLS_* (verify-full), or none."""
    tls = TlsFiles(
        os.environ.get(DATABASE_TLS.ca, ""),
        os.environ.get(DATABASE_TLS.cert, ""),
        os.environ.get(DATABASE_TLS.key, ""),
    )
    return postgres_connect_args(tls)


def engine(url: str) -> sa.Engine:
    """A pool-less engine for one backup or restore step, verified TLS when configured."""
    return sa.create_engine(
        sqlalchemy_url(url), poolclass=sa.pool.NullPool, connect_args=tls_connect_args()
    )


def run(args: Sequence[str], url: str, timeout: float = 3600) -> None:
    """Run a PostgreSQL client tool against ``url``; errors carry stderr, never the password."""
    result = subprocess.run(
        list(args), env=libpq_env(url), capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")[-1000:]
        raise PgToolError(f"{args[0]} exited with {result.returncode}: {stderr.strip()}")
