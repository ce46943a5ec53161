"""`modelserve run` (the operator) and `modelserve render` (a ModelDeployment's children as YAML)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from modelserve import logs
from modelserve import settings as settings_module


def configure_run(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    parser.add_argument("--cpu-image", help="default serving image for CPU models")
    parser.add_argument("--gpu-image", help="default serving image for GPU models")
    parser.add_argument("--resync-seconds", type=float, help="re-apply every ModelDeployment this often")
    parser.add_argument("--workers", type=int, help="ModelDeployments reconciled at once")
    parser.add_argument("--metrics-port", type=int, help="port of /metrics (0: off)")
    parser.add_argument("--metrics-address", help="address /metrics listens on (default 0.0.0.0)")
    parser.add_argument("--health-port", type=int, help="port of /healthz (0: off)")
    parser.add_argument("--json-logs", action="store_true", default=None, help="log JSON lines")
    election = parser.add_argument_group("leader election (coordination.k8s.io/v1 Lease)")
    election.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write only while holding the Lease; standbys keep watching (default: on)",
    )
    election.add_argument("--lease-name", help="name of the Lease (default modelserve-operator)")
    election.add_argument(
        "--lease-namespace", help="namespace of the Lease (default: POD_NAMESPACE, else the first -n)"
    )
    election.add_argument("--lease-duration-seconds", type=float, help="standbys wait this long (10)")
    election.add_argument(
        "--renew-deadline-seconds", type=float, help="a leader stops writing after this long unrenewed (7)"
    )
    election.add_argument("--retry-period-seconds", type=float, help="renew/acquire attempts this often (2)")
    election.add_argument("--identity", help="this replica's name in the Lease (default: POD_NAME)")
    parser.add_argument(
        "--prometheus-url",
        help="Prometheus scraping the models, queried by KEDA for load targets and by the rollout analysis",
    )
    parser.add_argument(
        "--sync-health-seconds",
        type=float,
        help="with --prometheus-url: ask it this often whether per-pod model syncs reach the store (30)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {
        "cpu_image": args.cpu_image,
        "gpu_image": args.gpu_image,
        "resync_seconds": args.resync_seconds,
        "workers": args.workers,
        "metrics_port": args.metrics_port,
        "metrics_address": args.metrics_address,
        "health_port": args.health_port,
        "json_logs": args.json_logs,
        "prometheus_url": args.prometheus_url,
        "sync_health_seconds": args.sync_health_seconds,
        "namespaces": tuple(args.namespace) or None,
        "leader_election": args.leader_election,
        "lease_name": args.lease_name,
        "lease_namespace": args.lease_namespace,
        "lease_duration_seconds": args.lease_duration_seconds,
        "renew_deadline_seconds": args.renew_deadline_seconds,
        "retry_period_seconds": args.retry_period_seconds,
        "identity": args.identity,
    }
    try:
        settings = settings_module.from_env(**overrides)
    except ValueError as exc:
        print(f"modelserve run: invalid settings: {exc}", file=sys.stderr)
        return 2
    # The kopf startup handler reads the settings back from the environment, so `kopf run -m
    # modelserve.handlers` and `modelserve run` behave the same.
    for field, value in settings.model_dump().items():
        key = settings_module.ENV_PREFIX + field.upper()
        os.environ[key] = ",".join(value) if isinstance(value, tuple) else str(value)
    logs.configure(settings.json_logs, args.verbose)

    import kopf

    import modelserve.handlers  # noqa: F401  (registers the handlers)

    kopf.run(
        # kopf's peering is not leader election (equal peers all pause); ours is a Lease (leader.py).
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
    )
    return 0


def configure_render(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a ModelDeployment manifest (YAML or JSON); '-' for stdin")
    parser.add_argument("-n", "--namespace", default="default", help="namespace when the manifest has none")


def render(args: argparse.Namespace) -> int:
    """Prints the children the operator would apply, for review or for applying them by hand."""
    import pydantic
    import yaml

    from modelserve import api, builders

    if args.file == "-":
        text = sys.stdin.read()
    else:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    settings = settings_module.from_env()
    children: list[dict[str, Any]] = []
    for body in yaml.safe_load_all(text):
        if not body:
            continue
        body.setdefault("metadata", {}).setdefault("namespace", args.namespace)
        body["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000000")
        try:
            md = api.parse(body)
        except pydantic.ValidationError as exc:
            print(f"modelserve render: {body['metadata'].get('name', '?')}: {exc}", file=sys.stderr)
            return 1
        children.extend(c.manifest for c in builders.desired_children(md, settings) if c.manifest)
    sys.stdout.write(yaml.safe_dump_all(children, sort_keys=False))
    return 0


def configure_activator(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind-address", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--rest-port", type=int, default=8501, help="REST port (TF Serving's)")
    parser.add_argument("--grpc-port", type=int, default=8500, help="gRPC port (TF Serving's)")
    parser.add_argument("--scaler-port", type=int, default=9091, help="KEDA external scaler (gRPC) port")
    parser.add_argument("--metrics-port", type=int, default=9090, help="/metrics and /healthz port")
    parser.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster, then KUBECONFIG)")
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "modelserve-system"),
        help="the activator's namespace, where replicas share wakes as Leases (default: POD_NAMESPACE)",
    )
    parser.add_argument("--hold-timeout", type=float, default=60.0, help="seconds a request waits for a pod")
    parser.add_argument("--queue-size", type=int, default=100, help="requests held per model at most")
    parser.add_argument("--retry-after", type=int, default=10, help="Retry-After of a 503, seconds")
    parser.add_argument("--upstream-rest-port", type=int, default=8501, help="the pods' REST port")
    parser.add_argument("--upstream-grpc-port", type=int, default=8500, help="the pods' gRPC port")


def activator(args: argparse.Namespace) -> int:
    from modelserve.activator.proxy import Options
    from modelserve.activator.server import Config, main

    options = Options(
        hold_seconds=args.hold_timeout,
        queue_size=args.queue_size,
        retry_after_seconds=args.retry_after,
        upstream_rest_port=args.upstream_rest_port,
        upstream_grpc_port=args.upstream_grpc_port,
    )
    config = Config(
        bind=args.bind_address,
        rest_port=args.rest_port,
        grpc_port=args.grpc_port,
        scaler_port=args.scaler_port,
        metrics_port=args.metrics_port,
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        options=options,
    )
    return main(config)
