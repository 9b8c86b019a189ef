"""Demoting a MAIN (coordinator.edge.demotion.demote_while_busy; the switchover's `procedures._demote`
and the agent's guard both use it): Memgraph's
"Couldn't set role to replica!" means "busy" while the instance still reports MAIN (a commit in flight
holds the replication-state lock), and "done" once it reports REPLICA."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from coordinator.core.model import Role
from coordinator.edge import demotion
from coordinator.edge.memgraph_errors import AlreadyReplicaError
from coordinator.runtime import procedures


class Client:
    def __init__(self, refusals: int, role: Role) -> None:
        self.refusals, self.role_now, self.demotes = refusals, role, 0

    def demote(self, port: int) -> None:
        self.demotes += 1
        if self.demotes <= self.refusals:
            raise AlreadyReplicaError("Couldn't set role to replica!")
        self.role_now = Role.REPLICA

    def role(self) -> Role:
        return self.role_now


def ctx() -> SimpleNamespace:
    sleeps: list[float] = []
    return SimpleNamespace(policy=SimpleNamespace(replication_port=10000), sleep=sleeps.append, sleeps=sleeps)


def test_a_busy_main_is_demoted_on_a_later_attempt() -> None:
    c, x = Client(refusals=2, role=Role.MAIN), ctx()
    procedures._demote(x, c, "mg-0")  # type: ignore[arg-type]
    assert c.demotes == 3 and x.sleeps == [demotion.DEMOTE_RETRY_S] * 2 and c.role() is Role.REPLICA


def test_an_instance_already_replica_is_done_at_once() -> None:
    c, x = Client(refusals=1, role=Role.REPLICA), ctx()
    procedures._demote(x, c, "mg-0")  # type: ignore[arg-type]
    assert c.demotes == 1 and x.sleeps == []


def test_a_main_that_keeps_refusing_fails_after_the_bounded_attempts() -> None:
    c, x = Client(refusals=10**6, role=Role.MAIN), ctx()
    with pytest.raises(AlreadyReplicaError):
        procedures._demote(x, c, "mg-0")  # type: ignore[arg-type]
    assert c.demotes == demotion.DEMOTE_ATTEMPTS and len(x.sleeps) == demotion.DEMOTE_ATTEMPTS - 1
