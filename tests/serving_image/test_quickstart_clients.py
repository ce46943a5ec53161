"""The quickstart's scripts work: make_half_plus_two.py writes a SavedModel in the layout the serving
image accepts that computes 0.5x + 2, and predict_grpc.py calls it through TF Serving's own
PredictionService protos (served here by an in-process gRPC server running that SavedModel, as
tensorflow_model_server would; the real binary is not on this machine)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kit import REPO
from modelserve_serving.layout import validate_dir

CLIENTS = REPO / "examples" / "clients"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, CLIENTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def half_plus_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("models") / "half_plus_two"
    _load("make_half_plus_two").make(base)
    return base


def test_the_model_has_the_serving_layout_and_computes_half_plus_two(half_plus_two: Path) -> None:
    import tensorflow as tf

    assert validate_dir(half_plus_two) == [1]
    signature = tf.saved_model.load(str(half_plus_two / "1")).signatures["serving_default"]
    assert signature(x=tf.constant([1.0, 2.0, 5.0]))["y"].numpy().tolist() == [2.5, 3.0, 4.5]


@pytest.fixture
def prediction_server(half_plus_two: Path) -> Iterator[tuple[str, list[Any]]]:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    signature = tf.saved_model.load(str(half_plus_two / "1")).signatures["serving_default"]
    seen: list[Any] = []

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
        def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802 (the proto's name)
            seen.append(request)
            if request.model_spec.name != "half-plus-two":
                context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            for name, value in signature(**inputs).items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        server.stop(grace=None)


def test_predict_grpc_calls_the_prediction_service(prediction_server: tuple[str, list[Any]]) -> None:
    import grpc

    target, seen = prediction_server
    client = _load("predict_grpc")
    assert client.predict(target, "half-plus-two", [1.0, 2.0, 5.0], version=1) == {"y": [2.5, 3.0, 4.5]}
    (request,) = seen
    assert (request.model_spec.signature_name, request.model_spec.version.value) == ("serving_default", 1)
    with pytest.raises(grpc.RpcError) as info:
        client.predict(target, "resnet", [1.0])
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
