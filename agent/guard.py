"""Local safety: demote the local Memgraph when it is MAIN but the cluster record names another pod.

Role: this is what stops a crashed MAIN that restarts with its role restored, or a fresh pod that
starts as MAIN by Memgraph's default (reference memgraph-replication.md 4.3), from acting as a second
MAIN (I1, I2). It runs in every agent, leader or not, and reads the record the elector already has in
memory, so it adds no API request.

Must never: act on a record it could not read or that names no MAIN (during an API-server outage the
last record stands and a healthy MAIN is left alone: I7), promote anything, or demote in a tight loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from coordinator.core.model import ClusterRecord, Role

log = logging.getLogger(__name__)


def should_demote(local_role: Role | None, record: ClusterRecord | None, me: str) -> str:
    """Why the local MAIN must be demoted, or "" when it must not. Pure."""
    if local_role is not Role.MAIN or record is None or not record.main:
        return ""
    if record.main == me:
        return ""
    return (
        f"local Memgraph is MAIN but the cluster record (generation {record.generation}) names {record.main}"
    )


@dataclass
class Guard:
    """Calls `demote()` when `should_demote` says so, at most once per `min_interval_s`.

    `confirm`, when given, reads the record afresh (None when it cannot): the record the agent holds in
    memory is up to one retry period old, and a switchover writes the record naming the target just
    before it promotes the target, so the stale copy would make the new MAIN's own guard demote it. The
    guard demotes only when the fresh record also names another pod; when the fresh read fails it waits
    (the pod is not Ready meanwhile, so the client Service does not route to it).
    """

    me: str
    demote: Callable[[], None]
    min_interval_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    confirm: Callable[[], ClusterRecord | None] | None = None
    demotions: int = 0
    _last: float = -1e9

    def check(self, local_role: Role | None, record: ClusterRecord | None) -> bool:
        """Demote if needed; True when a demotion was issued."""
        reason = should_demote(local_role, record, self.me)
        if not reason:
            return False
        now = self.clock()
        if now - self._last < self.min_interval_s:
            return False
        self._last = now
        if self.confirm is not None:
            fresh = self.confirm()
            if fresh is None:
                log.warning("guard: %s, but the record could not be read afresh: not demoting yet", reason)
                return False
            reason = should_demote(local_role, fresh, self.me)
            if not reason:
                log.info("guard: the fresh cluster record names this pod: no demotion")
                return False
        log.warning("guard: demoting local Memgraph: %s (I1: one writer)", reason)
        try:
            self.demote()
        except Exception as exc:
            log.warning("guard: demotion failed: %s: %s", type(exc).__name__, exc)
            return False
        self.demotions += 1
        return True
