"""CLI sub-commands and settings: roles, URL defaults, the backup hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragruntime.cli import build_parser
from ragruntime.config import Role, Settings


def test_serve_accepts_each_role_and_rejects_others() -> None:
    for role in ("api", "worker", "all"):
        assert build_parser().parse_args(["serve", "--role", role]).role == role
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--role", "bogus"])


def test_backup_commands_come_from_the_backup_package_hook() -> None:
    args = build_parser().parse_args(["backup", "list"])
    assert (args.command, args.backup_command) == ("backup", "list")


def test_settings_default_to_embedded_files_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAGFLOW_ROLE", "worker")
    settings = Settings()
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve()}/ragflow.db"
    assert settings.resolved_vector_uri() == str(tmp_path.resolve() / "milvus.db")
    assert settings.role == Role.WORKER and settings.runs_worker and not settings.runs_api


def test_explicit_urls_select_cluster_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGFLOW_DATABASE_URL", "postgresql://u@db:5432/rag")
    monkeypatch.setenv("RAGFLOW_VECTOR_URI", "http://milvus:19530")
    settings = Settings()
    assert settings.resolved_database_url().startswith("postgresql://")
    assert settings.resolved_vector_uri() == "http://milvus:19530"
