"""How API errors map to what the reconciler does: Invalid (report InvalidSpec), Transient (retry)."""

from __future__ import annotations

import json

import pytest

from modelserve.kube import Invalid, KubeError, NotFound, Transient, _error

pytestmark = pytest.mark.unit


def body(message: str, reason: str = "") -> bytes:
    return json.dumps({"kind": "Status", "message": message, "reason": reason}).encode()


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (404, "not found", NotFound),
        (422, "spec.template...: Invalid value", Invalid),
        (400, "bad request", Invalid),
        # Server-side apply of a manifest with a field the child's schema lacks: the request is wrong.
        (
            500,
            "failed to create typed patch object (ns/x; apps/v1, Kind=Deployment): "
            ".spec.template.spec.affinity.hostNetwork: field not declared in schema",
            Invalid,
        ),
        (500, "etcdserver: request timed out", Transient),
        (503, "the server is currently unable to handle the request", Transient),
        (409, "the object has been modified", Transient),
        (429, "too many requests", Transient),
        (0, "connection refused", Transient),
        (403, "forbidden", KubeError),
    ],
)
def test_error_kinds(status: int, message: str, kind: type[KubeError]) -> None:
    error = _error(status, "reason", body(message))
    assert type(error) is kind
    assert error.status == status
    assert error.message == message
