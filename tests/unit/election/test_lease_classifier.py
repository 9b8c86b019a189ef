"""coordinator.core.lease_rules.classify as a table: one round's facts -> claim | renew | wait | lost.

Times are the candidate's own monotonic seconds (the round is at t=100 unless a case says otherwise);
the timings are client-go's 15/10/2 s. Nothing remote is compared with the local clock: a foreign
Lease expires only after its version was seen unchanged for the duration written in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from coordinator.core.lease_rules import ElectionConfig, LeaseFacts, LeaseMove, classify

CFG = ElectionConfig(15, 10, 2)
ME = "memgraph-0"
NOW = 100.0


@dataclass(frozen=True)
class Case:
    id: str
    facts: LeaseFacts
    move: LeaseMove


CASES = [
    # ---- leading: renew until the renew deadline, measured from the last good renewal's start
    Case("leader_just_renewed_renews", LeaseFacts(ME, NOW, leading=True, renewed_at=NOW - 2),
         LeaseMove.RENEW),
    Case("leader_a_hair_before_the_deadline_renews",
         LeaseFacts(ME, NOW, leading=True, renewed_at=NOW - 9.999), LeaseMove.RENEW),
    Case("leader_at_the_renew_deadline_has_lost", LeaseFacts(ME, NOW, leading=True, renewed_at=NOW - 10),
         LeaseMove.LOST),
    Case("leader_long_past_the_deadline_has_lost", LeaseFacts(ME, NOW, leading=True, renewed_at=NOW - 60),
         LeaseMove.LOST),
    Case("leading_ignores_what_the_lease_said_before",
         LeaseFacts(ME, NOW, leading=True, renewed_at=NOW - 1, holder="memgraph-9", written_duration_s=15),
         LeaseMove.RENEW),
    # ---- candidate: free, missing or own Leases are claimed at once
    Case("missing_lease_is_created", LeaseFacts(ME, NOW, holder=None), LeaseMove.CLAIM),
    Case("released_lease_is_claimed_at_once", LeaseFacts(ME, NOW, holder="", unchanged_since=NOW),
         LeaseMove.CLAIM),
    Case("own_lease_from_an_earlier_term_is_claimed_at_once",
         LeaseFacts(ME, NOW, holder=ME, written_duration_s=15, unchanged_since=NOW), LeaseMove.CLAIM),
    # ---- candidate: a foreign Lease expires on our clock, after the duration written in it
    Case("foreign_lease_just_seen_waits",
         LeaseFacts(ME, NOW, holder="memgraph-1", written_duration_s=15, unchanged_since=NOW),
         LeaseMove.WAIT),
    Case("foreign_lease_unchanged_almost_its_duration_waits",
         LeaseFacts(ME, NOW, holder="memgraph-1", written_duration_s=15, unchanged_since=NOW - 14.99),
         LeaseMove.WAIT),
    Case("foreign_lease_unchanged_for_its_duration_is_taken_over",
         LeaseFacts(ME, NOW, holder="memgraph-1", written_duration_s=15, unchanged_since=NOW - 15),
         LeaseMove.CLAIM),
    Case("foreign_lease_with_a_longer_written_duration_is_waited_for",
         LeaseFacts(ME, NOW, holder="memgraph-1", written_duration_s=60, unchanged_since=NOW - 30),
         LeaseMove.WAIT),
    Case("foreign_lease_with_a_shorter_written_duration_expires_sooner",
         LeaseFacts(ME, NOW, holder="memgraph-1", written_duration_s=5, unchanged_since=NOW - 5),
         LeaseMove.CLAIM),
    Case("foreign_lease_without_a_duration_uses_ours",
         LeaseFacts(ME, NOW, holder="memgraph-1", written_duration_s=0, unchanged_since=NOW - 14),
         LeaseMove.WAIT),
    Case("foreign_lease_without_a_duration_expires_after_ours",
         LeaseFacts(ME, NOW, holder="memgraph-1", written_duration_s=0, unchanged_since=NOW - 15),
         LeaseMove.CLAIM),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lease_classifier_case(case: Case) -> None:
    assert classify(case.facts, CFG) is case.move


def test_table_covers_every_move() -> None:
    assert {c.move for c in CASES} == set(LeaseMove)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("timings", "problem"),
    [((10, 10, 2), "renew deadline"), ((15, 10, 10), "retry period"), ((0, 10, 2), "positive"),
     ((15, float("nan"), 2), "positive")],
)
def test_bad_timings_are_refused(timings: tuple[float, float, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ElectionConfig(*timings)
