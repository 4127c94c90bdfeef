"""Secrets in URLs never leave the backup tools: user info, tokens and query parameters."""

from __future__ import annotations

import json

import pytest

from ragruntime.backup.redact import redact_text, redact_url
from ragruntime.backup.snapshot import configuration_json
from ragruntime.config import Settings


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        (
            "postgresql://u:pw@h:5432/db?sslmode=require",
            "postgresql://u:***@h:5432/db?sslmode=require",
        ),
        ("rediss://TOKEN@cache:6380/0", "rediss://***@cache:6380/0"),
        ("redis://cache:6379/0?password=hunter2&db=1", "redis://cache:6379/0?password=***&db=1"),
        ("http://milvus:19530?token=root:Milvus", "http://milvus:19530?token=***"),
        (
            "postgresql+psycopg://a:b@h/db?password=c",
            "postgresql+psycopg://a:***@h/db?password=***",
        ),
        ("sqlite:////data/ragflow.db", "sqlite:////data/ragflow.db"),
        ("./milvus.db", "./milvus.db"),
    ],
)
def test_urls_lose_their_secrets(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_urls_inside_messages_are_redacted() -> None:
    text = "cannot reach rediss://TOKEN@cache:6380/0 (via http://x?sig=abc): refused"
    assert (
        redact_text(text)
        == "cannot reach rediss://***@cache:6380/0 (via http://x?sig=***): refused"
    )


def test_the_backed_up_configuration_holds_no_url_secret(tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://ragflow:dbsecret@db:5432/ragflow?password=qsecret",
        cache_url="rediss://cachetoken@cache:6380/0",
        vector_uri="http://milvus:19530?token=vectoken",
    )
    text = configuration_json(settings).decode()
    for secret in ("dbsecret", "qsecret", "cachetoken", "vectoken"):
        assert secret not in text
    raw = json.loads(text)
    assert raw["cache_url"] == "rediss://***@cache:6380/0"
