"""The key store, keys from mounted Secrets (rotation with a grace period), TLS arguments."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from ragruntime.errors import InvalidArgument
from ragruntime.security.keys import KeyStore, digest_of
from ragruntime.security.roles import AccessRole
from ragruntime.security.sources import KeySync, read_role_dir
from ragruntime.security.tls import (
    TlsFiles,
    milvus_connection,
    postgres_connect_args,
    redis_connection,
)
from ragruntime.store.database import create_engine
from ragruntime.store.schema import api_keys


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(create_engine(f"sqlite:///{tmp_path / 'keys.db'}"))


def stored_text(store: KeyStore) -> str:
    with store.engine.connect() as conn:
        return repr([tuple(r) for r in conn.execute(sa.select(api_keys))])


def test_only_the_digest_is_stored_and_a_digest_is_not_a_key(store: KeyStore) -> None:
    issued = store.create(name="ci", role=AccessRole.EDITOR)
    assert issued.token not in stored_text(store)
    assert hashlib.sha256(issued.token.encode()).hexdigest() in stored_text(store)
    assert store.authenticate(issued.token) == issued.key
    assert store.authenticate("sha256:" + digest_of(issued.token)) is None
    assert store.authenticate(issued.token + "x") is None


def test_secret_rotation_keeps_the_old_key_for_the_grace_period(
    store: KeyStore, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    (keys_dir / "viewer").mkdir(parents=True)
    (keys_dir / "viewer" / "api-key").write_text("old-viewer-key\n")
    (keys_dir / "viewer" / "..data").mkdir()  # kubelet's bookkeeping is not a key
    sync = KeySync(store, env_key="", keys_dir=keys_dir, grace_seconds=3600)
    sync.run_once()
    old = store.authenticate("old-viewer-key")
    assert old is not None and old.role == AccessRole.VIEWER and old.source == "secret:viewer"

    (keys_dir / "viewer" / "api-key").write_text("new-viewer-key")
    results = sync.run_once()
    assert store.authenticate("new-viewer-key") is not None
    still = store.authenticate("old-viewer-key")
    assert still is not None and still.expires_at_ms is not None  # both valid meanwhile
    assert [r.expiring for r in results if r.source == "secret:viewer"] == [(old.id,)]

    sync.grace_seconds = 0
    (keys_dir / "viewer" / "api-key").write_text("newest-viewer-key")
    sync.run_once()
    assert store.authenticate("new-viewer-key") is None  # no grace: gone at once
    assert store.authenticate("newest-viewer-key") is not None


def test_a_secret_may_hold_only_the_digest(store: KeyStore, tmp_path: Path) -> None:
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "ops").write_text("sha256:" + digest_of("held-by-ops-only"))
    (tmp_path / "admin" / "broken").write_text("sha256:xyz")
    assert list(read_role_dir(tmp_path / "admin").values()) == ["ops"]
    KeySync(store, env_key="", keys_dir=tmp_path, grace_seconds=0).run_once()
    key = store.authenticate("held-by-ops-only")
    assert key is not None and key.role == AccessRole.ADMIN and key.name == "ops"


def test_the_env_key_is_an_admin_key_and_a_changed_one_expires_after_grace(
    store: KeyStore,
) -> None:
    KeySync(store, env_key="first", keys_dir=None, grace_seconds=3600).run_once()
    first = store.authenticate("first")
    assert first is not None and first.role == AccessRole.ADMIN and first.source == "env"
    KeySync(store, env_key="second", keys_dir=None, grace_seconds=0).run_once()
    assert store.authenticate("first") is None and store.authenticate("second") is not None


def test_revoked_keys_stay_revoked_when_their_secret_still_has_them(
    store: KeyStore, tmp_path: Path
) -> None:
    (tmp_path / "editor").mkdir()
    (tmp_path / "editor" / "k").write_text("editor-key")
    sync = KeySync(store, env_key="", keys_dir=tmp_path, grace_seconds=0)
    sync.run_once()
    key = store.authenticate("editor-key")
    assert key is not None
    store.revoke(key.id)
    sync.run_once()
    assert store.authenticate("editor-key") is None


def test_api_keys_rotate_but_secret_keys_rotate_through_their_secret(
    store: KeyStore, tmp_path: Path
) -> None:
    issued = store.create(name="app", role=AccessRole.VIEWER, dataset_ids=["d1"])
    rotated = store.rotate(issued.key.id, grace_seconds=60)
    assert rotated.key.dataset_ids == ("d1",) and rotated.key.role == AccessRole.VIEWER
    assert store.authenticate(issued.token) is not None  # grace
    assert store.authenticate(rotated.token) is not None
    KeySync(store, env_key="boot", keys_dir=None, grace_seconds=0).run_once()
    env_key = store.authenticate("boot")
    assert env_key is not None
    with pytest.raises(InvalidArgument, match="Secret"):
        store.rotate(env_key.id, grace_seconds=0)


def test_tls_arguments_verify_the_server() -> None:
    assert postgres_connect_args(TlsFiles()) == {}
    assert redis_connection("redis://h:6379/0", TlsFiles()) == ("redis://h:6379/0", {})
    with pytest.raises(InvalidArgument, match="does not exist"):
        postgres_connect_args(TlsFiles(ca="/no/such/ca.crt"))
    with pytest.raises(InvalidArgument, match="both"):
        TlsFiles(ca=__file__, cert=__file__).check("database TLS")


def test_tls_arguments_name_the_files(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.crt", "tls.crt", "tls.key"))
    for path in (ca, cert, key):
        path.write_text("pem")
    files = TlsFiles(str(ca), str(cert), str(key), "milvus.internal")
    assert postgres_connect_args(files) == {
        "sslmode": "verify-full",
        "sslrootcert": str(ca),
        "sslcert": str(cert),
        "sslkey": str(key),
    }
    url, kwargs = redis_connection("redis://:pw@h:6379/0", files)
    assert url == "rediss://:pw@h:6379/0" and kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True and kwargs["ssl_ca_certs"] == str(ca)
    uri, kwargs = milvus_connection("http://m:19530", files)
    assert uri == "https://m:19530" and kwargs["secure"] is True
    assert kwargs["ca_pem_path"] == str(ca) and kwargs["server_name"] == "milvus.internal"
    uri, kwargs = milvus_connection("http://m:19530", TlsFiles(str(ca)))
    assert kwargs == {"secure": True, "server_pem_path": str(ca)}
    with pytest.raises(InvalidArgument, match="server URI"):
        milvus_connection("/data/milvus.db", TlsFiles(str(ca)))


def test_backup_dump_tools_verify_the_database_like_the_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ragruntime.backup.pg import libpq_env

    monkeypatch.setenv("RAGFLOW_DATABASE_TLS_CA", __file__)  # any existing file
    env = libpq_env("postgresql://u:p@db:5432/rag?sslmode=require")
    assert env["PGSSLMODE"] == "verify-full" and env["PGSSLROOTCERT"] == __file__
    assert "PGSSLCERT" not in env
    from ragruntime.backup.pg import tls_connect_args

    assert tls_connect_args()["sslmode"] == "verify-full"
    monkeypatch.delenv("RAGFLOW_DATABASE_TLS_CA")
    assert tls_connect_args() == {}


def test_a_missing_tls_file_is_named_in_the_startup_retry_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import time
    from types import SimpleNamespace

    from fastapi.testclient import TestClient

    from ragruntime.app import create_app
    from ragruntime.config import Settings

    settings = Settings(
        data_dir=tmp_path,
        api_key="k",
        database_url="postgresql://u:pw-never-logged@127.0.0.1:1/db",
        database_tls_ca="/no/such/ca.crt",
    )
    app = create_app(settings, embedder=SimpleNamespace(dimension=8))  # type: ignore[arg-type]
    with caplog.at_level("WARNING"), TestClient(app):
        deadline = time.monotonic() + 10
        while not any("opening the stores" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    record = next(r for r in caplog.records if "opening the stores" in r.getMessage())
    assert "/no/such/ca.crt does not exist" in record.reason  # type: ignore[attr-defined]
    assert "pw-never-logged" not in caplog.text


def test_a_key_moved_to_another_role_secret_takes_that_role(
    store: KeyStore, tmp_path: Path
) -> None:
    for role in ("viewer", "editor"):
        (tmp_path / role).mkdir()
    (tmp_path / "viewer" / "bot").write_text("promoted-key")
    sync = KeySync(store, env_key="", keys_dir=tmp_path, grace_seconds=3600)
    sync.run_once()
    (tmp_path / "viewer" / "bot").unlink()
    (tmp_path / "editor" / "bot").write_text("promoted-key")
    sync.run_once()  # editor is synced before viewer drops it: still the viewer's for now
    sync.run_once()
    key = store.authenticate("promoted-key")
    assert key is not None and key.role == AccessRole.EDITOR and key.source == "secret:editor"
    assert key.expires_at_ms is None
