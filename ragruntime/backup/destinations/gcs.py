"""Google Cloud Storage destination, via google-cloud-storage.

Built by ``factory`` from a destination's ``gcs`` block. Credentials: a service-account JSON file
from the credentials Secret, or none (workload identity in GKE, anonymous against an emulator
``endpoint``). The library's own retries are switched off; ``retry`` owns retrying.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import requests
from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.oauth2 import service_account
from google.resumable_media.common import DataCorruption

from ragruntime.backup.destinations.base import DestinationError, NotFound, ObjectInfo, join
from ragruntime.backup.redact import redact_url

_TIMEOUT = (5, 60)  # connect, read seconds
_PERMANENT = (
    google_errors.Forbidden,
    google_errors.Unauthorized,
    google_errors.BadRequest,
    GoogleAuthError,
)
# DataCorruption: a download whose bytes fail the server's checksum (damaged at rest or on the
# way); an error of this destination like any other, never a crash of the caller
_ERRORS = (
    google_errors.GoogleAPIError,
    requests.RequestException,
    GoogleAuthError,
    DataCorruption,
)


def _md5(blob: storage.Blob) -> str:
    """GCS reports MD5 base64-encoded; '' when absent (composite objects)."""
    encoded = blob.md5_hash
    return base64.b64decode(encoded).hex() if encoded else ""


class GCSDestination:
    def __init__(
        self,
        name: str,
        *,
        bucket: str,
        prefix: str,
        endpoint: str = "",
        project: str = "",
        service_account_file: str | Path | None = None,
    ) -> None:
        self.name = name
        self.prefix = prefix
        self.endpoint = endpoint
        self.bucket_name = bucket
        options = {"api_endpoint": endpoint} if endpoint else None
        if service_account_file:
            credentials = service_account.Credentials.from_service_account_file(
                str(service_account_file)
            )
            project = project or credentials.project_id
        elif endpoint:
            credentials = AnonymousCredentials()
        else:
            credentials = None
        self.client = storage.Client(
            project=project or "ragflow-backup", credentials=credentials, client_options=options
        )
        self.bucket = self.client.bucket(bucket)

    def describe(self) -> str:
        where = f" via {redact_url(self.endpoint)}" if self.endpoint else ""
        return f"gs://{self.bucket_name}/{self.prefix}{where}"

    def _error(self, op: str, key: str, exc: Exception) -> DestinationError:
        if isinstance(exc, google_errors.NotFound):
            return NotFound(f"{key} not found on {self.name}")
        permanent = isinstance(exc, _PERMANENT)
        text = getattr(exc, "message", None) or type(exc).__name__
        if isinstance(exc, DataCorruption):
            text = "DataCorruption: the downloaded bytes do not match the stored checksum"
        return DestinationError(f"gcs {op} {key} on {self.name}: {text}", permanent=permanent)

    def put(self, key: str, data: bytes) -> None:
        """A single-request media upload of ``data`` as it is.

        ``Blob.upload_from_string`` builds a multipart body (a second copy of every object,
        and a third of the GIL time of a three-cloud backup); objects here are at most a few
        MiB, so the plain media upload of the JSON API is enough, on the client's own
        authorised session.
        """
        url = f"{self.client._connection.API_BASE_URL}/upload/storage/v1/b/{self.bucket_name}/o"
        try:
            response = self.client._http.post(
                url,
                params={"uploadType": "media", "name": join(self.prefix, key)},
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=_TIMEOUT,
            )
        except _ERRORS as exc:
            raise self._error("put", key, exc) from None
        if response.status_code >= 400:
            raise self._error("put", key, google_errors.from_http_response(response))

    def get(self, key: str) -> bytes:
        try:
            return bytes(
                self.bucket.blob(join(self.prefix, key)).download_as_bytes(
                    retry=None, timeout=_TIMEOUT
                )
            )
        except _ERRORS as exc:
            raise self._error("get", key, exc) from None

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            blob = self.bucket.get_blob(join(self.prefix, key), retry=None, timeout=_TIMEOUT)
        except _ERRORS as exc:
            raise self._error("stat", key, exc) from None
        return None if blob is None else ObjectInfo(key, int(blob.size or 0), _md5(blob))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = join(self.prefix, "")
        strip = len(base) + 1 if base else 0
        try:
            blobs = self.client.list_blobs(
                self.bucket_name,
                prefix=join(self.prefix, prefix) + ("/" if prefix.endswith("/") else ""),
                retry=None,
                timeout=_TIMEOUT,
            )
            for blob in blobs:
                yield ObjectInfo(blob.name[strip:], int(blob.size or 0), _md5(blob))
        except _ERRORS as exc:
            raise self._error("list", prefix, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.bucket.blob(join(self.prefix, key)).delete(retry=None, timeout=_TIMEOUT)
        except google_errors.NotFound:
            return
        except _ERRORS as exc:
            raise self._error("delete", key, exc) from None
