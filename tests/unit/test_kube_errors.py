"""How API errors map to what the reconciler does: Invalid (report InvalidSpec), Transient (retry)."""

from __future__ import annotations

import json

import pytest

from modelserve.kube_errors import Invalid, KubeError, NamespaceTerminating, NotFound, Transient
from modelserve.kube_errors import error_from_answer as _error

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


def test_a_create_in_a_terminating_namespace_is_its_own_error() -> None:
    payload = json.dumps(
        {
            "kind": "Status",
            "code": 403,
            "reason": "Forbidden",
            "message": 'deployments.apps "x" is forbidden: unable to create new content in namespace ml '
            "because it is being terminated",
            "details": {"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]},
        }
    ).encode()
    assert isinstance(_error(403, "Forbidden", payload), NamespaceTerminating)
    assert type(_error(403, "Forbidden", body("forbidden"))) is KubeError
