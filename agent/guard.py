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

from coordinator.model import ClusterRecord, Role

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
    """Calls `demote()` when `should_demote` says so, at most once per `min_interval_s`."""

    me: str
    demote: Callable[[], None]
    min_interval_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
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
        log.warning("guard: demoting local Memgraph: %s (I1: one writer)", reason)
        try:
            self.demote()
        except Exception as exc:
            log.warning("guard: demotion failed: %s: %s", type(exc).__name__, exc)
            return False
        self.demotions += 1
        return True
