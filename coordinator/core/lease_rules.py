"""The elector's pure decisions: its timings, and what one round does with what it observed.

Role: `ElectionConfig` (the three timings and the relations between them) and `classify`, which turns
one round's facts -- the Lease as read (holder, the duration written in it), when this candidate first
saw that version on its own monotonic clock, and, while it leads, when its last successful renewal
started -- into one move: CLAIM the Lease, RENEW it, WAIT, or end the term (LOST). CloudNativePG keeps
the same branch of its lease runnable pure and table-tested (ha-anchors 2.3); so do we
(tests/unit/election/test_lease_classifier.py). The elector (coordinator.edge.election) does the I/O
and acts on the move.

Must never: compare a remote timestamp with the local clock (only local monotonic times are compared),
read a clock, or do I/O.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from coordinator.core import defaults


@dataclass(frozen=True)
class ElectionConfig:
    """Timings in seconds (client-go defaults: coordinator.core.defaults). Bad combinations raise ValueError.

    The Lease field `leaseDurationSeconds` is an integer: `written_duration_s` is the ceiling of
    `lease_duration_s`, which is what other candidates wait for.
    """

    lease_duration_s: float = defaults.LEASE_DURATION_S
    renew_deadline_s: float = defaults.RENEW_DEADLINE_S
    retry_period_s: float = defaults.RETRY_PERIOD_S

    def __post_init__(self) -> None:
        for name in ("lease_duration_s", "renew_deadline_s", "retry_period_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise ValueError(f"election timing {name} must be a positive number of seconds: {value!r}")
        if self.renew_deadline_s >= self.lease_duration_s:
            raise ValueError(
                f"renew deadline ({self.renew_deadline_s}s) must be shorter than the lease duration "
                f"({self.lease_duration_s}s), or a deposed leader could still act after a takeover")
        if self.retry_period_s >= self.renew_deadline_s:
            raise ValueError(
                f"retry period ({self.retry_period_s}s) must be shorter than the renew deadline "
                f"({self.renew_deadline_s}s), or a single failed renewal ends leadership")

    @property
    def written_duration_s(self) -> int:
        return math.ceil(self.lease_duration_s)


class LeaseMove(enum.StrEnum):
    """What one election round does."""

    CLAIM = "claim"  # the Lease is free, ours, missing, or its holder stopped renewing: write our name
    RENEW = "renew"  # we lead and are within the renew deadline: write a new renewTime
    WAIT = "wait"  # another holder's Lease may still be live: read it again next round
    LOST = "lost"  # we led but no renewal succeeded within the renew deadline: the term ends now


@dataclass(frozen=True)
class LeaseFacts:
    """One round's facts. Times are this candidate's monotonic seconds; nothing remote is compared.

    `holder` is None when no Lease was read (while leading the elector does not read before renewing;
    as a candidate, None means the Lease does not exist). `unchanged_since` is when this candidate
    first saw the current (holder, renewTime, resourceVersion) of the Lease.
    """

    me: str
    now: float
    leading: bool = False
    renewed_at: float = 0.0  # start of the last successful renewal (while leading)
    holder: str | None = None
    written_duration_s: int = 0  # leaseDurationSeconds in the Lease (0: not set)
    unchanged_since: float = 0.0


def classify(facts: LeaseFacts, config: ElectionConfig) -> LeaseMove:
    """The move for this round (client-go semantics, reference kubernetes-and-helm B.3)."""
    if facts.leading:
        live = facts.now < facts.renewed_at + config.renew_deadline_s
        return LeaseMove.RENEW if live else LeaseMove.LOST
    if facts.holder is None or facts.holder in ("", facts.me):
        return LeaseMove.CLAIM  # missing (create it), released, or ours from an earlier term
    duration = facts.written_duration_s if facts.written_duration_s > 0 else config.lease_duration_s
    expired = facts.now - facts.unchanged_since >= duration
    return LeaseMove.CLAIM if expired else LeaseMove.WAIT
