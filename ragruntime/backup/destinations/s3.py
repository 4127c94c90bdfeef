"""Amazon S3 (and S3-compatible stores such as MinIO or moto) destination, via boto3.

Built by ``factory`` from a destination's ``s3`` block. boto3's own retries are switched off:
``retry.RetryingDestination`` owns retrying, so every provider backs off the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ragruntime.backup.destinations.base import DestinationError, NotFound, ObjectInfo, join
from ragruntime.backup.redact import redact_text, redact_url

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_PERMANENT = {
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
    "AllAccessDisabled",
}


def etag_md5(etag: object) -> str:
    """The MD5 hex of a single-part object's ETag; '' for multipart or unknown ETags."""
    text = str(etag or "").strip('"').lower()
    return text if len(text) == 32 and "-" not in text else ""


class S3Destination:
    def __init__(
        self,
        name: str,
        *,
        bucket: str,
        prefix: str,
        region: str = "",
        endpoint: str = "",
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        creds = credentials or {}
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or "us-east-1",
            aws_access_key_id=creds.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=creds.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=creds.get("AWS_SESSION_TOKEN"),
            config=Config(
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                s3={"addressing_style": "path"} if endpoint else None,
            ),
        )

    def describe(self) -> str:
        where = f" via {redact_url(self.endpoint)}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def _key(self, key: str) -> str:
        return join(self.prefix, key)

    def _error(self, op: str, key: str, exc: Exception) -> DestinationError:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                return NotFound(f"{key} not found on {self.name}")
            permanent = code in _PERMANENT
            return DestinationError(f"s3 {op} {key} on {self.name}: {code}", permanent=permanent)
        detail = redact_text(f"{type(exc).__name__}: {exc}")
        return DestinationError(f"s3 {op} {key} on {self.name}: {detail}")

    def put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise self._error("put", key, exc) from None

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return bytes(response["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise self._error("get", key, exc) from None

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            error = self._error("stat", key, exc)
            if isinstance(error, NotFound):
                return None
            raise error from None
        return ObjectInfo(key, int(head["ContentLength"]), etag_md5(head.get("ETag")))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = join(self.prefix, "")
        strip = len(base) + 1 if base else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket,
                Prefix=join(self.prefix, prefix) + ("/" if prefix.endswith("/") else ""),
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        str(item["Key"])[strip:], int(item["Size"]), etag_md5(item.get("ETag"))
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", prefix, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error("delete", key, exc) from None
