"""coordinator.core.compose.place_record_writes: the one step that puts a cycle's record writes in place.

A table: what the rules chose (their actions, the record they want, where they asked for it to be
written), the record as read, and whether the record may still vouch for the sync replica -> the
actions with the writes in place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from coordinator.core.compose import place_record_writes
from coordinator.core.model import Action, ClusterRecord, Demote, EmitEvent, Promote, WriteRecord
from coordinator.core.rules import Plan

READ = ClusterRecord(main="memgraph-0", sync_replica="memgraph-1", sync_mode="strict_sync", generation=3)
VOUCHED = replace(READ, sync_confirmed=True)
EVENT = EmitEvent("FailoverStarted", "memgraph-0 lost", "memgraph-0", True)
FAILED_OVER = replace(READ, main="memgraph-1", sync_replica="", sync_mode="", generation=4)


@dataclass(frozen=True)
class Case:
    id: str
    read: ClusterRecord
    actions: tuple[Action, ...]
    wanted: ClusterRecord  # Plan.record after the rules
    record_at: int | None  # where a rule asked for the write (None: no rule did)
    confirmed: bool
    expected: tuple[Action, ...]


CASES = [
    Case("nothing_changed_nothing_written", READ, (Demote("memgraph-2"),), READ, None, False,
         (Demote("memgraph-2"),)),
    Case("a_rule_write_goes_where_the_rule_asked_before_the_promotion", READ, (EVENT, Promote("memgraph-1")),
         FAILED_OVER, 1, False, (EVENT, WriteRecord(FAILED_OVER), Promote("memgraph-1"))),
    Case("a_change_no_rule_wrote_is_written_first", READ, (Demote("memgraph-2"),),
         replace(READ, diverged=("memgraph-2",)), None, False,
         (WriteRecord(replace(READ, diverged=("memgraph-2",))), Demote("memgraph-2"))),
    Case("a_gained_confirmation_alone_is_written_first", READ, (), READ, None, True,
         (WriteRecord(VOUCHED),)),
    Case("a_withdrawn_confirmation_is_cleared_before_everything_and_only_once", VOUCHED,
         (Demote("memgraph-2"),), VOUCHED, None, False,
         (WriteRecord(READ), Demote("memgraph-2"))),
    Case("a_withdrawn_confirmation_is_cleared_first_then_the_rule_write_in_its_place", VOUCHED,
         (Demote("memgraph-2"),), replace(VOUCHED, sync_replica="memgraph-2"), 1, False,
         (WriteRecord(READ), Demote("memgraph-2"), WriteRecord(replace(READ, sync_replica="memgraph-2")))),
    Case("a_withdrawn_confirmation_and_a_finding_clear_then_write_the_finding", VOUCHED, (),
         replace(VOUCHED, diverged=("memgraph-2",)), None, False,
         (WriteRecord(READ), WriteRecord(replace(READ, diverged=("memgraph-2",))))),
    Case("a_rule_that_already_dropped_the_confirmation_needs_no_clear", VOUCHED, (EVENT,),
         FAILED_OVER, 1, False, (EVENT, WriteRecord(FAILED_OVER))),
    Case("a_kept_confirmation_rides_on_the_rule_write", VOUCHED, (Demote("memgraph-2"),),
         replace(VOUCHED, generation=4), 0, True,
         (WriteRecord(replace(VOUCHED, generation=4)), Demote("memgraph-2"))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_record_writes_are_placed(case: Case) -> None:
    plan = Plan(record=case.wanted, actions=list(case.actions), record_at=case.record_at)
    actions, final = place_record_writes(plan, case.read, case.confirmed)
    assert tuple(actions) == case.expected
    assert final == replace(case.wanted, sync_confirmed=case.confirmed)


def test_a_rule_may_ask_for_one_record_write_per_cycle() -> None:
    plan = Plan(record=READ)
    plan.write_record(FAILED_OVER)
    with pytest.raises(RuntimeError, match="second record write"):
        plan.write_record(READ)
