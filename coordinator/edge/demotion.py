"""Demoting a MAIN that may be busy: SET REPLICATION ROLE TO REPLICA, retried while a commit holds the lock.

Role: the one place that knows what Memgraph's "Couldn't set role to replica!" means (reference
memgraph-replication.md 1.3: the answer on a replica, and also when the query cannot take the
replication-state lock a commit in flight holds). The switchover's demotion of the old MAIN
(`coordinator.runtime.procedures`) and the agent's guard (`agent.guard`, through `agent.runtime`) use it.

Must never: retry without a bound, retry an error that is not that refusal, or sleep on its own clock
(the caller passes `sleep`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from coordinator.core.model import Role
from coordinator.edge.logs import log_event
from coordinator.edge.memgraph_errors import AlreadyReplicaError

log = logging.getLogger(__name__)


DEMOTE_ATTEMPTS = 20  # x DEMOTE_RETRY_S: a commit in flight holds the lock for milliseconds, not seconds
DEMOTE_RETRY_S = 0.1


class Demotable(Protocol):
    def demote(self, port: int) -> None: ...

    def role(self) -> Role: ...


def demote_while_busy(client: Demotable, port: int, sleep: Callable[[float], None], pod: str) -> None:
    """SET REPLICATION ROLE TO REPLICA, tolerating a busy MAIN. Memgraph answers "Couldn't set role to
    replica!" both on a replica and when the query cannot take the replication-state lock that a commit
    in flight holds (replication queries only try it; reference memgraph-replication.md 1.3): while the
    instance still reports MAIN, that answer means "busy" and the demotion is tried again, at most
    DEMOTE_ATTEMPTS times, DEMOTE_RETRY_S apart; once it reports REPLICA, it is done. Other errors, and
    the last refusal, are raised."""
    for attempt in range(1, DEMOTE_ATTEMPTS + 1):
        try:
            client.demote(port)
            return
        except AlreadyReplicaError:
            if client.role() is not Role.MAIN:
                return  # it is a replica already: nothing left to do
            if attempt == DEMOTE_ATTEMPTS:
                raise
            log_event(log, "demotion refused while a commit holds the lock; retrying", level=logging.INFO,
                      pod=pod, attempt=attempt, max_attempts=DEMOTE_ATTEMPTS)
            sleep(DEMOTE_RETRY_S)
