"""``ragruntime keys``: create (shown once), list, rotate, revoke, hash; all audited."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ragruntime.cli import main
from ragruntime.config import Settings
from ragruntime.security.keys import KeyStore, digest_of
from ragruntime.store.database import create_engine


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_cli_lifecycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAGFLOW_AUDIT_FILE", str(tmp_path / "audit.jsonl"))
    code, out, _ = run(capsys, "keys", "create", "--role", "viewer", "--dataset", "d1", "--json")
    created = json.loads(out)
    assert code == 0 and created["role"] == "viewer" and created["dataset_ids"] == ["d1"]
    store = KeyStore(create_engine(Settings().resolved_database_url()))
    assert store.authenticate(created["token"]) is not None

    code, out, _ = run(capsys, "keys", "list")
    assert code == 0 and created["id"] in out and created["token"] not in out

    code, out, _ = run(capsys, "keys", "rotate", created["id"], "--grace", "0", "--json")
    rotated = json.loads(out)
    assert store.authenticate(created["token"]) is None
    assert store.authenticate(rotated["token"]) is not None

    assert run(capsys, "keys", "revoke", rotated["id"])[0] == 0
    assert store.authenticate(rotated["token"]) is None
    code, _, err = run(capsys, "keys", "revoke", "no-such-id")
    assert code == 2 and "No API key" in err

    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["action"] for e in audit] == ["create_key", "rotate_key", "revoke_key", "revoke_key"]
    assert [e["outcome"] for e in audit][-1] == "failure"
    text = (tmp_path / "audit.jsonl").read_text()
    assert created["token"] not in text and rotated["token"] not in text
    store.engine.dispose()


def test_keys_cli_hash_prints_the_digest_a_secret_may_hold(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("my-key\n"))
    code, out, _ = run(capsys, "keys", "hash")
    assert code == 0 and out.strip() == "sha256:" + digest_of("my-key")
