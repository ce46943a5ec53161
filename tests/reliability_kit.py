"""Fault injection for the reliability tests: the operator as a killable process, control-plane
components stopped and restarted by pid, a TCP proxy that can freeze streams, and a convergence check
that compares every child with what the builders would produce.

Everything here talks to loopback only and to the fault cluster of the tests (never the shared one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit import CLUSTER_SCRIPT, CRD_DIR, Cluster, cache_root, wait_until
from modelserve import builders, memory

# Every built-in child kind (the fault cluster has no Prometheus Operator or KEDA CRDs), once each.
CHILD_KINDS = ",".join(
    dict.fromkeys(
        f"{k.plural}.{k.group}" if k.group else k.plural
        for k in builders.CHILD_KINDS
        if not k.group or "." not in k.group or k.group.endswith(".k8s.io")
    )
)
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=modelserve-operator"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the fault cluster -----------------------------------------------------------------------------


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")


@dataclass
class FaultCluster:
    """A cluster of its own for tests that stop its components; the handle plus its kwok work dir."""

    cluster: Cluster
    name: str
    # How each component was started, read once while all ran: the "kubelet" below restarts from it.
    launches: dict[str, Launch] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return cache_root() / "kwok" / "clusters" / self.name

    @property
    def audit_log(self) -> Path:
        return self.workdir / "logs" / "audit.log"

    def component(self, name: str) -> Component:
        return Component(self.workdir, name)

    def ready(self) -> bool:
        return self.cluster.kubectl("get", "--raw", "/readyz", check=False).returncode == 0

    def record_launches(self) -> None:
        self.launches = {name: self.component(name).launch() for name in COMPONENTS}

    def restart_dead(self) -> list[str]:
        """What a kubelet does for static pods: controller-manager and scheduler exit when they lose
        their leader lease during an outage (by design), and are started again."""
        restarted = []
        for name, launch in self.launches.items():
            comp = self.component(name)
            if not _alive(comp.pid()):
                comp.start(Stopped(launch, [], time.monotonic()))
                restarted.append(name)
        return restarted


# The fault cluster keeps an audit log of every write (the fencing test reads it) and lets a test take
# a node away from kwok (hack/cluster/cluster.sh: MODELSERVE_CLUSTER_KWOK_ANNOTATED_NODES).
AUDIT_POLICY = Path(__file__).resolve().parent / "audit-policy.yaml"
FAULT_CLUSTER_ENV = {
    "MODELSERVE_CLUSTER_AUDIT_POLICY": str(AUDIT_POLICY),
    "MODELSERVE_CLUSTER_KWOK_ANNOTATED_NODES": "1",
}


def _cluster_script(name: str, *args: str, timeout: float = 5400) -> str:
    env = dict(os.environ, MODELSERVE_CLUSTER_NAME=name, **FAULT_CLUSTER_ENV)
    proc = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)} ({name}) failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


# A node with room for hundreds of small serving pods, so load tests never wait on capacity.
POOL_NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "reliability-pool-1",
        "annotations": {"kwok.x-k8s.io/node": "fake"},
        "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
    },
    "spec": {},
    "status": {
        "capacity": {"cpu": "2000", "memory": "8Ti", "pods": "3000", "ephemeral-storage": "10Ti"},
        "allocatable": {"cpu": "2000", "memory": "8Ti", "pods": "3000", "ephemeral-storage": "10Ti"},
    },
}


def start_fault_cluster(name: str) -> FaultCluster:
    _cluster_script(name, "up")
    kubeconfig = _cluster_script(name, "kubeconfig").strip()
    env_lines = _cluster_script(name, "env")
    bin_dir = next(
        line.split("=", 1)[1].split(":", 1)[0]
        for line in env_lines.splitlines()
        if line.startswith("export PATH=")
    )
    handle = FaultCluster(Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, local=True), name)
    kc = handle.cluster
    for path in sorted(CRD_DIR.glob("*.yaml")):
        kc.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=modelserve-tests", "-f", str(path)
        )
    kc.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    kc.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=modelserve-tests",
        "-f",
        "-",
        input=json.dumps(POOL_NODE),
    )
    kc.kubectl("wait", "--for=condition=Ready", "--timeout=60s", "node/reliability-pool-1")
    handle.record_launches()
    return handle


def delete_fault_cluster(name: str) -> None:
    _cluster_script(name, "down", timeout=300)


# --- control-plane components ----------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """How a component process was started."""

    cmdline: list[str]
    cwd: str
    env: dict[str, str]


@dataclass
class Stopped:
    """A component we killed: how to start it again, and the sockets keeping its ports ours meanwhile."""

    launch: Launch
    held: list[socket.socket]
    stopped_at: float


_restarted: list[subprocess.Popen[bytes]] = []  # keeps restarted components referenced (no warnings)


class Component:
    """One process of the kwok binary runtime, found through its pid file."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.name = name
        self.pid_file = workdir / "pids" / f"{name}.pid"
        self.log_file = workdir / "logs" / f"{name}.log"

    def pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def ports(self) -> list[int]:
        config = yaml.safe_load_all((self.workdir / "kwok.yaml").read_text())
        for doc in config:
            for comp in (doc or {}).get("components") or []:
                if comp.get("name") == self.name:
                    return [int(p["port"]) for p in comp.get("ports") or []]
        raise LookupError(f"no component {self.name} in {self.workdir}/kwok.yaml")

    def launch(self) -> Launch:
        proc = Path(f"/proc/{self.pid()}")
        cmdline = [a for a in (proc / "cmdline").read_bytes().decode().split("\0") if a]
        env = dict(
            entry.split("=", 1)
            for entry in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
            if "=" in entry
        )
        return Launch(cmdline, os.readlink(proc / "cwd"), env)

    def stop(self) -> Stopped:
        """SIGKILL (a crash, not a graceful shutdown), then hold its ports so that no other cluster
        created meanwhile can take them (see _try_bind)."""
        pid = self.pid()
        launch = self.launch()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), timeout=30, what=f"{self.name} (pid {pid}) to exit")
        held = []
        for port in self.ports():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # Connections of the dead process linger in TIME_WAIT; SO_REUSEADDR binds regardless.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            wait_until(lambda s=sock, p=port: _try_bind(s, p), timeout=30, what=f"port {port} to be free")
            held.append(sock)
        return Stopped(launch, held, time.monotonic())

    def start(self, stopped: Stopped) -> None:
        for sock in stopped.held:
            # shutdown() wakes the thread blocked in accept(); a bare close() would leave the
            # listener alive in the kernel until that accept returned.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                stopped.launch.cmdline,
                cwd=stopped.launch.cwd,
                env=stopped.launch.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _restarted.append(proc)
        # kwokctl stops (and `cluster.sh down` deletes) the cluster by these pid files.
        self.pid_file.write_text(str(proc.pid))


def _try_bind(sock: socket.socket, port: int) -> bool:
    """Binds and listens (a listener keeps every other process off the port), resetting each
    connection at once: clients see the server gone, as behind a load balancer with no backend."""
    try:
        sock.bind(("0.0.0.0", port))
        sock.listen(64)
    except OSError:
        return False
    threading.Thread(target=_reset_all, args=(sock,), name=f"hold-{port}", daemon=True).start()
    return True


def _reset_all(sock: socket.socket) -> None:
    linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # struct linger {on, 0 s}: RST
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:  # closed: the component is starting again
            return
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        conn.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# --- the operator as a process ---------------------------------------------------------------------


@dataclass
class OperatorProcess:
    """`modelserve run` in a subprocess, so SIGKILL is a real crash with nothing flushed."""

    kubeconfig: str
    namespace: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    health_port: int = 0
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> OperatorProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.health_port = free_port()
        self.metrics_port = free_port()
        # A stable identity, as a pod's name survives a container restart: a restarted operator
        # takes its own Lease back at once instead of waiting out a lease duration.
        # The allocator settings the image and the chart start it with (memory.py).
        env = dict(os.environ, **memory.ALLOCATOR_ENV)
        env.update(KUBECONFIG=self.kubeconfig, MODELSERVE_IDENTITY=f"op-{self.namespace}")
        env.update(self.env)
        args = [
            sys.executable, "-m", "modelserve", "run", "-n", self.namespace,
            "--metrics-port", str(self.metrics_port), "--health-port", str(self.health_port),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts + 1} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup handler, no flushed state."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def healthz(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, repr(exc)

    def role(self) -> str | None:
        """leader or standby, from /healthz; None while it does not answer."""
        code, body = self.healthz()
        if code == 0:
            return None
        try:
            return str(json.loads(body).get("role"))
        except ValueError:
            return None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{want}}} " if labels else f"{name} "
        for line in self.metrics().splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
            labelled = labels and line.startswith(name + "{")
            if labelled and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.split()[-1])
        return 0.0

    def wait_serving(self, timeout: float = 60) -> None:
        """Until /healthz answers (the startup handler ran: discovery done, workers started)."""
        wait_until(
            lambda: self.healthz()[0] == 200,
            timeout=timeout,
            what="the operator's /healthz",
            describe=self.log_tail,
        )

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise LookupError("no VmRSS")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def tracebacks(self) -> list[str]:
        text = self.log_text()
        return [chunk[:2000] for chunk in text.split("Traceback (most recent call last):")[1:]]


# --- a TCP proxy that can freeze streams -----------------------------------------------------------


class _Conn:
    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.flowing = asyncio.Event()
        self.flowing.set()

    def close(self) -> None:
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.close()


class TcpProxy:
    """Loopback TCP proxy in front of the API server (TLS passes through untouched).

    `freeze()` stops delivering server bytes on every open connection: a watch stream then hangs with
    its socket open, as behind a stuck load balancer. A frozen connection on which the client sends a
    new request (an idle keep-alive connection being reused) thaws, since no response of it was held.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self.conns: set[_Conn] = set()
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="tcp-proxy", daemon=True)

    def start(self) -> int:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            return
        conn = _Conn(c_writer, s_writer)
        self.conns.add(conn)
        try:
            await asyncio.gather(
                self._pump(c_reader, conn, upstream=True), self._pump(s_reader, conn, upstream=False)
            )
        finally:
            self.conns.discard(conn)
            conn.close()

    async def _pump(self, reader: asyncio.StreamReader, conn: _Conn, *, upstream: bool) -> None:
        writer = conn.server if upstream else conn.client
        try:
            while data := await reader.read(65536):
                if upstream:
                    conn.flowing.set()  # a new request: nothing of this connection is held back
                else:
                    await conn.flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    def freeze(self) -> int:
        async def go() -> int:
            for conn in self.conns:
                conn.flowing.clear()
            return len(self.conns)

        return int(self._call(go()))

    def thaw(self) -> None:
        async def go() -> None:
            for conn in self.conns:
                conn.flowing.set()

        self._call(go())

    def close(self) -> None:
        async def go() -> None:
            if self._server is not None:
                self._server.close()
            for conn in list(self.conns):
                conn.close()

        with contextlib.suppress(Exception):
            self._call(go())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def kubeconfig_via(kubeconfig: str, port: int, path: Path) -> str:
    """A copy of `kubeconfig` whose server is 127.0.0.1:`port` (the certificate names 127.0.0.1)."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def apiserver_port(kubeconfig: str) -> int:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    return int(config["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])


# --- workloads and convergence ---------------------------------------------------------------------

SMALL = {"requests": {"cpu": "10m", "memory": "16Mi"}}


def md_manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    spec = {"model": {"storageUri": f"gs://models/{name}"}, "resources": SMALL, **spec}
    return {
        "apiVersion": "modelserve.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def apply_all(cluster: Cluster, namespace: str, manifests: list[dict[str, Any]]) -> None:
    """One kubectl call for many objects (server-side apply, our test field manager)."""
    if not manifests:
        return
    doc = {"apiVersion": "v1", "kind": "List", "items": manifests}
    cluster.kubectl(
        "apply", "-n", namespace, "--server-side", "--force-conflicts", "--field-manager=modelserve-tests",
        "-f", "-", input=json.dumps(doc),
    )  # fmt: skip


def bump(cluster: Cluster, namespace: str, names: list[str], value: str) -> int:
    """A spec change (an env var: a new pod template) on each; returns the new generation of the
    first."""
    apply_all(
        cluster,
        namespace,
        [
            md_manifest(n, {"replicas": 1, "serving": {"env": [{"name": "ROUND", "value": value}]}})
            for n in names
        ],
    )
    md = json.loads(cluster.kubectl("get", "modeldeployment", names[0], "-n", namespace, "-o", "json").stdout)
    return int(md["metadata"]["generation"])


def list_json(
    cluster: Cluster, namespace: str, kinds: str, selector: str | None = None
) -> list[dict[str, Any]]:
    args = ["get", kinds, "-n", namespace, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return list(cluster.kubectl_json(*args)["items"])


def convergence_problems(cluster: Cluster, namespace: str) -> list[str]:
    """Everything that differs from a converged namespace: each ModelDeployment Ready at its generation
    with exactly the children the builders produce for its current spec (by applied hash, owner and
    rollout), and no managed child without a living owner."""
    from modelserve import api, builders
    from modelserve.childcache import APPLIED_HASH_ANNOTATION, manifest_hash
    from modelserve.settings import Settings

    settings = Settings()
    problems: list[str] = []
    mds = list_json(cluster, namespace, "modeldeployments")
    children = list_json(cluster, namespace, CHILD_KINDS, MANAGED_SELECTOR)
    live = {(c["kind"], c["metadata"]["name"]): c for c in children}
    claimed: set[tuple[str, str]] = set()
    for body in mds:
        name = body["metadata"]["name"]
        md = api.parse(body)
        status = body.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        if status.get("observedGeneration") != body["metadata"]["generation"]:
            problems.append(f"{name}: observedGeneration {status.get('observedGeneration')} != "
                            f"generation {body['metadata']['generation']}")  # fmt: skip
        if not ready or ready["status"] != "True":
            problems.append(f"{name}: Ready is {ready and (ready['status'], ready['reason'])}")
        for child in builders.desired_children(md, settings):
            if child.kind == "ServiceMonitor":
                continue
            obj = live.get((child.kind, child.name))
            if child.manifest is None:
                if obj is not None:
                    problems.append(f"{name}: {child.kind} {child.name} should not exist")
                continue
            claimed.add((child.kind, child.name))
            if obj is None:
                problems.append(f"{name}: {child.kind} {child.name} missing")
                continue
            refs = obj["metadata"].get("ownerReferences") or []
            if [r.get("uid") for r in refs if r.get("controller")] != [md.uid]:
                problems.append(f"{name}: {child.kind} {child.name} has owners {refs}")
            applied = (obj["metadata"].get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)
            if applied != manifest_hash(child.manifest):
                problems.append(f"{name}: {child.kind} {child.name} is stale (hash {applied})")
            if child.kind == "Deployment":
                # Without spec.replicas in our manifest (autoscaling) the HPA owns the count.
                want = child.manifest["spec"].get("replicas", obj["spec"].get("replicas"))
                st = obj.get("status") or {}
                got = (st.get("replicas", 0), st.get("updatedReplicas", 0), st.get("readyReplicas", 0))
                if got != (want, want, want) and not (want == 0 and not any(got)):
                    problems.append(f"{name}: Deployment replicas/updated/ready {got}, want {want}")
                if status.get("readyReplicas", 0) != (st.get("readyReplicas") or 0):
                    problems.append(f"{name}: status.readyReplicas {status.get('readyReplicas')} != {st}")
    for key, obj in live.items():
        refs = obj["metadata"].get("ownerReferences") or []
        if any(r.get("controller") and r.get("kind") != "ModelDeployment" for r in refs):
            continue  # a Service's EndpointSlices carry its labels: the endpoint controller's, not ours
        if key not in claimed and not obj["metadata"].get("deletionTimestamp"):
            problems.append(f"leaked {key[0]} {key[1]} (owners {obj['metadata'].get('ownerReferences')})")
    return problems


def wait_converged(cluster: Cluster, namespace: str, *, timeout: float, what: str = "convergence") -> float:
    """Seconds until the namespace converged; fails listing what is still wrong."""
    start = time.monotonic()
    last: list[str] = []

    def probe() -> bool:
        nonlocal last
        last = convergence_problems(cluster, namespace)
        return not last

    wait_until(
        probe,
        timeout=timeout,
        interval=1.0,
        what=what,
        describe=lambda: f"{len(last)} problems:\n" + "\n".join(last[:40]),
    )
    return time.monotonic() - start


@contextlib.contextmanager
def running(op: OperatorProcess) -> Iterator[OperatorProcess]:
    op.start()
    try:
        yield op
    finally:
        op.stop()
