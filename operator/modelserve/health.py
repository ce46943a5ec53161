"""A /healthz endpoint for the pod's liveness probe: 200 while watching works, 503 with the reason."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


def serve(port: int, problem: Callable[[], str | None]) -> ThreadingHTTPServer | None:
    """Serves /healthz on `port` in a daemon thread; `problem()` returns None when healthy."""
    if not port:
        return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/healthz", "/livez"):
                self.send_error(404)
                return
            issue = problem()
            body = json.dumps({"ok": issue is None, "problem": issue}).encode()
            self.send_response(200 if issue is None else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes every few seconds: keep quiet
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="modelserve-health", daemon=True).start()
    log.info("serving liveness on :%d/healthz", port)
    return server
