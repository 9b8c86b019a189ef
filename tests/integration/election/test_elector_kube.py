"""The elector with the real kubernetes client against the Kubernetes API emulator (sim.kube.server).

Timings are short (lease 2 s written in the Lease, renew deadline 1 s, retry 0.25 s, request timeout
0.2 s); every wait is bounded and every elector and the emulator are stopped on teardown.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from coordinator.core.identity import incarnation_identity
from coordinator.core.lease_rules import ElectionConfig
from coordinator.edge.election import LeaderElector
from coordinator.edge.lease_store import KubeLeaseStore, LeaseRecord, TransientError
from tests.support.logs import events
from tests.support.wait import poll

kube_server = pytest.importorskip("sim.kube.server")

CFG = ElectionConfig(2.0, 1.0, 0.25)
TIMEOUT = 0.2
TOL = 0.3  # scheduling and request latency on a loaded 2-core machine
STEP_S = 0.005  # how often a wait looks at the electors


@pytest.fixture
def emulator() -> Iterator[object]:
    emu = kube_server.KubeEmulator(host="127.0.0.1", port=0, token=None)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def electors(emulator) -> Iterator[Callable[..., LeaderElector]]:
    made: list[LeaderElector] = []

    def make(identity: str, start: bool = True, **kw) -> LeaderElector:
        store = KubeLeaseStore(emulator.api_client(user_agent=identity), "default", "memgraph-ha", TIMEOUT)
        e = LeaderElector(store, identity, CFG, **kw)
        made.append(e)
        if start:
            e.start()
        return e

    try:
        yield make
    finally:
        for e in made:
            e.stop(release=False, timeout_s=2.0)


def test_two_electors_exactly_one_leader(electors):
    a, b = electors("memgraph-0"), electors("memgraph-1")
    assert poll(lambda: a.is_leader() or b.is_leader(), 3.0, STEP_S)
    for _ in range(400):  # 2 s of samples
        assert a.is_leader() + b.is_leader() == 1
        time.sleep(0.005)
    leader, follower = (a, b) if a.is_leader() else (b, a)
    assert follower.leader_identity() == leader.identity


def test_release_lets_the_other_take_over_within_two_retry_periods(electors):
    a = electors("memgraph-0")
    assert poll(a.is_leader, 2.0, STEP_S)
    b = electors("memgraph-1")
    time.sleep(0.6)  # b is following
    t0 = time.monotonic()
    a.stop(release=True)
    t1 = poll(b.is_leader, 2.0, STEP_S)
    assert t1 is not None and t1.at - t0 <= 2 * CFG.retry_period_s


def test_kill_without_release_takeover_after_lease_duration(electors, emulator):
    a = electors("memgraph-0")
    assert poll(a.is_leader, 2.0, STEP_S)
    b = electors("memgraph-1")
    time.sleep(0.6)
    t0 = time.monotonic()
    a.stop(release=False)
    t1 = poll(b.is_leader, 5.0, STEP_S)
    assert t1 is not None
    assert CFG.written_duration_s - CFG.retry_period_s - 0.05 <= t1.at - t0 <= (
        CFG.written_duration_s + CFG.retry_period_s + TOL)
    assert emulator.get("Lease", "default", "memgraph-ha")["spec"]["leaseTransitions"] == 1


@pytest.mark.parametrize("mode", ["503", "refuse", "hang"])
def test_api_outage_longer_than_renew_deadline_leader_steps_down_at_deadline(electors, emulator, mode):
    a = electors("memgraph-0")
    assert poll(a.is_leader, 2.0, STEP_S)
    b = electors("memgraph-1")
    time.sleep(0.6)
    t0 = time.monotonic()
    emulator.outage(mode, 2.5)
    try:
        t1 = poll(lambda: not a.is_leader(), 2.0, 0.002)
        assert t1 is not None
        assert CFG.renew_deadline_s - CFG.retry_period_s - 0.05 <= t1.at - t0 <= CFG.renew_deadline_s + TOL
        assert a.lease_valid_for() == 0
        assert not b.is_leader()  # nobody can claim while the API is down
    finally:
        emulator.clear_outage()
    assert poll(lambda: a.is_leader() or b.is_leader(), 3.0, STEP_S)


def test_short_api_outage_keeps_the_leader(electors, emulator):
    a = electors("memgraph-0")
    assert poll(a.is_leader, 2.0, STEP_S)
    time.sleep(0.3)
    emulator.outage("503", 0.4)
    try:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            assert a.is_leader()
            time.sleep(0.01)
    finally:
        emulator.clear_outage()


def test_injected_conflict_and_forbidden_renewals_keep_the_leader(electors, emulator, caplog):
    caplog.set_level(logging.INFO, logger="coordinator.edge.election")
    a = electors("memgraph-0")
    assert poll(a.is_leader, 2.0, STEP_S)
    emulator.inject(409, verb="update", path_regex="/leases/", count=1)
    emulator.inject(403, verb="update", path_regex="/leases/", count=2)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        assert a.is_leader()
        time.sleep(0.01)
    errors = [f["error"] for f in events(caplog.records, "lease call failed")]
    assert any("Conflict" in e for e in errors) and any("HTTP 403" in e for e in errors)


def test_renew_time_with_zero_microseconds_is_accepted_by_the_microtime_parser(electors, emulator):
    whole = dt.datetime(2026, 11, 21, 23, 54, 59, tzinfo=dt.UTC)
    a = electors("memgraph-0", start=False, wall=lambda: whole)
    a.step()
    assert a.is_leader()
    spec = emulator.get("Lease", "default", "memgraph-ha")["spec"]
    assert spec["acquireTime"] == spec["renewTime"] == "2026-11-21T23:54:59.000000Z"


def test_cluster_record_survives_renewals_and_is_inherited_on_takeover(electors):
    a = electors("memgraph-0")
    assert poll(a.is_leader, 2.0, STEP_S)
    assert a.update_annotations({"memgraph-ha.io/main": "memgraph-0", "memgraph-ha.io/generation": "1"})
    b = electors("memgraph-1")
    assert not b.update_annotations({"memgraph-ha.io/main": "memgraph-1"})
    time.sleep(1.0)  # four renewals
    assert b.read_record(fresh=True)[0]["memgraph-ha.io/generation"] == "1"
    a.stop(release=True)
    assert poll(b.is_leader, 2.0, STEP_S)
    assert b.update_annotations({"memgraph-ha.io/main": "memgraph-1", "memgraph-ha.io/generation": "2"})
    annotations, _ = a.read_record(fresh=True)
    assert annotations == {"memgraph-ha.io/main": "memgraph-1", "memgraph-ha.io/generation": "2"}


def test_steady_state_requests_per_retry_period(electors):
    a, b = electors("memgraph-0"), electors("memgraph-1")
    assert poll(lambda: a.is_leader() or b.is_leader(), 3.0, STEP_S)
    time.sleep(0.3)
    for e in (a, b):
        e._store.calls.clear()
    time.sleep(2.0)
    for e in (a, b):
        sent = sum(e._store.calls.values())
        assert sent <= 2.0 / CFG.retry_period_s + 1


class PartitionedStore:
    """A Lease store behind a link that can be cut: while cut, every call waits its request timeout and
    fails as a silent partition does (no reset), then raises TransientError."""

    def __init__(self, inner: KubeLeaseStore) -> None:
        self.inner = inner
        self.request_timeout = inner.request_timeout
        self.name = inner.name
        self.cut = threading.Event()

    def _through(self, call: Callable[[], LeaseRecord]) -> LeaseRecord:
        if self.cut.is_set():
            time.sleep(self.request_timeout)
            raise TransientError("partitioned from the API server (test)")
        return call()

    def get(self) -> LeaseRecord:
        return self._through(self.inner.get)

    def create(self, record: LeaseRecord) -> LeaseRecord:
        return self._through(lambda: self.inner.create(record))

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        return self._through(lambda: self.inner.replace(record))


def test_a_recreated_pod_never_leads_beside_its_partitioned_earlier_incarnation(emulator):
    """Issue 16 item 3: memgraph-0 leads, is cut off from the API server, is force-deleted and recreated
    (same name, new UID) while the old incarnation keeps running; the partition heals. With identities per
    incarnation the new one never takes the old one's Lease as its own: whichever holds it, at no sampled
    instant do both lead. (With the pod name as identity, the new incarnation claims the
    Lease at once as its own and the healed old one renews it too: two leaders for good.)"""
    made: list[LeaderElector] = []

    def make(uid: str) -> tuple[LeaderElector, PartitionedStore]:
        identity = incarnation_identity("memgraph-0", uid)
        inner = KubeLeaseStore(emulator.api_client(user_agent=identity), "default", "memgraph-ha", TIMEOUT)
        store = PartitionedStore(inner)
        e = LeaderElector(store, identity, CFG)
        made.append(e)
        e.start()
        return e, store

    try:
        old, old_link = make("uid-old")
        assert poll(old.is_leader, 3.0, STEP_S)
        old_link.cut.set()  # the node is cut off; the kubelet stops reporting, the pod is force-deleted
        new, _ = make("uid-new")
        both: list[float] = []
        t0 = time.monotonic()
        healed = False
        while time.monotonic() - t0 < 3 * CFG.lease_duration_s:  # bounded: three lease durations
            if not healed and time.monotonic() - t0 > CFG.renew_deadline_s * 1.5:  # the old term ended
                old_link.cut.clear()  # the partition heals while the old incarnation still runs
                healed = True
            if old.is_leader() and new.is_leader():
                both.append(round(time.monotonic() - t0, 3))
            time.sleep(STEP_S)
        assert both == [], f"two incarnations of memgraph-0 led at once at {both[:5]} s"
        assert old.is_leader() != new.is_leader(), "exactly one incarnation leads at the end"
        assert old.leader_identity() == new.leader_identity() != ""
        assert old.identity != new.identity
    finally:
        for e in made:
            e.stop(release=False, timeout_s=2.0)
