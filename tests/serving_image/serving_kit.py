"""Loopback servers for the serving image's tests: storage servers built from Go modules, a stdlib
HTTP server for archives, a TCP proxy that cuts a transfer once, and a TF Serving status stand-in."""

from __future__ import annotations

import contextlib
import http.server
import json
import select
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import WaitTimeoutError, wait_until

REPO = Path(__file__).resolve().parents[2]
TEST_SERVERS_SCRIPT = REPO / "serving-image" / "hack" / "test-servers.sh"
S3_KEY, S3_SECRET, BUCKET = "modelserve-test", "s3cr3t-for-tests", "models"


def build_test_servers() -> Path:
    """Builds or reuses the cached Go servers; a failure is a test failure (never a skip)."""
    result = subprocess.run(
        ["bash", str(TEST_SERVERS_SCRIPT)], check=False, capture_output=True, text=True, timeout=1200
    )
    if result.returncode != 0:
        raise RuntimeError(f"{TEST_SERVERS_SCRIPT} failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# How often wait_http asks again while a server starts.
POLL_SECONDS = 0.1


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    def probe() -> str:
        # A refused connection raises OSError: wait_until keeps polling and names the last one.
        if proc is not None and proc.poll() is not None:
            return "exited"  # ends the wait at once: it will never answer
        try:
            with urllib.request.urlopen(url, timeout=2):
                return "up"
        except urllib.error.HTTPError:
            return "up"  # it answered

    if wait_until(probe, timeout=timeout, interval=POLL_SECONDS, what=f"{url} to answer") == "exited":
        assert proc is not None
        raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    endpoint: str
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_s3server(
    binary: Path, log: Path, *, access_key: str, secret_key: str, buckets: list[str]
) -> Process:
    out = log.open("wb")
    proc = subprocess.Popen(
        [
            str(binary),
            "-addr",
            "127.0.0.1:0",
            "-access-key",
            access_key,
            "-secret-key",
            secret_key,
            "-buckets",
            ",".join(buckets),
        ],
        stdout=subprocess.PIPE,
        stderr=out,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"s3server did not start: {line!r}; see {log}")
    endpoint = "http://" + line.split()[-1]
    wait_http(endpoint + "/", proc=proc)
    return Process(proc, endpoint, log)


def start_fake_gcs(binary: Path, log: Path) -> Process:
    last: Exception | None = None
    for _ in range(3):  # a free port can be taken between our probe and the server's bind
        port = free_port()
        out = log.open("ab")
        proc = subprocess.Popen(
            [
                str(binary),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(port),
                "-backend",
                "memory",
                "-external-url",
                f"http://127.0.0.1:{port}",
                "-public-host",
                f"127.0.0.1:{port}",
                "-log-level",
                "warn",
            ],
            stdout=out,
            stderr=out,
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            wait_http(endpoint + "/storage/v1/b", proc=proc)
            return Process(proc, endpoint, log)
        except (RuntimeError, WaitTimeoutError) as exc:
            last = exc
            proc.kill()
            proc.wait()
    raise RuntimeError(f"fake-gcs-server did not start: {last}; see {log}")


class CuttingProxy:
    """A loopback TCP proxy that closes the first connection whose response passes `cut_after`
    bytes, once: an interrupted download, the way a reset connection looks to the client."""

    def __init__(self, upstream: str, cut_after: int) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.cut_after = cut_after
        self.cuts = 0
        self.connections = 0
        self._armed = True
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self._sock], [], [], 0.2)
            if not ready:
                continue
            client, _ = self._sock.accept()
            self.connections += 1
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        sent = 0
        with client, upstream:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 30)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is upstream:
                        sent += len(data)
                        if self._armed and sent > self.cut_after:
                            self._armed = False
                            self.cuts += 1
                            client.sendall(data[: len(data) // 2])
                            # RST rather than FIN: the client sees a reset mid-body.
                            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                            return
                        client.sendall(data)
                    else:
                        upstream.sendall(data)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self._sock.close()


@dataclass
class ArchiveServer:
    """Serves files from `root` over HTTP/1.1 with Content-Length, an optional required
    Authorization header, and a one-shot cut of the next N responses after `cut_after` bytes."""

    root: Path
    authorization: str | None = None
    cut_responses: int = 0
    cut_after: int = 0
    requests: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    status_override: dict[str, int] = field(default_factory=dict)
    endpoint: str = ""

    @contextlib.contextmanager
    def running(self) -> Iterator[ArchiveServer]:
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                state.requests.append(self.path)
                if state.authorization and self.headers.get("Authorization") != state.authorization:
                    return self._empty(401)
                if self.path in state.status_override:
                    return self._empty(state.status_override[self.path])
                path = state.root / self.path.lstrip("/")
                if not path.is_file():
                    return self._empty(404)
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if state.cut_responses > 0:
                    state.cut_responses -= 1
                    self.wfile.write(body[: state.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self.wfile.write(body)
                return None

            def do_HEAD(self) -> None:
                state.heads.append(self.path)
                path = state.root / self.path.lstrip("/")
                if not path.is_file():
                    return self._empty(404)
                stat = path.stat()
                self.send_response(200)
                self.send_header("Content-Length", str(stat.st_size))
                self.send_header("ETag", f'"{stat.st_mtime_ns}-{stat.st_size}"')
                self.end_headers()
                return None

            def _empty(self, code: int) -> None:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


@dataclass
class StatusStub:
    """A stand-in for TF Serving's REST model status API, NOT TF Serving itself (which cannot run
    here). It answers `GET /v1/models/<name>` with the JSON shape of TF Serving's
    GetModelStatusResponse as its REST handler prints it: model_version_status[] entries with
    version (a string), state and status {error_code, error_message}; unknown models get 404 with
    {"error": ...} as TF Serving does before a model is loaded."""

    models: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    endpoint: str = ""
    port: int = 0

    def set(self, name: str, *versions: tuple[int, str] | tuple[int, str, str, str]) -> None:
        entries = []
        for v in versions:
            code, message = (v[2], v[3]) if len(v) == 4 else ("OK", "")
            entries.append(
                {
                    "version": str(v[0]),
                    "state": v[1],
                    "status": {"error_code": code, "error_message": message},
                }
            )
        self.models[name] = entries

    @contextlib.contextmanager
    def running(self) -> Iterator[StatusStub]:
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                prefix = "/v1/models/"
                name = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
                if name in state.models:
                    code, doc = 200, {"model_version_status": state.models[name]}
                else:
                    code, doc = 404, {"error": f"Servable not found for request: Latest({name})"}
                body = json.dumps(doc, indent=1).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@dataclass
class Store:
    endpoint: str
    process: Process

    def fs(self) -> Any:
        raise NotImplementedError

    def upload(self, local: Path, prefix: str) -> str:
        """Uploads a directory (recursively) or a file under BUCKET/prefix; returns the key."""
        fs = self.fs()
        target = f"{BUCKET}/{prefix}"
        if local.is_dir():
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                fs.put_file(str(path), f"{target}/{path.relative_to(local).as_posix()}")
        else:
            fs.put_file(str(local), target)
        return prefix


class S3Store(Store):
    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(
            key=S3_KEY,
            secret=S3_SECRET,
            endpoint_url=self.endpoint,
            skip_instance_cache=True,
            client_kwargs={"region_name": "eu-test-1"},
            config_kwargs={"s3": {"addressing_style": "path"}},
        )


class GcsStore(Store):
    def fs(self) -> Any:
        from gcsfs.core import GCSFileSystem  # see modelserve_serving.objectstore for why not gcsfs's default

        return GCSFileSystem(token="anon", endpoint_url=self.endpoint, skip_instance_cache=True)


def call_saved_model(version_dir: Path, xs: list[float]) -> list[float]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    out = loaded.signatures["serving_default"](tf.constant(xs, dtype=tf.float32))
    return [float(v) for v in out["y"].numpy()]


def s3_creds(store: S3Store, **overrides: str) -> dict[str, str]:
    creds = {
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_ENDPOINT_URL": store.endpoint,
        "AWS_REGION": "eu-test-1",
    }
    creds.update(overrides)
    return creds


def gcs_creds(store: GcsStore) -> dict[str, str]:
    return {"STORAGE_EMULATOR_HOST": store.endpoint}
