"""Entry point of the node tier's `milvus` image: Milvus Lite's gRPC server as Milvus standalone.

The operator starts Milvus standalone as `milvus run standalone` with its data under
LOCALSTORAGE_PATH, gRPC on 19530 and probes on http://:9091/healthz. This process accepts that
command line, runs `milvus-lite server` on 19530 with the same data directory, and answers
/healthz with 200 while the gRPC port accepts connections (503 otherwise). SIGTERM is passed on;
the process exits with the server's status.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GRPC_PORT = 19530
HEALTH_PORT = 9091
EXPECTED_ARGS = ["milvus", "run", "standalone"]


def grpc_listening() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", GRPC_PORT), timeout=1):
            return True
    except OSError:
        return False


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        healthy = self.path == "/healthz" and grpc_listening()
        body = b"OK" if healthy else b"not serving"
        self.send_response(200 if healthy else 503 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # probes every few seconds
        return


def main(argv: list[str]) -> int:
    if argv and argv != EXPECTED_ARGS:
        print(f"usage: {' '.join(EXPECTED_ARGS)} (got {' '.join(argv)})", file=sys.stderr)
        return 64
    data_dir = os.environ.get("LOCALSTORAGE_PATH", "/var/lib/milvus/data")
    server = subprocess.Popen(
        [os.path.join(sys.prefix, "bin", "milvus-lite"), "server", "--data-dir", data_dir,
         "--host", "0.0.0.0", "--port", str(GRPC_PORT)]
    )  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    health = ThreadingHTTPServer(("0.0.0.0", HEALTH_PORT), Health)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    return server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
