"""A minimal cluster DNS for the real node: Service names to ClusterIPs, answered from the API.

Pods of a RagFlowCluster reach PostgreSQL, Redis and Milvus by Service name (``docs-postgres``);
the kubelet points their resolv.conf here (``clusterDNS``) with the usual search path
(``<ns>.svc.cluster.local svc.cluster.local cluster.local``). This server answers A queries for
``<service>.<namespace>.svc.cluster.local`` with the Service's ClusterIP (looked up in the API
server at query time), and with an empty answer or NXDOMAIN for everything else: the pods need
nothing outside the cluster. It replaces CoreDNS, whose image cannot be pulled here; it serves
UDP only (answers are one record, far below 512 bytes).

Started and stopped by e2e/node/conftest.py, in a thread of the test process.
"""

from __future__ import annotations

import json
import socketserver
import struct
import threading
from typing import ClassVar

from e2e.controlplane import rest

CLUSTER_DOMAIN = "cluster.local"
TYPE_A = 1
CLASS_IN = 1
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3
TTL_SECONDS = 5


def parse_question(packet: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, name, qtype, end offset of the question) of a query with one question."""
    query_id, flags, questions = struct.unpack("!HHH", packet[:6])
    if questions != 1:
        raise ValueError(f"{questions} questions")
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii"))
        offset += 1 + length
    qtype, _qclass = struct.unpack("!HH", packet[offset + 1 : offset + 5])
    return query_id, flags, ".".join(labels).lower(), qtype, offset + 5


def response(packet: bytes, rcode: int, address: str | None) -> bytes:
    """The answer to ``packet``: its question echoed, plus one A record when ``address``."""
    query_id, flags, _name, _qtype, end = parse_question(packet)
    answer = b""
    if address is not None:
        rdata = bytes(int(part) for part in address.split("."))
        # Name as a pointer to the question (offset 12), type A, class IN, TTL, 4-byte address.
        answer = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL_SECONDS, 4) + rdata
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0400 | rcode  # QR, copy RD, AA
    header = struct.pack("!HHHHHH", query_id, reply_flags, 1, 1 if answer else 0, 0, 0)
    return header + packet[12:end] + answer


def service_name(name: str) -> tuple[str, str] | None:
    """(service, namespace) of ``<service>.<namespace>.svc.cluster.local``, else None."""
    suffix = f".svc.{CLUSTER_DOMAIN}"
    if not name.endswith(suffix):
        return None
    parts = name.removesuffix(suffix).split(".")
    return (parts[0], parts[1]) if len(parts) == 2 else None


class ClusterDns(socketserver.ThreadingUDPServer):
    """UDP DNS server on ``(host, port)`` resolving Services through ``client``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], client: rest.Client) -> None:
        self.client = client
        super().__init__(address, _Handler)
        self._thread: threading.Thread | None = None

    def lookup(self, name: str, qtype: int) -> tuple[int, str | None]:
        """(rcode, address) for one question."""
        service = service_name(name)
        if service is None:  # other cluster names, or outside the cluster: nothing there
            return NXDOMAIN, None
        status, body = self.client.request(
            "GET", f"/api/v1/namespaces/{service[1]}/services/{service[0]}"
        )
        if status != 200:
            return NXDOMAIN, None
        cluster_ip = json.loads(body)["spec"].get("clusterIP")
        if qtype != TYPE_A or not cluster_ip or cluster_ip == "None":
            return NOERROR, None
        return NOERROR, cluster_ip

    def start(self) -> ClusterDns:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="dns")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(socketserver.BaseRequestHandler):
    server: ClassVar[ClusterDns]  # type: ignore[misc]

    def handle(self) -> None:
        packet, sock = self.request
        try:
            _id, _flags, name, qtype, _end = parse_question(packet)
        except (ValueError, IndexError, struct.error, UnicodeDecodeError):
            return
        try:
            rcode, address = self.server.lookup(name, qtype)
        except (OSError, rest.ApiError, ValueError):
            rcode, address = SERVFAIL, None
        sock.sendto(response(packet, rcode, address), self.client_address)
