"""A TCP proxy that breaks connections on purpose, put in front of an object-store emulator.

Used by the backup fault-injection tests. ``FaultProxy(upstream_port)`` listens on a free
loopback port and forwards to the emulator; ``proxy.inject(Fault(...))`` makes connections
misbehave once ``at_bytes`` bytes have passed in one direction on one connection, on the first
``connections`` connections that get that far (all of them with ``connections=-1``):

- ``reset``: abort both sides with a TCP RST;
- ``drop``: close both sides cleanly (FIN) mid-stream;
- ``stall``: stop forwarding and hold the connection open (a stopped server);
- ``slow``: forward at ``rate`` bytes per second from the first byte;
- ``delay``: wait ``delay_s`` before forwarding every piece (latency);
- ``hold``: hold a piece that contains ``match`` until ``release()`` (one request, for races).

One thread per direction per connection; everything stops with ``close()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
import time

from tests.fixtures.services import free_port

PIECE = 16384


@dataclasses.dataclass
class Fault:
    kind: str  # reset | drop | stall | slow | delay
    direction: str = "up"  # up: client -> store (uploads); down: store -> client
    at_bytes: int = 0
    connections: int = 1  # how many connections it hits at most; -1: all until cleared
    rate: float = 0.0  # bytes per second, for slow
    delay_s: float = 0.0  # per piece, for delay
    match: bytes = b""  # for hold: the bytes that identify the request to hold


class _Connection:
    def __init__(self, client: socket.socket, upstream: socket.socket, fault: Fault | None):
        self.client, self.upstream, self.fault = client, upstream, fault
        self.closed = threading.Event()

    def abort(self, rst: bool) -> None:
        """Close both sides for real: ``shutdown`` wakes the pump blocked in ``recv`` (a bare
        ``close`` would not, and the emulator would wait forever for the rest of a request);
        with ``rst`` the socket lingers 0 s, so the close sends a reset instead of a FIN."""
        self.closed.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                if rst:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD if rst else socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.fault: Fault | None = None
        self.triggered = 0  # connections on which the fault fired
        self.pieces_up = 0  # reads from clients (about one per small request): progress
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.released = threading.Event()
        self.connections: list[_Connection] = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    def endpoint_for(self, url: str, emulator_port: int) -> str:
        return url.replace(f":{emulator_port}", f":{self.port}")

    def inject(self, fault: Fault | None) -> None:
        with self.lock:
            self.fault = fault
            self.triggered = 0

    def _take_fault(self) -> Fault | None:
        with self.lock:
            return self.fault

    def _fire(self, fault: Fault) -> bool:
        """Whether a byte-count fault may still fire (``connections`` counts firings)."""
        with self.lock:
            if fault is not self.fault or fault.connections == 0:
                return False
            if fault.connections > 0:
                fault.connections -= 1
            self.triggered += 1
            return True

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), 5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            connection = _Connection(client, upstream, self._take_fault())
            with self.lock:
                self.connections.append(connection)
            for direction in ("up", "down"):
                threading.Thread(
                    target=self._pump, args=(connection, direction), daemon=True
                ).start()

    def _pump(self, connection: _Connection, direction: str) -> None:
        src, dst = (
            (connection.client, connection.upstream)
            if direction == "up"
            else (connection.upstream, connection.client)
        )
        fault = (
            connection.fault
            if connection.fault and connection.fault.direction in (direction, "both")
            else None
        )
        passed = 0
        while not connection.closed.is_set():
            try:
                data = src.recv(PIECE)
            except OSError:
                break
            if not data:
                if not connection.closed.is_set():
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                return
            if direction == "up":
                with self.lock:
                    self.pieces_up += 1
            if fault is not None:
                data = self._apply(connection, fault, data, passed)
                if data is None:
                    return
            passed += len(data)
            try:
                dst.sendall(data)
            except OSError:
                break
        connection.abort(rst=False)

    def _apply(
        self, connection: _Connection, fault: Fault, data: bytes, passed: int
    ) -> bytes | None:
        if fault.kind == "delay":
            time.sleep(fault.delay_s)
            return data
        if fault.kind == "hold":
            if fault.match in data:
                with self.lock:
                    self.triggered += 1
                self.released.wait(60)
            return data
        if fault.kind == "slow":
            time.sleep(len(data) / fault.rate)
            return data
        if passed + len(data) <= fault.at_bytes or not self._fire(fault):
            return data
        head = data[: max(0, fault.at_bytes - passed)]
        with contextlib.suppress(OSError):
            (connection.upstream if fault.direction == "up" else connection.client).sendall(head)
        if fault.kind == "stall":
            while not (self.stopping.is_set() or connection.closed.is_set()):
                time.sleep(0.05)  # hold everything; the client gives up on its own
            connection.abort(rst=False)
        else:
            connection.abort(rst=fault.kind == "reset")
        return None

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.stopping.set()
        self.released.set()
        self.listener.close()
        with self.lock:
            connections, self.connections = self.connections, []
        for connection in connections:
            connection.abort(rst=False)
