"""/healthz (liveness: 200 while watching works, 503 with the reason) and /readyz (200 once started).

Both answer on a standby too (it watches and caches like the leader) and say which role this replica
has: {"ok": true, "problem": null, "role": "leader" | "standby"}."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


def serve(
    port: int, problem: Callable[[], str | None], role: Callable[[], str] = lambda: "leader"
) -> ThreadingHTTPServer | None:
    """Serves /healthz on `port` in a daemon thread; `problem()` returns None when healthy."""
    if not port:
        return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path not in ("/healthz", "/livez", "/readyz"):
                self.send_error(404)
                return
            # Ready means started (this server only runs after start-up); liveness means watching.
            issue = None if path == "/readyz" else problem()
            body = json.dumps({"ok": issue is None, "problem": issue, "role": role()}).encode()
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
