"""``ragruntime keys create|list|rotate|revoke|hash``: API keys from the command line.

Works on the metadata database named by ``RAGFLOW_DATABASE_URL`` (or the embedded SQLite file
in ``RAGFLOW_DATA_DIR``), through the use cases the API routes in ``ragruntime.api.routes.keys``
call (``ragruntime.services.keys``). A created or rotated key is printed once on stdout
(``--json`` for scripts) and never stored. ``hash`` reads a key on stdin and prints the
``sha256:`` digest a Secret may hold instead of the key. Every change is audited (stderr, plus
``RAGFLOW_AUDIT_FILE``). Registered by ``ragruntime.cli``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ragruntime.config import Settings
from ragruntime.errors import RuntimeServiceError
from ragruntime.security.audit import AuditLog
from ragruntime.security.keys import ApiKey, KeyStore, digest_of
from ragruntime.security.tls import postgres_connect_args
from ragruntime.services import keys as key_service
from ragruntime.store.database import is_postgres
from ragruntime.store.metadata import SqlMetadataStore


def _open(settings: Settings) -> tuple[SqlMetadataStore, KeyStore]:
    url = settings.resolved_database_url()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    args = postgres_connect_args(settings.database_tls()) if is_postgres(url) else None
    metadata = SqlMetadataStore.open(url, args)
    return metadata, KeyStore(metadata.engine)


def _print_issued(args: argparse.Namespace, key: ApiKey, token: str) -> None:
    if args.json:
        print(json.dumps({**key.describe(), "token": token}))
    else:
        print(f"id:    {key.id}\nrole:  {key.role.value}\nkey:   {token}")
        print("The key is shown only once: store it now.", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.keys_command == "hash":
        print("sha256:" + digest_of(sys.stdin.readline().strip()))
        return 0
    settings = Settings()
    audit = AuditLog(file=settings.audit_file, stream=sys.stderr)
    metadata, store = _open(settings)
    fields: dict[str, Any] = {"interface": "cli"}
    try:
        if args.keys_command == "create":
            fields.update(action="create_key", role=args.role)
            issued = key_service.issue(
                store, name=args.name, role=args.role, dataset_ids=args.dataset or None
            )
            fields["new_key_id"] = issued.key.id
            _print_issued(args, issued.key, issued.token)
        elif args.keys_command == "rotate":
            fields.update(action="rotate_key", target_key_id=args.key_id)
            grace = settings.auth_rotation_grace_seconds if args.grace is None else args.grace
            issued = key_service.rotate(store, args.key_id, grace)
            fields["new_key_id"] = issued.key.id
            _print_issued(args, issued.key, issued.token)
        elif args.keys_command == "revoke":
            fields.update(action="revoke_key", target_key_id=args.key_id)
            key_service.revoke(store, args.key_id)
            print(f"revoked {args.key_id}")
        else:
            listed = [k.describe() for k in key_service.listed(store, include_inactive=args.all)]
            print(json.dumps(listed, indent=2))
            return 0
        audit.record("configuration", "success", **fields)
        return 0
    except RuntimeServiceError as exc:
        audit.record("configuration", "failure", **fields, error=exc.message)
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        audit.close()
        metadata.close()


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="create, list, rotate and revoke API keys")
    commands = keys.add_subparsers(dest="keys_command", required=True)
    create = commands.add_parser("create", help="create a key (printed once)")
    create.add_argument("--role", required=True, choices=["admin", "editor", "viewer"])
    create.add_argument("--name", help="a label (default <role>-key)")
    create.add_argument(
        "--dataset", action="append", help="limit the key to this dataset id (repeatable)"
    )
    create.add_argument("--json", action="store_true", help="print one JSON object")
    listing = commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--all", action="store_true", help="include revoked and expired keys")
    rotate = commands.add_parser("rotate", help="replace a key; the old one lives --grace s")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", type=float, help="default RAGFLOW_AUTH_ROTATION_GRACE_SECONDS")
    rotate.add_argument("--json", action="store_true", help="print one JSON object")
    revoke = commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    commands.add_parser("hash", help="print the sha256: digest of the key read on stdin")
    keys.set_defaults(func=run)
