"""Azure Blob Storage destination, via azure-storage-blob.

Built by ``factory`` from a destination's ``azure`` block. Credentials from the Secret: a
connection string, or an account name with an account key or SAS token. The SDK's own retries are
switched off (``retry_total=0``); ``retry`` owns retrying.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobServiceClient

from ragruntime.backup.destinations.base import DestinationError, NotFound, ObjectInfo, join

_SDK_OPTIONS: dict[str, Any] = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 60}


def service_client(endpoint: str, credentials: Mapping[str, str]) -> BlobServiceClient:
    connection_string = credentials.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string, **_SDK_OPTIONS)
    account = credentials.get("AZURE_STORAGE_ACCOUNT", "")
    url = endpoint or f"https://{account}.blob.core.windows.net"
    key = credentials.get("AZURE_STORAGE_KEY")
    credential: Any = (
        {"account_name": account, "account_key": key}
        if key
        else credentials.get("AZURE_STORAGE_SAS_TOKEN")
    )
    return BlobServiceClient(account_url=url, credential=credential, **_SDK_OPTIONS)


def _md5(properties: object) -> str:
    """Content-MD5 of a blob (set by the service for single-shot uploads); '' when absent."""
    settings = getattr(properties, "content_settings", None)
    digest = getattr(settings, "content_md5", None)
    return bytes(digest).hex() if digest else ""


class AzureDestination:
    def __init__(
        self,
        name: str,
        *,
        container: str,
        prefix: str,
        endpoint: str = "",
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.prefix = prefix
        self.container_name = container
        self.service = service_client(endpoint, credentials or {})
        self.container = self.service.get_container_client(container)

    def describe(self) -> str:
        return f"azure://{self.service.account_name}/{self.container_name}/{self.prefix}"

    def _error(self, op: str, key: str, exc: AzureError) -> DestinationError:
        if isinstance(exc, ResourceNotFoundError):
            if getattr(exc, "error_code", "") == "ContainerNotFound":
                return DestinationError(
                    f"azure {op} on {self.name}: container {self.container_name} not found",
                    permanent=True,
                )
            return NotFound(f"{key} not found on {self.name}")
        permanent = isinstance(exc, ClientAuthenticationError) or (
            isinstance(exc, HttpResponseError) and exc.status_code in (400, 403)
        )
        code = getattr(exc, "error_code", None) or type(exc).__name__
        return DestinationError(f"azure {op} {key} on {self.name}: {code}", permanent=permanent)

    def put(self, key: str, data: bytes) -> None:
        try:
            self.container.upload_blob(join(self.prefix, key), data, overwrite=True)
        except AzureError as exc:
            raise self._error("put", key, exc) from None

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.container.download_blob(join(self.prefix, key)).readall())
        except AzureError as exc:
            raise self._error("get", key, exc) from None

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            props = self.container.get_blob_client(join(self.prefix, key)).get_blob_properties()
        except AzureError as exc:
            error = self._error("stat", key, exc)
            if isinstance(error, NotFound):
                return None
            raise error from None
        return ObjectInfo(key, int(props.size), _md5(props))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = join(self.prefix, "")
        strip = len(base) + 1 if base else 0
        start = join(self.prefix, prefix) + ("/" if prefix.endswith("/") else "")
        try:
            for blob in self.container.list_blobs(name_starts_with=start):
                yield ObjectInfo(blob.name[strip:], int(blob.size), _md5(blob))
        except AzureError as exc:
            raise self._error("list", prefix, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.container.delete_blob(join(self.prefix, key))
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise self._error("delete", key, exc) from None
