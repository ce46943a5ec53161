"""Helpers for the `sync` tests: a counting reverse proxy in front of the real storage servers
(their front door: every request and response byte the store answers passes it, so counts are the
store's own), and a runner for the real `modelserve-serving sync` process."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import wait_until
from modelserve import contract

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Request:
    method: str
    path: str
    status: int
    body_bytes: int


@dataclass
class CountingProxy:
    """HTTP/1.1 reverse proxy to `upstream`: records each request (method, path, status, response
    body bytes), can be switched "down" (connections are cut before any answer: the store is
    unreachable) and can throttle response bodies (bytes per second) so a download can be caught
    in the middle."""

    upstream: str
    requests: list[Request] = field(default_factory=list)
    down: bool = False
    throttle: int = 0
    endpoint: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def body_bytes(self, predicate: Callable[[Request], bool] = lambda r: True) -> int:
        return sum(r.body_bytes for r in self.snapshot() if predicate(r))

    @contextlib.contextmanager
    def running(self) -> Iterator[CountingProxy]:
        state = self
        host, port = self.upstream.removeprefix("http://").split(":")

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self) -> None:
                if state.down:
                    self.close_connection = True
                    self.connection.close()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data_len = 0
                    self.send_response_only(resp.status, resp.reason)
                    chunked = (
                        resp.getheader("Content-Length") is None
                        and self.command != "HEAD"
                        and resp.status not in (204, 304)
                    )
                    for k, v in resp.getheaders():
                        if k.lower() not in _HOP:
                            self.send_header(k, v)
                    if chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    while self.command != "HEAD" and resp.status not in (204, 304):
                        chunk = resp.read(64 << 10)
                        if not chunk:
                            break
                        data_len += len(chunk)
                        if chunked:
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        else:
                            self.wfile.write(chunk)
                        if state.throttle:
                            time.sleep(len(chunk) / state.throttle)  # pacing of a slow link
                        if state.down:
                            self.close_connection = True
                            return
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                    with state._lock:
                        state.requests.append(Request(self.command, self.path, resp.status, data_len))
                finally:
                    conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward  # noqa: N815 (http.server's names)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.handle_error = lambda *_: None  # type: ignore[method-assign]  # clients cut on purpose
        self.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def executable() -> str:
    found = shutil.which(contract.EXECUTABLE, path=str(Path(sys.executable).parent))
    assert found, f"{contract.EXECUTABLE} is not installed next to {sys.executable}"
    return found


@dataclass
class SyncProcess:
    """The real `modelserve-serving sync`, as the sidecar runs it, with env as the operator sets it."""

    workdir: Path
    uri: str
    creds: dict[str, str]
    config: str | None
    poll_seconds: float = 1
    mode: str = contract.SYNC_MODE_SIDECAR
    tfserving_port: int = 1  # nothing listens: TF Serving cannot be asked
    metrics_port: int = 0  # 0: no metrics endpoint (the operator always sets one)
    wrapper: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def model_root(self) -> Path:
        return self.workdir / "models"

    @property
    def model(self) -> Path:
        return self.model_root / "m"

    @property
    def config_dir(self) -> Path:
        return self.workdir / "config"

    @property
    def creds_dir(self) -> Path:
        return self.workdir / "creds"

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    @property
    def termination(self) -> Path:
        return self.workdir / "termination-log"

    @property
    def log(self) -> Path:
        return self.workdir / "sync.log"

    def write_config(self, text: str) -> None:
        """Like kubelet updating a ConfigMap volume: the new file appears by rename."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_dir / ".tmp-config"
        tmp.write_text(text)
        tmp.rename(self.config_dir / contract.MODEL_CONFIG_FILE)

    def write_creds(self, creds: dict[str, str]) -> None:
        self.creds_dir.mkdir(parents=True, exist_ok=True)
        for path in self.creds_dir.iterdir():
            path.unlink()
        for key, value in creds.items():
            (self.creds_dir / key).write_text(value)

    def start(self) -> SyncProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.config is not None:
            self.write_config(self.config)
        self.write_creds(self.creds)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "GOOGLE_", "MODELSERVE_")) and k != "STORAGE_EMULATOR_HOST"
        }
        env.update(
            {
                contract.ENV_STORAGE_URI: self.uri,
                contract.ENV_MODEL_NAME: "m",
                contract.ENV_MODEL_ROOT: str(self.model_root),
                contract.ENV_CREDENTIALS_DIR: str(self.creds_dir),
                contract.ENV_CONFIG_DIR: str(self.config_dir),
                contract.ENV_POLL_SECONDS: str(self.poll_seconds),
                contract.ENV_SYNC_MODE: self.mode,
                contract.ENV_SYNC_STATE_FILE: str(self.state_file),
                contract.ENV_SYNC_METRICS_PORT: str(self.metrics_port),
            }
        )
        argv = [
            *self.wrapper,
            executable(),
            "--termination-message-path",
            str(self.termination),
            contract.CMD_SYNC,
            "--backoff-seconds",
            "0.05",
            "--max-backoff-seconds",
            "0.2",
            "--attempts",
            "2",
            "--tfserving-port",
            str(self.tfserving_port),
        ]
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        return self

    def metrics(self) -> dict[str, float]:
        """The sidecar's /metrics as Prometheus would read it: {series: value} ({} before it listens)."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{contract.SYNC_METRICS_PATH}", timeout=5
            ) as response:
                text = response.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
        return out

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
        def probe() -> str | None:
            if predicate():
                return "done"
            if self.proc is not None and self.proc.poll() is not None:
                return "exited"  # ends the wait at once: the sync will never get there
            return None

        outcome = wait_until(
            probe,
            timeout=timeout,
            interval=0.05,
            what=what,
            describe=lambda: f"state {self.state()}\n{self.log.read_text()[-4000:]}",
        )
        if outcome == "exited":
            assert self.proc is not None
            raise AssertionError(
                f"sync exited with {self.proc.returncode} waiting for {what}:\n{self.log.read_text()[-4000:]}"
            )

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def versions(self) -> list[str]:
        try:
            return sorted((p.name for p in self.model.iterdir() if p.name.isdigit()), key=int)
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def models_config(policy: str, *, base_path: str = "/models/m") -> str:
    """A models.config as the operator renders it (builders/tfserving_config.py)."""
    return (
        'model_config_list {\n  config {\n    name: "m"\n'
        f'    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{\n      {policy}\n    }}\n  }}\n}}\n"
    )


def latest(n: int) -> str:
    return models_config(f"latest {{\n        num_versions: {n}\n      }}")


def specific(*versions: int) -> str:
    inner = "\n".join(f"        versions: {v}" for v in versions)
    return models_config(f"specific {{\n{inner}\n      }}")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
