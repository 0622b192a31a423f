"""One HTTP port: /metrics (Prometheus), /healthz (poll loop alive), /readyz (assigned, not stopping)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Health:
    """Written by the poll thread, read by the HTTP thread: plain attributes, no locks needed."""

    def __init__(self, max_loop_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_loop_age_s = max_loop_age_s
        self.clock = clock
        self.last_loop = clock()
        self.assigned = False
        self.stopping = False

    def beat(self) -> None:
        self.last_loop = self.clock()

    def alive(self) -> tuple[bool, str]:
        age = self.clock() - self.last_loop
        return age <= self.max_loop_age_s, f"last poll loop {age:.1f}s ago"

    def ready(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "shutting down"
        return (True, "assigned") if self.assigned else (False, "no partitions assigned yet")


def serve(host: str, port: int, registry: CollectorRegistry, health: Health) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                return
            checks = {"/healthz": health.alive, "/readyz": health.ready}
            check = checks.get(self.path)
            if check is None:
                self._reply(404, b"not found\n", "text/plain")
                return
            ok, why = check()
            self._reply(200 if ok else 503, f"{'ok' if ok else 'not ok'}: {why}\n".encode(), "text/plain")

        def _reply(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
