"""leader.py: acquiring, renewing, standing by, the fence (may_write) and releasing, on a fake Lease
store with optimistic concurrency (resourceVersion) and a virtual clock."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelserve.kube import Kube, KubeError, NotLeader, Transient
from modelserve.leader import LeaderElector, Timing, identity, lease_namespace
from modelserve.settings import Settings

pytestmark = pytest.mark.unit

Obj = dict[str, Any]
TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LeaseStore(Kube):
    """One Lease, as the API server keeps it: create fails when it exists, update needs the current
    resourceVersion; `down` makes every request fail like an unreachable server."""

    def __init__(self) -> None:
        self.lease: Obj | None = None
        self.rv = 0
        self.down = False
        self.writes = 0

    def _check(self) -> None:
        if self.down:
            raise Transient(0, "ConnectionError", "unreachable")

    def get_lease(self, namespace: str, name: str, timeout: float) -> Obj | None:
        self._check()
        return copy.deepcopy(self.lease)

    def create_lease(self, lease: Obj, timeout: float) -> Obj:
        self._check()
        if self.lease is not None:
            raise KubeError(409, "AlreadyExists", "exists")
        return self._store(lease)

    def update_lease(self, lease: Obj, timeout: float) -> Obj:
        self._check()
        assert self.lease is not None
        if lease["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise Transient(409, "Conflict", "the object has been modified")
        return self._store(lease)

    def _store(self, lease: Obj) -> Obj:
        self.rv += 1
        self.writes += 1
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.lease)


def elector(store: LeaseStore, clock: Clock, name: str) -> tuple[LeaderElector, list[str]]:
    calls: list[str] = []
    return (
        LeaderElector(
            store,
            namespace="ops",
            name="modelserve-operator",
            identity=name,
            timing=TIMING,
            on_started=lambda: calls.append("started"),
            on_stopped=lambda: calls.append("stopped"),
            clock=clock,
        ),
        calls,
    )


def holder(store: LeaseStore) -> str:
    assert store.lease is not None
    return str(store.lease["spec"]["holderIdentity"])


def test_the_first_replica_creates_the_lease_and_may_write_until_the_renew_deadline() -> None:
    store, clock = LeaseStore(), Clock()
    a, _ = elector(store, clock, "a")
    assert not a.may_write()  # never before holding the lease
    assert a.try_acquire_or_renew()
    a._set_leading(True)
    assert holder(store) == "a"
    assert store.lease is not None and store.lease["spec"]["leaseDurationSeconds"] == 15
    assert a.may_write() and a.role == "leader"
    clock.now += 9.9
    assert a.may_write()
    clock.now += 0.2  # 10.1 s after the renewal started: the fence is closed, lease or not
    assert not a.may_write() and a.role == "standby"


def test_a_standby_waits_a_whole_lease_duration_after_the_last_renewal_it_saw() -> None:
    store, clock = LeaseStore(), Clock()
    a, _ = elector(store, clock, "a")
    b, _ = elector(store, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # first sight of a's lease starts b's clock
    for _ in range(6):  # a renews every 2 s: b never gets it
        clock.now += 2
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    # a stops renewing (killed, paused, cut off). b saw the last change at this moment.
    clock.now += 14.9
    assert not b.try_acquire_or_renew()
    clock.now += 0.2
    assert b.try_acquire_or_renew()
    assert holder(store) == "b"
    assert store.lease is not None and store.lease["spec"]["leaseTransitions"] == 1
    # The fence of a closed long before b could take over: lease duration minus renew deadline.
    a._leading = True
    assert not a.may_write()


def test_a_leader_that_cannot_reach_the_server_stops_writing_within_the_renew_deadline() -> None:
    store, clock = LeaseStore(), Clock()
    a, calls = elector(store, clock, "a")
    assert a.try_acquire_or_renew()
    a._set_leading(True)
    store.down = True
    for _ in range(4):
        clock.now += 2
        assert not a.try_acquire_or_renew()
    assert a.may_write()  # 8 s: still within the deadline
    clock.now += 2.5
    assert not a.may_write()
    store.down = False
    assert a.try_acquire_or_renew()  # nobody took it meanwhile: the same holder renews
    assert a.may_write()
    assert calls == ["started"]


def test_conflicting_attempts_leave_one_holder() -> None:
    store, clock = LeaseStore(), Clock()
    a, _ = elector(store, clock, "a")
    b, _ = elector(store, clock, "b")
    assert a.try_acquire_or_renew()
    clock.now += 20  # expired for b
    assert not b.try_acquire_or_renew()  # b first sees the lease now: its own clock starts
    clock.now += 16
    stale = store.get_lease("ops", "modelserve-operator", 1)
    assert a.try_acquire_or_renew()  # a renews between b's read and b's write
    assert stale is not None
    with pytest.raises(Transient):
        store.update_lease(stale, 1)
    assert not b.try_acquire_or_renew()  # b sees a fresh renewal and waits again
    assert holder(store) == "a"


def test_release_hands_the_lease_to_a_standby_at_once() -> None:
    store, clock = LeaseStore(), Clock()
    a, _ = elector(store, clock, "a")
    b, _ = elector(store, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a._release()
    assert holder(store) == ""
    assert b.try_acquire_or_renew()  # no lease duration to wait out
    assert holder(store) == "b"


def test_identity_and_namespace_fall_back_to_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "modelserve-operator-7d9f-abcde")
    monkeypatch.setenv("POD_NAMESPACE", "modelserve-system")
    assert identity(Settings()) == "modelserve-operator-7d9f-abcde"
    assert identity(Settings(identity="me")) == "me"
    assert lease_namespace(Settings()) == "modelserve-system"
    assert lease_namespace(Settings(lease_namespace="ops")) == "ops"
    monkeypatch.delenv("POD_NAME")
    monkeypatch.delenv("POD_NAMESPACE")
    assert identity(Settings()) != identity(Settings())  # hostname plus a random suffix
    assert lease_namespace(Settings(namespaces=("ml", "other"))) == "ml"
    assert lease_namespace(Settings()) == "default"


def test_lease_timing_must_leave_a_margin() -> None:
    with pytest.raises(ValueError, match="lease_duration_seconds > renew_deadline_seconds"):
        Settings(lease_duration_seconds=10, renew_deadline_seconds=10)
    with pytest.raises(ValueError, match="retry_period_seconds"):
        Settings(renew_deadline_seconds=2, retry_period_seconds=2)


class RecordingClient:
    """The ApiClient surface Kube._call uses: serialises, and records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def param_serialize(self, **kwargs: Any) -> tuple[str, str, dict[str, str], object, None]:
        return kwargs["method"], kwargs["resource_path"], {}, kwargs.get("body"), None

    def call_api(self, method: str, url: str, **_: Any) -> Any:
        self.sent.append(f"{method} {url}")

        class Response:
            status = 200
            reason = "OK"

            def read(self) -> bytes:
                return b"{}"

        return Response()


def test_the_fence_refuses_every_write_before_it_is_sent_but_never_a_read_or_the_lease() -> None:
    api_client = RecordingClient()
    leading = [False]
    kube = Kube(api_client, may_write=lambda: leading[0])  # type: ignore[arg-type]
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ml"}}
    for write in (
        lambda: kube.apply(manifest),
        lambda: kube.delete("ConfigMap", "ml", "a", "uid"),
        lambda: kube.patch_status("ml", "a", {}),
    ):
        with pytest.raises(NotLeader):
            write()
    assert api_client.sent == []
    kube.get("ConfigMap", "ml", "a")
    kube.list("Pod", "ml")
    kube.get_lease("ml", "l", 1)
    kube.update_lease({"metadata": {"name": "l", "namespace": "ml"}}, 1)
    assert len(api_client.sent) == 4
    leading[0] = True
    kube.apply(manifest)
    assert api_client.sent[-1].startswith("PATCH /api/v1/namespaces/ml/configmaps/a")


def test_a_write_answered_after_the_fence_closed_is_reported_late_and_a_timely_one_is_not() -> None:
    api_client = RecordingClient()
    leading = [True]
    late: list[tuple[str, str]] = []

    class PausedDuringSend(RecordingClient):
        def call_api(self, method: str, url: str, **kwargs: Any) -> Any:
            leading[0] = False  # the process froze after the check and woke after its lease margin
            return super().call_api(method, url, **kwargs)

    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ml"}}
    kube = Kube(api_client, may_write=lambda: leading[0], on_late=lambda v, r: late.append((v, r)))  # type: ignore[arg-type]
    kube.apply(manifest)
    kube.get("ConfigMap", "ml", "a")
    assert late == []
    paused = PausedDuringSend()
    kube = Kube(paused, may_write=lambda: leading[0], on_late=lambda v, r: late.append((v, r)))  # type: ignore[arg-type]
    kube.patch_status("ml", "a", {})
    assert len(paused.sent) == 1, "the write was sent: it passed the fence before the pause"
    assert late == [("patch", "modeldeployments/status")]
