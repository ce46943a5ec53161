"""Hostile and odd input: hypothesis generates ModelDeployments near the edge of the API (every field,
bounds, unicode, names of maximum length, lists at their maximum) and sends them to the API server.
Whatever the server accepts, the running operator must answer without an exception: a status at the
object's generation whose Ready condition is True or names a failure reason (InvalidSpec when the spec
itself is at fault), never an endless "still creating".

Each hypothesis example is a batch of objects created at once, so the operator works on many in
parallel and one example costs one rollout wait, not one per object.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit import Cluster, wait_until
from modelserve import api
from modelserve.status import Reason

pytestmark = pytest.mark.integration

JSON = dict[str, Any]
WAITING = {Reason.CREATING, Reason.ROLLING_OUT}
ANSWERS = {v for k, v in vars(Reason).items() if k.isupper()} - WAITING

# --- strategies --------------------------------------------------------------------------------------

texts = st.text(max_size=60)  # any unicode but lone surrogates (JSON cannot carry those)
label_keys = st.from_regex(
    r"\A[a-z]([-a-z0-9.]{0,20}[a-z0-9])?(/[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,20}[a-zA-Z0-9])?)?\Z"
)
label_values = st.from_regex(r"\A(([A-Za-z0-9][-A-Za-z0-9_.]{0,20})?[A-Za-z0-9])?\Z")
quantities = st.sampled_from(
    ["10m", "0.5", "1", "2", "+1", ".5", "1e3", "1Ki", "16Mi", "1Gi", "100Gi", "0", "1E2"]
)
uris = st.sampled_from(
    [
        "gs://models/resnet",
        "gs://a-b.c_d/very/deep/path/" + "x" * 300,
        "s3://bucket-1/m",
        "https://example.invalid/model.tar.gz",
        "http://10.0.0.1:8080/m.zip?sig=%2F",
        "pvc://claim/path/to/model",
        "pvc://claim",
    ]
)
garbage: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | texts,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "key", "operator"]), inner)
    ),
    max_leaves=6,
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def version_fields(draw: st.DrawFn) -> JSON:
    policy = draw(
        st.sampled_from(["none", "latest", "all", "specific"]),
    )
    out: JSON = {}
    versions = draw(st.lists(st.integers(0, 2**31), min_size=1, max_size=64, unique=True))
    if policy == "latest":
        out["versionPolicy"] = {"latest": {"count": draw(st.integers(1, 100))}}
    elif policy == "all":
        out["versionPolicy"] = {"all": {}}
    elif policy == "specific":
        out["versionPolicy"] = {"specific": {"versions": versions}}
    if draw(st.booleans()):
        labels = st.from_regex(r"\A[a-zA-Z0-9_]{1,30}\Z")
        out["versionLabels"] = draw(st.dictionaries(labels, st.sampled_from(versions), max_size=16))
    return out


@st.composite
def serving_fields(draw: st.DrawFn) -> JSON:
    serving: JSON = {}
    if draw(st.booleans()):
        serving["env"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,40}\Z")},
                    optional={
                        "value": st.text(max_size=200),
                        "valueFrom": st.sampled_from(
                            [
                                {"fieldRef": {"fieldPath": "metadata.name"}},
                                {"secretKeyRef": {"name": "storage", "key": "token"}},
                                {"configMapKeyRef": {"name": "absent", "key": "k", "optional": True}},
                            ]
                        )
                        | garbage,
                    },
                ),
                max_size=64,
                unique_by=lambda e: e["name"],
            )
        )
    if draw(st.booleans()):
        serving["extraArgs"] = draw(
            st.lists(st.from_regex(r"\A--[a-z][a-z0-9_]{0,20}=\Z").map(lambda f: f + "v"), max_size=32)
        )
    if draw(st.booleans()):
        size = draw(st.integers(1, 64))
        serving["batching"] = {"maxBatchSize": size, "batchTimeoutMicros": draw(st.integers(0, 10_000_000))}
        if draw(st.booleans()):
            # Strictly increasing, as the CRD requires (TF Serving refuses anything else).
            smaller = sorted(draw(st.sets(st.integers(1, size - 1), max_size=8))) if size > 1 else []
            serving["batching"]["allowedBatchSizes"] = [*smaller, size]
    if draw(st.booleans()):
        serving["warmup"] = True
    if draw(st.booleans()):
        serving["image"] = draw(
            st.sampled_from(["busybox", "registry.invalid/x:1", "a/b@sha256:" + "0" * 64])
        )
    return serving


@st.composite
def specs(draw: st.DrawFn) -> JSON:
    model: JSON = {"storageUri": draw(uris), **draw(version_fields())}
    if draw(st.booleans()):
        model["name"] = draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z"))
    if draw(st.booleans()) and not model["storageUri"].startswith("pvc://"):
        model["credentialsSecret"] = "storage"
    spec: JSON = {"model": model, "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}

    serving = draw(serving_fields())
    if serving:
        spec["serving"] = serving

    if draw(st.booleans()):
        low = draw(st.integers(1, 3))
        autoscaling: JSON = {"minReplicas": low, "maxReplicas": draw(st.integers(low, 5))}
        if draw(st.booleans()):
            autoscaling["targetCPUUtilization"] = draw(st.integers(1, 100))
        if draw(st.booleans()):
            autoscaling["metrics"] = [draw(garbage.filter(lambda g: isinstance(g, dict)) | st.just({}))]
        if draw(st.booleans()):
            autoscaling["behavior"] = draw(
                st.dictionaries(st.sampled_from(["scaleUp", "scaleDown"]), garbage)
            )
        spec["autoscaling"] = autoscaling
    else:
        spec["replicas"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        spec["resources"] = {
            "requests": draw(
                st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage"]), quantities)
            ),
            "limits": draw(st.dictionaries(st.sampled_from(["cpu", "memory"]), quantities)),
        }
    if draw(st.booleans()):
        spec["gpu"] = {"count": draw(st.integers(1, 16))}
        if draw(st.booleans()):
            spec["gpu"]["product"] = draw(
                st.sampled_from(["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3", "none"])
            )
    if draw(st.booleans()):
        spec["scheduling"] = {
            "nodeSelector": draw(st.dictionaries(label_keys, label_values, max_size=4)),
            "tolerations": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "key": label_keys,
                            "operator": st.sampled_from(["Exists", "Equal"]),
                            "value": label_values,
                            "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
                        },
                    ),
                    max_size=4,
                )
            ),
            "affinity": draw(st.just({}) | garbage.filter(lambda g: isinstance(g, dict))),
        }
        if draw(st.booleans()):
            spec["scheduling"]["priorityClassName"] = draw(
                st.sampled_from(["absent-class", "system-cluster-critical"])
            )
    if draw(st.booleans()):
        spec["service"] = {
            "type": draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"])),
            "annotations": draw(st.dictionaries(label_keys, st.text(max_size=300), max_size=8)),
        }
    if draw(st.booleans()):
        spec["networkPolicy"] = {
            "allowedClients": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "namespaces": st.lists(
                                st.from_regex(r"\A[a-z0-9]{1,10}\Z"), min_size=1, max_size=3
                            ),
                            "podLabels": st.dictionaries(label_keys, label_values, max_size=3),
                        },
                    ),
                    max_size=4,
                )
            )
        }
    if draw(st.booleans()):
        spec["suspend"] = True
    return spec


_counter = itertools.count()


def unique_name(drawn: str) -> str:
    stem = f"f{next(_counter)}-"
    return (stem + drawn)[: max(len(drawn), len(stem) + 1)]


@st.composite
def model_deployments(draw: st.DrawFn) -> JSON:
    # Only the length is drawn; unique_name() makes it unique when the example runs.
    metadata: JSON = {"name": "x" * draw(st.integers(1, api.MAX_NAME_LENGTH))}
    if draw(st.booleans()):
        metadata["annotations"] = {"example.com/note": draw(st.text(max_size=500)), "ünïcødé.example/x": "y"}
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(label_keys, label_values, max_size=5))
    return {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": metadata, "spec": draw(specs())}


# --- the test ------------------------------------------------------------------------------------------


class _Errors(logging.Handler):
    """Collects the operator's errors (its loggers only; kopf's retry chatter is not ours)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@pytest.fixture
def operator_errors() -> Iterator[_Errors]:
    handler = _Errors()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("modelserve")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def answer(cluster: Cluster, namespace: str, names: list[str]) -> dict[str, JSON] | None:
    items = cluster.kubectl_json("get", "mdep", "-n", namespace)["items"]
    out = {}
    for md in items:
        if md["metadata"]["name"] not in names:
            continue
        status = md.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        if status.get("observedGeneration") != md["metadata"]["generation"] or not ready:
            return None
        if ready["status"] != "True" and ready["reason"] in WAITING:
            return None
        out[md["metadata"]["name"]] = ready
    return out if len(out) == len(names) else None


def run_fuzz(cluster: Cluster, namespace: str, errors: _Errors, max_examples: int, batch: int) -> JSON:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=cluster.kubeconfig)
    objects = client.CustomObjectsApi(api_client)
    tally: JSON = {"sent": 0, "refused": 0, "accepted": 0, "reasons": {}}
    cluster.kubectl(
        "create", "secret", "generic", "storage", "-n", namespace, "--from-literal=token=t"
    )  # fmt: skip

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
        print_blob=True,
    )
    @given(st.lists(model_deployments(), min_size=batch // 2, max_size=batch))
    def example(bodies: list[JSON]) -> None:
        accepted = []
        for body in bodies:
            body["metadata"]["name"] = unique_name(body["metadata"]["name"])
            tally["sent"] += 1
            try:
                objects.create_namespaced_custom_object(
                    api.GROUP, api.VERSION, namespace, api.PLURAL, body, field_validation="Strict"
                )
            except client.ApiException as exc:
                assert exc.status == 422, (exc.status, exc.body, json.dumps(body))
                tally["refused"] += 1
                continue
            accepted.append(body["metadata"]["name"])
        tally["accepted"] += len(accepted)
        try:
            if accepted:
                got = wait_until(
                    lambda: answer(cluster, namespace, accepted),
                    timeout=120,
                    what=f"an answer for {accepted}",
                    describe=lambda: cluster.kubectl("get", "mdep", "-n", namespace, "-o", "json").stdout[
                        -6000:
                    ],
                )
                for name, ready in got.items():
                    tally["reasons"][ready["reason"]] = tally["reasons"].get(ready["reason"], 0) + 1
                    assert ready["reason"] in ANSWERS | {Reason.READY}, (name, ready)
                    assert ready["status"] == "True" or ready["message"], (name, ready)
            assert not errors.records, errors.records[:3]
        finally:
            for name in accepted:
                objects.delete_namespaced_custom_object(api.GROUP, api.VERSION, namespace, api.PLURAL, name)

    started = time.monotonic()
    try:
        example()
    finally:
        api_client.close()
    tally["seconds"] = round(time.monotonic() - started)
    print(f"fuzz: {json.dumps(tally)}", file=sys.__stderr__)
    return tally


@pytest.mark.usefixtures("operator")
def test_generated_specs_get_an_answer_never_an_exception(
    cluster: Cluster, namespace: str, operator_errors: _Errors
) -> None:
    tally = run_fuzz(cluster, namespace, operator_errors, max_examples=15, batch=12)
    assert tally["accepted"] > 0


@pytest.mark.slow
@pytest.mark.usefixtures("operator")
def test_many_generated_specs_get_an_answer_never_an_exception(
    cluster: Cluster, namespace: str, operator_errors: _Errors
) -> None:
    tally = run_fuzz(cluster, namespace, operator_errors, max_examples=100, batch=20)
    assert tally["accepted"] > 100
