"""KEDA for tests: the real operator and metrics adapter (built from github.com/kedacore/keda/v2 by
hack/cluster/build.sh, family `keda`), run as processes on this host against the test cluster.

    keda = start_keda(cluster, workdir)     # or the session fixture `keda` (tests/integration/conftest.py)
    keda.stop(); keda.start()               # "KEDA down" and back

What it sets up, as KEDA's own manifests would in a cluster:
- KEDA's CRDs from the module's config/crd/bases.
- TLS between the adapter and the operator's metrics gRPC service: a CA and one certificate (made with
  openssl here instead of KEDA's cert rotation, which wants a Secret volume), SANs for both Services.
- The external metrics API: an APIService v1beta1.external.metrics.k8s.io whose Service is an
  ExternalName Service pointing at 127.0.0.1; the API server resolves an ExternalName Service to
  that name (as kwokctl does for metrics-server), so the real HPA controller reads KEDA's metrics
  from the adapter process. The APIService reports Available only when that works.
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kit import REPO, Cluster, cache_root, pinned_versions, wait_until

BUILD_SCRIPT = REPO / "hack" / "cluster" / "build.sh"
NAMESPACE = "keda"
APISERVICE = "v1beta1.external.metrics.k8s.io"
ADAPTER_SERVICE = "keda-metrics-apiserver"
OPERATOR_SERVICE = "keda-operator"


def keda_dir() -> Path:
    """The family directory with keda-operator, keda-adapter and crds/, built on a cold cache."""
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "keda"], capture_output=True, text=True, timeout=3600, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster/build.sh keda failed:\n{proc.stdout}\n{proc.stderr}")
    family = cache_root() / "bin" / f"keda-{pinned_versions()['KEDA_VERSION']}"
    for item in ("keda-operator", "keda-adapter", "crds"):
        if not (family / item).exists():
            raise RuntimeError(f"{family / item} is missing after hack/cluster/build.sh keda")
    return family


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificates(directory: Path) -> None:
    """ca.crt, tls.crt and tls.key (KEDA's file names) valid for both KEDA Services and 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    sans = ",".join(
        [
            *(f"DNS:{svc}.{NAMESPACE}.svc" for svc in (OPERATOR_SERVICE, ADAPTER_SERVICE)),
            *(f"DNS:{svc}.{NAMESPACE}.svc.cluster.local" for svc in (OPERATOR_SERVICE, ADAPTER_SERVICE)),
            "DNS:localhost",
            "IP:127.0.0.1",
        ]
    )
    run = lambda *args: subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=KEDA test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={OPERATOR_SERVICE}.{NAMESPACE}.svc",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
    )
    (directory / "san.ext").write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth,clientAuth\n")
    run(
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "tls.crt",
    )


@dataclass
class Keda:
    cluster: Cluster
    workdir: Path
    family: Path
    grpc_port: int = field(default_factory=free_port)
    adapter_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def certs(self) -> Path:
        return self.workdir / "certs"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        env = {
            **self.cluster.env(),
            "WATCH_NAMESPACE": "",
            "POD_NAMESPACE": NAMESPACE,
            "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
            "KEDA_HTTP_DEFAULT_TIMEOUT": "3000",
        }
        self._spawn(
            "keda-operator",
            [
                str(self.family / "keda-operator"),
                f"--kubeconfig={self.cluster.kubeconfig}",
                "--leader-elect=false",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                f"--health-probe-bind-address=127.0.0.1:{free_port()}",
                f"--metrics-service-bind-address=127.0.0.1:{self.grpc_port}",
                f"--cert-dir={self.certs}",
                "--enable-cert-rotation=false",
                "--zap-log-level=info",
            ],
            env,
        )
        self._spawn(
            "keda-adapter",
            [
                str(self.family / "keda-adapter"),
                f"--lister-kubeconfig={self.cluster.kubeconfig}",
                f"--authentication-kubeconfig={self.cluster.kubeconfig}",
                f"--authorization-kubeconfig={self.cluster.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.adapter_port}",
                f"--cert-dir={self.certs}",
                f"--tls-cert-file={self.certs / 'tls.crt'}",
                f"--tls-private-key-file={self.certs / 'tls.key'}",
                f"--metrics-service-address=127.0.0.1:{self.grpc_port}",
                f"--metrics-service-grpc-authority={OPERATOR_SERVICE}.{NAMESPACE}.svc.cluster.local",
                f"--port={free_port()}",
                "--zap-log-level=info",
            ],
            env,
        )
        self.wait_available()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} (last 40 lines)\n"
            + "\n".join(path.read_text(errors="replace").splitlines()[-40:])
            for path in sorted(self.workdir.glob("*.log"))
        )

    def wait_available(self, timeout: float = 120.0) -> None:
        def available() -> bool:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited with {process.returncode}\n{self.logs()}")
            proc = self.cluster.kubectl("get", "apiservice", APISERVICE, "-o", "json", check=False)
            if proc.returncode != 0:
                return False
            conditions = json.loads(proc.stdout).get("status", {}).get("conditions") or []
            return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)

        wait_until(
            available,
            timeout=timeout,
            interval=1.0,
            what=f"APIService {APISERVICE} Available",
            describe=self.logs,
        )


def start_keda(cluster: Cluster, workdir: Path) -> Keda:
    family = keda_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    keda = Keda(cluster=cluster, workdir=workdir, family=family)
    _certificates(keda.certs)
    install_crds(cluster, family)
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    ca = (keda.certs / "ca.crt").read_bytes()
    import base64

    manifests = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": ADAPTER_SERVICE, "namespace": NAMESPACE},
                "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": APISERVICE},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "caBundle": base64.b64encode(ca).decode(),
                    "service": {"name": ADAPTER_SERVICE, "namespace": NAMESPACE, "port": keda.adapter_port},
                },
            },
        ],
    }
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=modelserve-tests",
        "-f",
        "-",
        input=json.dumps(manifests),
    )
    keda.start()
    return keda


def install_crds(cluster: Cluster, family: Path | None = None) -> None:
    family = family or keda_dir()
    files = sorted((family / "crds").glob("keda.sh_*.yaml"))
    assert files, f"no KEDA CRDs in {family / 'crds'}: rebuild the keda family (hack/cluster/build.sh keda)"
    for path in files:
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=modelserve-tests", "-f", str(path)
        )
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/scaledobjects.keda.sh")
