"""KEDA's external scaler protocol (externalscaler.proto in github.com/kedacore/keda/v2, package
externalscaler), described here in code instead of generated from the .proto: five small messages
and one service, so the activator needs only the protobuf runtime, no protoc step."""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE: Final = "externalscaler.ExternalScaler"

_F = descriptor_pb2.FieldDescriptorProto
_FIELDS: Final[dict[str, list[tuple[str, int, int, str | None, bool]]]] = {
    # message: [(field, number, type, message type, repeated)]
    "ScaledObjectRef": [
        ("name", 1, _F.TYPE_STRING, None, False),
        ("namespace", 2, _F.TYPE_STRING, None, False),
        ("scalerMetadata", 3, _F.TYPE_MESSAGE, ".externalscaler.ScaledObjectRef.ScalerMetadataEntry", True),
    ],
    "IsActiveResponse": [("result", 1, _F.TYPE_BOOL, None, False)],
    "MetricSpec": [
        ("metricName", 1, _F.TYPE_STRING, None, False),
        ("targetSize", 2, _F.TYPE_INT64, None, False),
        ("targetSizeFloat", 3, _F.TYPE_DOUBLE, None, False),
    ],
    "GetMetricSpecResponse": [("metricSpecs", 1, _F.TYPE_MESSAGE, ".externalscaler.MetricSpec", True)],
    "GetMetricsRequest": [
        ("scaledObjectRef", 1, _F.TYPE_MESSAGE, ".externalscaler.ScaledObjectRef", False),
        ("metricName", 2, _F.TYPE_STRING, None, False),
    ],
    "MetricValue": [
        ("metricName", 1, _F.TYPE_STRING, None, False),
        ("metricValue", 2, _F.TYPE_INT64, None, False),
        ("metricValueFloat", 3, _F.TYPE_DOUBLE, None, False),
    ],
    "GetMetricsResponse": [("metricValues", 1, _F.TYPE_MESSAGE, ".externalscaler.MetricValue", True)],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="externalscaler.proto", package="externalscaler", syntax="proto3"
    )
    for name, fields in _FIELDS.items():
        message = proto.message_type.add(name=name)
        for field, number, kind, type_name, repeated in fields:
            entry = message.field.add(
                name=field,
                number=number,
                type=kind,
                label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
                json_name=field,
            )
            if type_name:
                entry.type_name = type_name
        if name == "ScaledObjectRef":
            # map<string, string> is a nested entry message with map_entry set.
            entry_type = message.nested_type.add(name="ScalerMetadataEntry")
            entry_type.options.map_entry = True
            entry_type.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
            entry_type.field.add(name="value", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"externalscaler.{name}"))


ScaledObjectRef: Final = _message("ScaledObjectRef")
IsActiveResponse: Final = _message("IsActiveResponse")
MetricSpec: Final = _message("MetricSpec")
GetMetricSpecResponse: Final = _message("GetMetricSpecResponse")
GetMetricsRequest: Final = _message("GetMetricsRequest")
MetricValue: Final = _message("MetricValue")
GetMetricsResponse: Final = _message("GetMetricsResponse")
