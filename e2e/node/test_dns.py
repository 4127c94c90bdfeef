"""The real node's cluster DNS (e2e/node/dns.py), over real UDP on loopback with a fake API.

Runs everywhere (no root, no node): the wire format, Service lookups, NXDOMAIN for unknown and
non-cluster names, an empty answer for AAAA, and SERVFAIL when the API cannot be asked.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from e2e.controlplane import rest
from e2e.node import dns


class FakeApi:
    """Answers GET of one Service (docs-postgres in ns1) and fails for namespace `broken`."""

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        if "/namespaces/broken/" in path:
            raise rest.ApiError(method, path, 500, "etcd is down")
        if path == "/api/v1/namespaces/ns1/services/docs-postgres":
            return 200, b'{"spec": {"clusterIP": "10.96.3.4"}}'
        if path == "/api/v1/namespaces/ns1/services/headless":
            return 200, b'{"spec": {"clusterIP": "None"}}'
        return 404, b"{}"


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    running = dns.ClusterDns(("127.0.0.1", 0), FakeApi()).start()  # type: ignore[arg-type]
    try:
        yield running.server_address
    finally:
        running.stop()


def ask(server: tuple[str, int], name: str, qtype: int = dns.TYPE_A) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    query = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0"
    query += struct.pack("!HH", qtype, dns.CLASS_IN)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query, server)
        reply = sock.recv(512)
    assert reply[:2] == b"\x12\x34" and reply[2] & 0x80, "not a reply to our query"
    assert reply[12 : 12 + len(query) - 12] == query[12:], "question not echoed"
    return reply


def rcode(reply: bytes) -> int:
    return reply[3] & 0x0F


def answers(reply: bytes) -> int:
    return int(struct.unpack("!H", reply[6:8])[0])


def test_service_name_resolves_to_its_cluster_ip(server: tuple[str, int]) -> None:
    reply = ask(server, "docs-postgres.ns1.svc.cluster.local")
    assert rcode(reply) == dns.NOERROR and answers(reply) == 1
    assert socket.inet_ntoa(reply[-4:]) == "10.96.3.4"


@pytest.mark.parametrize(
    "name", ["missing.ns1.svc.cluster.local", "docs-postgres.svc.cluster.local", "pypi.org"]
)
def test_unknown_and_outside_names_are_nxdomain(server: tuple[str, int], name: str) -> None:
    reply = ask(server, name)
    assert rcode(reply) == dns.NXDOMAIN and answers(reply) == 0


def test_aaaa_and_headless_get_an_empty_answer(server: tuple[str, int]) -> None:
    reply = ask(server, "docs-postgres.ns1.svc.cluster.local", qtype=28)
    assert rcode(reply) == dns.NOERROR and answers(reply) == 0
    reply = ask(server, "headless.ns1.svc.cluster.local")
    assert rcode(reply) == dns.NOERROR and answers(reply) == 0


def test_api_failure_is_servfail(server: tuple[str, int]) -> None:
    assert rcode(ask(server, "x.broken.svc.cluster.local")) == dns.SERVFAIL
