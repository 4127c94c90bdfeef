"""A tiny HTTPS client for the launcher's own API calls (readiness, fake nodes, checks).

Called by ``launcher`` and ``readiness``. It uses only the standard library so that starting the
control plane does not pay the import cost of the Kubernetes client; tests use the real client.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ApiError(RuntimeError):
    """A non-2xx answer: keeps the status code; the message carries no credentials."""

    def __init__(self, method: str, path: str, status: int, reason: str) -> None:
        super().__init__(f"{method} {path} -> {status} {reason}")
        self.status = status


@dataclass(frozen=True)
class Client:
    """Talks to one API server (or component health port) with a client certificate."""

    server: str
    ca_cert: Path | None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout_seconds: float = 5.0

    def _context(self) -> ssl.SSLContext:
        if self.ca_cert is None:
            # Component health ports use self-signed serving certs; only /healthz is read there.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=str(self.ca_cert))
        if self.client_cert is not None and self.client_key is not None:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """Send one request; returns (status, body). Connection errors raise ``OSError``."""
        parts = urlsplit(self.server)
        connection = http.client.HTTPSConnection(
            parts.hostname or "127.0.0.1",
            parts.port,
            timeout=self.timeout_seconds,
            context=self._context(),
        )
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request and decode the JSON answer; non-2xx raises ``ApiError``."""
        status, data = self.request(method, path, body)
        if status // 100 != 2:
            reason = _reason(data)
            raise ApiError(method, path, status, reason)
        return json.loads(data) if data else None


def _reason(data: bytes) -> str:
    try:
        decoded = json.loads(data)
    except ValueError:
        return data[:200].decode(errors="replace")
    if isinstance(decoded, dict):
        return str(decoded.get("message") or decoded.get("reason") or "")
    return ""
