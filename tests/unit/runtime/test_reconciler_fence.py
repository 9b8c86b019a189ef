"""The reconciler's handling of fences (issue 16 item 5, review defects a, c, d): an unconfirmable fence is
decided on again in the same cycle (no extra interval and observation), a refused one withholds the
failover with one log line per change, and the fence notes stay bounded."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from coordinator.core import record as record_codec
from coordinator.core.model import ClusterRecord, FenceMiss, PodView, Policy, ReplicaMode, Role
from coordinator.edge.fence_client import FenceRefused, FenceUnconfirmable
from coordinator.runtime.reconciler import Coordinator
from tests.unit.planner.builders import ip, name, row

STRICT = ReplicaMode.STRICT_SYNC.value


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class World:
    """Three pods; memgraph-0 is MAIN until `main_down`; fencer answers with `fence_raises` (or fences)."""

    main_down: bool = False
    main_pod_ready: bool = True
    fence_raises: Exception | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    roles: dict[str, Role] = field(default_factory=lambda: {name(0): Role.MAIN, name(1): Role.REPLICA,
                                                            name(2): Role.REPLICA})

    # KubePort
    def list_pods(self) -> list[PodView]:
        return [PodView(name(i), i, ip(i), f"uid-{i}", ready=(i != 0 or self.main_pod_ready), phase="Running")
                for i in range(3)]

    def expected_replicas(self) -> int:
        return 3

    def patch_labels(self, pod: str, labels: Mapping[str, str | None]) -> None:
        self.calls.append(f"label {pod}")

    def emit_event(self, reason: str, message: str, pod: str = "", warning: bool = False) -> None:
        self.calls.append(f"event {reason}")

    # RecordPort
    def is_leader(self) -> bool:
        return True

    def lease_valid_for(self) -> float:
        return 10.0

    def read_annotations(self) -> dict[str, str]:
        return dict(self.annotations)

    def update_annotations(self, changes: Mapping[str, str | None]) -> bool:
        for k, v in changes.items():
            if v is None:
                self.annotations.pop(k, None)
            else:
                self.annotations[k] = v
        return True

    # FencePort
    def fence(self, pod: PodView, generation: int) -> str:
        self.calls.append(f"fence {pod.name} {generation}")
        if self.fence_raises is not None:
            raise self.fence_raises
        return "gone"

    # MemgraphFactory
    def __call__(self, pod: PodView) -> Client:
        return Client(self, pod.name)


@dataclass
class Client:
    world: World
    pod: str

    def role(self) -> Role:
        if self.pod == name(0) and self.world.main_down:
            self.world.calls.append("probe memgraph-0: no answer")
            raise ConnectionError("no handshake")
        return self.world.roles[self.pod]

    def replicas(self) -> list:
        return [row(1, STRICT), row(2)] if self.pod == name(0) else []

    def storage_info(self) -> None:
        return None

    def promote(self) -> None:
        self.world.calls.append(f"promote {self.pod}")
        self.world.roles[self.pod] = Role.MAIN

    def register(self, *args: object) -> None:
        self.world.calls.append(f"register on {self.pod}")

    def drop(self, *args: object) -> None:
        self.world.calls.append(f"drop on {self.pod}")

    def demote(self, port: int) -> None:
        self.world.calls.append(f"demote {self.pod}")

    def close(self) -> None:
        pass


def coordinator(world: World, clock: FakeClock) -> Coordinator:
    record = ClusterRecord(main=name(0), generation=3, sync_replica=name(1), sync_mode=STRICT)
    world.annotations = record_codec.encode(record)
    return Coordinator(name(1), world, world, world, Policy(), clock=clock, wall=clock, fencer=world)  # type: ignore[arg-type]


def lose_the_main(world: World, clock: FakeClock, c: Coordinator) -> None:
    """One healthy cycle, then memgraph-0 stops answering for longer than failoverAfter."""
    c.cycle()
    world.main_down = True
    c.cycle()
    clock.t += 6.0
    world.calls.clear()


def test_an_unconfirmable_fence_of_a_not_ready_pod_fails_over_in_the_same_cycle() -> None:
    world, clock = World(main_pod_ready=False), FakeClock()
    c = coordinator(world, clock)
    lose_the_main(world, clock, c)
    world.fence_raises = FenceUnconfirmable("agent of memgraph-0 did not answer (ReadTimeout)")
    c.cycle()
    assert world.calls.count("probe memgraph-0: no answer") == 1  # one observation, two decisions
    assert world.calls.index("fence memgraph-0 3") < world.calls.index("promote memgraph-1")
    assert "fence: unconfirmed (agent of memgraph-0 did not answer" in c.last_record.last_failover


def test_an_unconfirmable_fence_of_a_ready_pod_fails_nothing_over() -> None:
    world, clock = World(main_pod_ready=True), FakeClock()
    c = coordinator(world, clock)
    lose_the_main(world, clock, c)
    world.fence_raises = FenceUnconfirmable("agent of memgraph-0 did not answer (ReadTimeout)")
    c.cycle()
    c.cycle()  # within FENCE_READY_RETRY_S: not asked again
    assert world.calls.count("fence memgraph-0 3") == 1
    assert not any(call.startswith("promote") for call in world.calls)
    assert c.last_decision is not None
    assert "its pod is Ready and its agent did not confirm" in c.last_decision.verdict


def test_a_ready_pod_whose_agent_fences_is_failed_over() -> None:
    """A stopped Memgraph: its TCP port still accepts, its pod stays Ready, its agent kills it and says so."""
    world, clock = World(main_pod_ready=True), FakeClock()
    c = coordinator(world, clock)
    lose_the_main(world, clock, c)
    c.cycle()
    assert world.calls.index("fence memgraph-0 3") < world.calls.index("promote memgraph-1")
    assert c.last_record.main == name(1) and "fence: confirmed" in c.last_record.last_failover


def test_a_refused_fence_withholds_the_failover_and_logs_once_per_change(
        caplog: pytest.LogCaptureFixture) -> None:
    world, clock = World(main_pod_ready=False), FakeClock()
    c = coordinator(world, clock)
    lose_the_main(world, clock, c)
    world.fence_raises = FenceRefused("agent of memgraph-0 answered 409 main-healthy: it answers")
    caplog.set_level(logging.INFO, logger="coordinator.runtime.reconciler")
    for _ in range(3):
        c.cycle()
        clock.t += 2.0
    assert world.calls.count("fence memgraph-0 3") == 3
    assert not any(call.startswith("promote") or call == "label memgraph-0" for call in world.calls)
    assert c.last_decision is not None and c.last_decision.verdict.startswith("waiting: failover withheld")
    assert "409 main-healthy" in c.status()["cluster"]["verdict"]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len([m for m in lines if m.startswith("fence: ") and "failover withheld" in m]) == 1
    assert len([m for m in lines if m.startswith("verdict: waiting: failover withheld")]) == 1
    world.main_down = False  # its Memgraph answers the leader again: no fence asked, no longer withheld
    c.cycle()
    c.cycle()
    said = [r.getMessage() for r in caplog.records]
    released = [m for m in said if m.startswith("fence: ") and "no longer" in m]
    assert len(released) == 1 and c.observer.fence_refused == {}


def test_fence_notes_of_old_generations_are_pruned() -> None:
    world, clock = World(), FakeClock()
    c = coordinator(world, clock)
    c.observer.fence_unconfirmed = {name(2): FenceMiss("uid-2", 1, "old"),
                                    name(0): FenceMiss("uid-0", 3, "now")}
    c.cycle()
    assert c.observer.fence_unconfirmed == {name(0): FenceMiss("uid-0", 3, "now")}

