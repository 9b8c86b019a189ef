"""The leader's side of fencing: coordinator.edge.fence_client sorts the agent's answers, and the
executor runs a failover's actions only past a confirmed fence (issue 16 item 5)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import responses

from coordinator.core.model import (
    FENCE_CONNECT_S,
    FENCE_KILL_CONFIRM_S,
    FENCE_LOCAL_CONNECT_S,
    FENCE_LOCAL_QUERY_S,
    FENCE_READ_S,
    ClusterRecord,
    Fence,
    PodView,
    Promote,
    WriteRecord,
)
from coordinator.edge.actions import Executor
from coordinator.edge.fence_client import AgentFencer, FenceRefused, FenceUnconfirmable

POD = PodView(name="memgraph-0", ordinal=0, ip="127.0.1.1", uid="uid-0")
URL = "http://127.0.1.1:8080/api/v1/fence"


@responses.activate
def test_fence_client_sends_pod_uid_generation_and_the_token_and_returns_the_detail() -> None:
    responses.post(URL, json={"outcome": "fenced", "pids": [7], "state_before": "stopped",
                              "detail": "SIGKILL to [7] (stopped), gone"})
    assert AgentFencer(8080, "tok").fence(POD, 3) == "SIGKILL to [7] (stopped), gone"
    sent = responses.calls[0].request
    assert json.loads(sent.body) == {"pod": "memgraph-0", "uid": "uid-0", "generation": 3}
    assert sent.headers["Authorization"] == "Bearer tok"


@pytest.mark.parametrize("status, error", [(409, "main-healthy"), (409, "not-the-failed-main"),
                                           (503, "fence-failed"), (500, "internal")])
@responses.activate
def test_an_agent_that_answers_no_refuses_the_promotion(status: int, error: str) -> None:
    responses.post(URL, status=status, json={"error": error, "detail": "no"})
    with pytest.raises(FenceRefused, match=error):
        AgentFencer(8080, "tok").fence(POD, 3)


@pytest.mark.parametrize("status, error", [(501, "fence-unavailable"), (401, "unauthorized"),
                                           (403, "disabled")])
@responses.activate
def test_an_agent_that_cannot_fence_makes_the_fence_unconfirmable(status: int, error: str) -> None:
    responses.post(URL, status=status, json={"error": error, "detail": "no"})
    with pytest.raises(FenceUnconfirmable, match=error):
        AgentFencer(8080, "tok").fence(POD, 3)


@responses.activate
def test_an_agent_that_does_not_answer_makes_the_fence_unconfirmable() -> None:
    responses.post(URL, body=requests.ConnectTimeout("no route"))
    with pytest.raises(FenceUnconfirmable, match="did not answer"):
        AgentFencer(8080, "tok").fence(POD, 3)


def test_the_fence_waits_about_a_second_at_most_and_covers_the_agents_own_bounds() -> None:
    """Review defect a: a failover of a pod of which nothing answers costs the fence's timeout on top; the
    agent's work (a fresh local role query, then SIGKILL and its confirmation) fits inside it."""
    connect, read = AgentFencer(8080, "tok").timeout
    assert (connect, read) == (FENCE_CONNECT_S, FENCE_READ_S)
    assert FENCE_LOCAL_CONNECT_S + FENCE_LOCAL_QUERY_S + FENCE_KILL_CONFIRM_S < read <= 1.0
    assert connect <= 0.5


def test_an_agent_that_accepts_but_never_answers_makes_the_fence_unconfirmable() -> None:
    """A frozen pod (node loss): the kernel completes the TCP handshake, nobody reads the request."""
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(4)  # never accepted
        pod = PodView(name="memgraph-0", ordinal=0, ip="127.0.0.1", uid="uid-0")
        with pytest.raises(FenceUnconfirmable, match="ReadTimeout"):
            AgentFencer(frozen.getsockname()[1], "tok").fence(pod, 3)


def test_without_a_token_the_leader_cannot_fence() -> None:
    with pytest.raises(FenceUnconfirmable, match="no fence token"):
        AgentFencer(8080, None).fence(POD, 3)


# ---- the executor ------------------------------------------------------------------------------------


@dataclass
class World:
    calls: list[str] = field(default_factory=list)
    fence_raises: Exception | None = None

    def fence(self, pod: PodView, generation: int) -> str:
        self.calls.append(f"fence {pod.name} {generation}")
        if self.fence_raises is not None:
            raise self.fence_raises
        return "gone"

    # RecordPort
    def is_leader(self) -> bool:
        return True

    def lease_valid_for(self) -> float:
        return 10.0

    def read_annotations(self) -> dict[str, str]:
        return {}

    def update_annotations(self, changes: Any) -> bool:
        self.calls.append("write record")
        return True

    # MemgraphFactory
    def __call__(self, pod: PodView) -> World:
        return self

    def promote(self) -> None:
        self.calls.append("promote")


FAILOVER = [Fence("memgraph-0", "uid-0", 3), WriteRecord(ClusterRecord(main="memgraph-1", generation=4)),
            Promote("memgraph-1")]


def executor(world: World) -> Executor:
    pods = {"memgraph-0": POD, "memgraph-1": PodView(name="memgraph-1", ordinal=1, ip="127.0.1.2", uid="u1")}
    return Executor(kube=None, memgraph=world, lease=world, pods=lambda: pods, fencer=world)  # type: ignore[arg-type]


def test_a_confirmed_fence_lets_the_record_and_the_promotion_follow() -> None:
    world = World()
    result = executor(world).run(FAILOVER, ClusterRecord(main="memgraph-0", generation=3))
    assert result.ok and result.fenced == "gone"
    assert world.calls == ["fence memgraph-0 3", "write record", "promote"]


def test_a_refused_fence_stops_before_the_record_and_the_promotion() -> None:
    world = World(fence_raises=FenceRefused("agent of memgraph-0 answered 409 main-healthy"))
    result = executor(world).run(FAILOVER, ClusterRecord(main="memgraph-0", generation=3))
    assert isinstance(result.failed, Fence) and result.unfenced is None
    assert world.calls == ["fence memgraph-0 3"]


def test_an_unconfirmable_fence_stops_and_is_reported_for_the_next_cycle() -> None:
    world = World(fence_raises=FenceUnconfirmable("agent of memgraph-0 did not answer"))
    result = executor(world).run(FAILOVER, ClusterRecord(main="memgraph-0", generation=3))
    assert result.unfenced == FAILOVER[0] and "did not answer" in result.error
    assert world.calls == ["fence memgraph-0 3"]


def test_a_fence_of_a_pod_recreated_since_the_observation_is_unconfirmable() -> None:
    world = World()
    result = executor(world).run([Fence("memgraph-0", "uid-older", 3)], ClusterRecord())
    assert result.unfenced is not None and world.calls == []
