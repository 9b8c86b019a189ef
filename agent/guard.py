"""Local safety: demote the local Memgraph when it is MAIN but the cluster record names another pod.

Role: this is what stops a crashed MAIN that restarts with its role restored, or a fresh pod that
starts as MAIN by Memgraph's default (reference memgraph-replication.md 4.3), from acting as a second
MAIN (I1, I2). It runs in every agent, leader or not, and reads the record the elector already has in
memory, so it adds no API request, except one fresh read before it demotes, and before it trusts a copy
naming its own pod that is too old to trust (a frozen pod that thaws).

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

    `record_age`, when given, says how old the in-memory copy is (seconds since the elector last read or
    wrote the Lease). A copy that names this pod and is older than `stale_after_s` is confirmed afresh
    too: a MAIN whose pod was frozen (a paused VM, a stopped node) comes back holding the record of
    before the freeze, which still names it although another pod was promoted meanwhile; without the
    fresh read it would answer as MAIN until its elector's next read and the guard's next tick (a retry
    period or two). When that fresh read fails, the MAIN is left alone (I7: an API-server outage
    demotes nothing).
    """

    me: str
    demote: Callable[[], None]
    min_interval_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    confirm: Callable[[], ClusterRecord | None] | None = None
    record_age: Callable[[], float | None] | None = None
    stale_after_s: float = float("inf")
    demotions: int = 0
    _last: float = -1e9
    _stale_unconfirmed: bool = False

    def check(self, local_role: Role | None, record: ClusterRecord | None) -> bool:
        """Demote if needed; True when a demotion was issued."""
        reason = should_demote(local_role, record, self.me)
        stale = not reason and self._stale_copy_names_me(local_role, record)
        if not reason and not stale:
            self._stale_unconfirmed = False
            return False
        now = self.clock()
        if now - self._last < self.min_interval_s:
            return False
        self._last = now
        if self.confirm is None:
            return False if stale else self._demote(reason)
        fresh = self.confirm()
        if fresh is None:
            if not stale:
                log.warning("guard: %s, but the record could not be read afresh: not demoting yet", reason)
            elif not self._stale_unconfirmed:  # once per episode: an API outage is logged by the elector
                log.info("guard: the cluster record naming this pod is old and could not be read afresh: "
                         "leaving the local MAIN alone (I7)")
            self._stale_unconfirmed = stale
            return False
        self._stale_unconfirmed = False
        reason = should_demote(local_role, fresh, self.me)
        if not reason:
            if not stale:
                log.info("guard: the fresh cluster record names this pod: no demotion")
            return False
        if stale:
            reason += " (read afresh: the copy held naming this pod was old)"
        return self._demote(reason)

    def _stale_copy_names_me(self, local_role: Role | None, record: ClusterRecord | None) -> bool:
        if local_role is not Role.MAIN or record is None or record.main != self.me or self.record_age is None:
            return False
        age = self.record_age()
        return age is not None and age > self.stale_after_s

    def _demote(self, reason: str) -> bool:
        log.warning("guard: demoting local Memgraph: %s (I1: one writer)", reason)
        try:
            self.demote()
        except Exception as exc:
            log.warning("guard: demotion failed: %s: %s", type(exc).__name__, exc)
            self._last = -1e9  # the next check tries again: a MAIN the record does not name must not wait
            return False
        self.demotions += 1
        return True
