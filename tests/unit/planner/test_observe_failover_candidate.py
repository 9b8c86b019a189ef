"""Observer + planner: which replicas count as "ready at the last observation" of a MAIN that is then lost.

Found by `make bench`: under a steady writer the leader's last look at the MAIN often catches the STRICT_SYNC
replica mid-transaction (`replicating`); the failover was then refused ("sync replica ... was not ready at
the last observation") and the cluster stayed without a MAIN for as long as the old MAIN stayed down.
`replicating` is in sync (ReplicaInfo.healthy); `invalid` (prior art 001 issue 5) is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import pytest

from coordinator.core.model import PodView, Promote, ReplicaInfo, Role, StorageInfo
from coordinator.core.planner import decide
from coordinator.edge.observe import Observer
from coordinator.ports import KubePort, MemgraphFactory
from tests.unit.planner.builders import POLICY, name, rec, row


@dataclass
class FakeMemgraph:
    role_: Role
    rows: list[ReplicaInfo] = field(default_factory=list)
    up: bool = True
    workers_busy: bool = False  # every mixed Bolt worker runs a long query (SHOW STORAGE INFO queues)

    def _check(self) -> None:
        if not self.up:
            raise ConnectionError("connection refused")

    def role(self) -> Role:
        self._check()
        return self.role_

    def replicas(self) -> list[ReplicaInfo]:
        self._check()
        return list(self.rows)

    def storage_info(self) -> StorageInfo:
        self._check()
        if self.workers_busy:
            raise TimeoutError("SHOW STORAGE INFO queued behind long queries")
        return StorageInfo(vertex_count=10)


class FakeKube:
    def __init__(self) -> None:
        self.ready = {name(i): True for i in range(3)}

    def list_pods(self) -> list[PodView]:
        return [PodView(name(i), i, ip=f"127.0.1.{i + 1}", uid=f"uid-{i}", ready=self.ready[name(i)],
                        phase="Running") for i in range(3)]

    def expected_replicas(self) -> int | None:
        return 3


def _observer(kube: FakeKube, mgs: dict[str, FakeMemgraph], now: list[float]) -> Observer:
    """An Observer on the fakes (they serve only the reads observe makes) and a hand-moved clock."""
    factory = cast(MemgraphFactory, lambda pod: mgs[pod.name])
    return Observer(cast(KubePort, kube), factory, probe_timeout_s=1.0, clock=lambda: now[0])


@pytest.mark.parametrize(("sync_status", "fails_over"), [("replicating", True), ("ready", True),
                                                         ("invalid", False)])
def test_main_lost_right_after_an_observation_of_its_sync_replica(sync_status: str, fails_over: bool) -> None:
    now = [100.0]
    kube = FakeKube()
    mgs = {
        name(0): FakeMemgraph(Role.MAIN, [row(1, "strict_sync", sync_status), row(2, "async", "ready")]),
        name(1): FakeMemgraph(Role.REPLICA),
        name(2): FakeMemgraph(Role.REPLICA),
    }
    observer = _observer(kube, mgs, now)
    policy = POLICY.__class__(**{**POLICY.__dict__, "failover_after_s": 2.0})
    record = rec(0, 1)
    try:
        observer.snapshot(record, name(1))  # the last look at the MAIN while it answers
        mgs[name(0)].up, kube.ready[name(0)] = False, False  # kill -9, pod NotReady
        now[0] = 100.5
        observer.snapshot(record, name(1))  # unreachable from now on
        now[0] = 103.0  # past failoverAfter
        snap = observer.snapshot(record, name(1))
    finally:
        observer.close()
    decision = decide(snap, record, policy)
    promoted = [a.pod for a in decision.actions if isinstance(a, Promote)]
    if fails_over:
        assert promoted == [name(1)], decision.verdict
        assert decision.verdict.startswith("failover:"), decision.verdict
    else:
        assert promoted == [], decision.verdict
        assert "no failover candidate" in decision.verdict, decision.verdict


def test_async_failover_pool_counts_a_replicating_replica() -> None:
    """With allowAsyncFailover, an ASYNC replica caught `replicating` is a candidate too (same rule)."""
    now = [100.0]
    kube = FakeKube()
    mgs = {
        name(0): FakeMemgraph(Role.MAIN, [row(1, "strict_sync", "invalid"), row(2, "async", "replicating")]),
        name(1): FakeMemgraph(Role.REPLICA),
        name(2): FakeMemgraph(Role.REPLICA),
    }
    observer = _observer(kube, mgs, now)
    policy = POLICY.__class__(**{**POLICY.__dict__, "failover_after_s": 2.0, "allow_async_failover": True})
    record = rec(0, 1)
    try:
        observer.snapshot(record, name(1))
        mgs[name(0)].up, kube.ready[name(0)] = False, False
        now[0] = 100.5
        observer.snapshot(record, name(1))
        now[0] = 103.0
        snap = observer.snapshot(record, name(1))
    finally:
        observer.close()
    assert snap.last_ready_replicas == (name(2),)
    decision = decide(snap, record, policy)
    assert [a.pod for a in decision.actions if isinstance(a, Promote)] == [name(2)], decision.verdict


def test_a_main_whose_mixed_workers_are_busy_is_reachable_with_unknown_storage() -> None:
    # issue 16 item 4: SHOW REPLICATION ROLE and SHOW REPLICAS run on Memgraph's high-priority worker;
    # SHOW STORAGE INFO waits for a mixed worker. Busy is slow, not unreachable.
    now = [100.0]
    mgs = {name(0): FakeMemgraph(Role.MAIN, workers_busy=True), name(1): FakeMemgraph(Role.REPLICA),
           name(2): FakeMemgraph(Role.REPLICA)}
    obs = _observer(FakeKube(), mgs, now)
    state = obs.snapshot(rec(), name(0)).instances[name(0)]
    assert state.reachable and state.role is Role.MAIN and state.storage is None
