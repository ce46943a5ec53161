#!/usr/bin/env python3
"""Calls a served model over gRPC with TF Serving's own client protos (tensorflow-serving-api).

    kubectl port-forward svc/half-plus-two 8500:8500 &
    python examples/clients/predict_grpc.py localhost:8500 half-plus-two 1 2 5
    # {'y': [2.5, 3.0, 4.5]}

Needs `pip install tensorflow-serving-api grpcio` (the dev virtualenv has both). The model name is the
ModelDeployment's `status.modelName` (its name, unless spec.model.name says otherwise).
"""

from __future__ import annotations

import argparse
import array
from typing import Any


def predict(
    target: str,
    model: str,
    values: list[float],
    *,
    signature: str = "serving_default",
    input_name: str = "x",
    version: int | None = None,
    timeout: float = 10.0,
) -> dict[str, list[float]]:
    import grpc
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request: Any = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[input_name].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(values))]
            ),
            float_val=values,
        )
    )
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return {name: _floats(tensor) for name, tensor in response.outputs.items()}


def _floats(tensor: Any) -> list[float]:
    """TF Serving answers in float_val; a tensor packed into tensor_content is read as float32 too."""
    if tensor.tensor_content:
        return array.array("f", tensor.tensor_content).tolist()
    return list(tensor.float_val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="host:port of the gRPC port (8500)")
    parser.add_argument("model", help="TF Serving model name")
    parser.add_argument("values", type=float, nargs="+")
    parser.add_argument("--version", type=int)
    args = parser.parse_args()
    print(predict(args.target, args.model, args.values, version=args.version))


if __name__ == "__main__":
    main()
