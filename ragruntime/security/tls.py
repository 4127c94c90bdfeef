"""TLS to PostgreSQL, Redis and Milvus: certificate paths -> each driver's arguments.

A dependency talks TLS when its CA file is configured (``RAGFLOW_DATABASE_TLS_CA``,
``RAGFLOW_CACHE_TLS_CA``, ``RAGFLOW_VECTOR_TLS_CA``); the server certificate is then always
verified against that CA and the host name (libpq ``verify-full``, redis-py
``ssl_cert_reqs=required`` + hostname check, gRPC's own verification). A client certificate
and key (mutual TLS) are optional. Used by ``ragruntime.runtime.open_runtime`` when it opens
the stores; nothing here opens a connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragruntime.errors import InvalidArgument


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one connection: CA (required for TLS), client certificate and key."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.ca)

    def check(self, what: str) -> None:
        """Clear errors for half or missing configuration, naming the setting, not contents."""
        if (self.cert or self.key) and not self.ca:
            raise InvalidArgument(f"{what}: a client certificate needs the CA file as well")
        if bool(self.cert) != bool(self.key):
            raise InvalidArgument(f"{what}: set both the client certificate and its key")
        for path in (self.ca, self.cert, self.key):
            if path and not Path(path).is_file():
                raise InvalidArgument(f"{what}: TLS file {path} does not exist")


def postgres_connect_args(tls: TlsFiles) -> dict[str, Any]:
    """libpq parameters: verify the chain and the host name (they override the URL's sslmode)."""
    if not tls.enabled:
        return {}
    tls.check("database TLS")
    args: dict[str, Any] = {"sslmode": "verify-full", "sslrootcert": tls.ca}
    if tls.cert:
        args.update(sslcert=tls.cert, sslkey=tls.key)
    return args


def redis_connection(url: str, tls: TlsFiles) -> tuple[str, dict[str, Any]]:
    """``redis://`` becomes ``rediss://`` with verification on; the URL is otherwise unchanged."""
    if not tls.enabled:
        return url, {}
    tls.check("cache TLS")
    if url.startswith("redis://"):
        url = "rediss://" + url[len("redis://") :]
    kwargs: dict[str, Any] = {
        "ssl_ca_certs": tls.ca,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
    }
    if tls.cert:
        kwargs.update(ssl_certfile=tls.cert, ssl_keyfile=tls.key)
    return url, kwargs


def milvus_connection(uri: str, tls: TlsFiles) -> tuple[str, dict[str, Any]]:
    """pymilvus ``MilvusClient`` arguments: ``https://`` plus the CA (and client pair)."""
    if not tls.enabled:
        return uri, {}
    tls.check("vector store TLS")
    if "://" not in uri:
        raise InvalidArgument("vector store TLS needs a Milvus server URI (https://host:19530)")
    if uri.startswith("http://"):
        uri = "https://" + uri[len("http://") :]
    kwargs: dict[str, Any] = {"secure": True}
    if tls.cert:
        kwargs.update(ca_pem_path=tls.ca, client_pem_path=tls.cert, client_key_path=tls.key)
    else:
        kwargs["server_pem_path"] = tls.ca
    if tls.server_name:
        kwargs["server_name"] = tls.server_name
    return uri, kwargs
