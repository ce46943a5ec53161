"""Strict parsing of TF Serving config text with protobuf's own text-format parser.

For tests on both sides (the operator renders these files, the image mounts them). Not used inside
the image: it needs the `dev` extra (tensorflow-serving-api, which pulls in tensorflow, and
grpcio-tools).

- ModelServerConfig: TF Serving's own generated protos (`tensorflow-serving-api`).
- MonitoringConfig and BatchingParameters: no Python protos ship for them, so
  `proto/modelserve_tfserving_checks.proto` restates those messages and is compiled with
  grpcio-tools' bundled protoc at first use.
"""

from __future__ import annotations

import functools
import importlib.resources
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_CHECKS_PROTO = "modelserve_tfserving_checks.proto"


def parse_model_config(text: str) -> Any:
    """Parses `models.config` text into `tensorflow.serving.ModelServerConfig`; raises
    google.protobuf.text_format.ParseError on anything TF Serving would refuse to parse."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def parse_monitoring_config(text: str) -> Any:
    """Parses `monitoring.config` text into a MonitoringConfig message."""
    return _parse(text, "tensorflow.serving.MonitoringConfig")


def parse_batching_parameters(text: str) -> Any:
    """Parses `batching.config` text into a BatchingParameters message."""
    return _parse(text, "tensorflow.serving.BatchingParameters")


def _parse(text: str, full_name: str) -> Any:
    from google.protobuf import text_format

    return text_format.Parse(text, _message_class(full_name)())


@functools.cache
def _message_class(full_name: str) -> Any:
    from google.protobuf import (
        descriptor_pb2,
        descriptor_pool,
        message_factory,
        wrappers_pb2,  # noqa: F401  # registers wrappers.proto in the pool
    )

    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
    except KeyError:
        pass
    descriptors = descriptor_pb2.FileDescriptorSet()
    descriptors.ParseFromString(_compile())
    for file in descriptors.file:
        if file.name == _CHECKS_PROTO:
            pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


def _compile() -> bytes:
    """Runs grpcio-tools' protoc on the restated .proto and returns the FileDescriptorSet bytes."""
    import grpc_tools  # type: ignore[import-untyped]

    proto_dir = Path(__file__).parent / "proto"
    well_known = importlib.resources.files(grpc_tools) / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "checks.pb"
        cmd = [
            sys.executable, "-m", "grpc_tools.protoc",
            f"--proto_path={proto_dir}", f"--proto_path={well_known}",
            f"--descriptor_set_out={out}", _CHECKS_PROTO,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"protoc failed on {_CHECKS_PROTO}: {result.stderr.strip()}")
        return out.read_bytes()
