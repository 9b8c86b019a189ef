"""The planner over several cycles: events fire once per condition, failovers in a row end with the
returning replica quarantined (not a register loop), and the planner stays pure."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest

from coordinator.core.model import (
    ClusterRecord,
    EmitEvent,
    Fence,
    Promote,
    RegisterReplica,
    Snapshot,
    WriteRecord,
)
from coordinator.core.planner import Decision, PlannerMemory, decide
from tests.unit.planner.builders import (
    LEADER,
    LEADER_LABEL,
    POLICY,
    ROLE_LABEL,
    core,
    down,
    events,
    healthy,
    main,
    name,
    rec,
    reg,
    replica,
    row,
    snap,
)

ERROR_3 = "Couldn't register replica memgraph_2. Error: 3"

# (id, snapshot, record, event the first cycle must emit)
REPEATING = [
    ("dual_main", snap({0: main(row(1, "strict_sync")), 1: replica(), 2: main()}), rec(), "DualMainBlocked"),
    ("no_candidate", snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 9.0}, last_ready=()),
     rec(), "NoFailoverCandidate"),
    ("registration_failed",
     snap({0: main(row(1, "strict_sync")), 1: replica(), 2: replica(register_error="Error: 5")}), rec(),
     "RegistrationFailed"),
    ("switchover_requested", healthy(terminating=(0,)), rec(), "Switchover"),
    ("empty_main", snap({0: main(data=0), 1: replica(data=3), 2: replica(data=3)}, main_seen=False),
     rec(confirmed=False), "EmptyMainBlocked"),
]


@pytest.mark.parametrize(
    ("snapshot", "record", "reason"), [c[1:] for c in REPEATING], ids=[c[0] for c in REPEATING]
)
def test_no_event_is_repeated_across_two_identical_cycles(
    snapshot: Snapshot, record: ClusterRecord, reason: str
) -> None:
    first = decide(snapshot, record, POLICY, PlannerMemory(leader=LEADER))
    second = decide(snapshot, record, POLICY, first.memory)
    assert reason in events(first.actions)
    assert reason not in events(second.actions)
    # a retried REGISTER reports its own success again; no warning or other event repeats
    assert set(events(second.actions)) <= {"ReplicaRegistered"}


def test_event_fires_again_when_its_condition_returns() -> None:
    bad, good = REPEATING[0][1], healthy()
    d1 = decide(bad, rec(), POLICY, PlannerMemory(leader=LEADER))
    d2 = decide(good, rec(), POLICY, d1.memory)
    d3 = decide(bad, rec(), POLICY, d2.memory)
    assert events(d1.actions) == ["DualMainBlocked"]
    assert events(d2.actions) == []
    assert events(d3.actions) == ["DualMainBlocked"]


def test_leader_elected_is_emitted_once_per_new_leader() -> None:
    d1 = decide(healthy(), rec(), POLICY)
    d2 = decide(healthy(), rec(), POLICY, d1.memory)
    moved = healthy(leader="memgraph-1", labels={
        0: {ROLE_LABEL: "main"}, 1: {ROLE_LABEL: "replica", LEADER_LABEL: "true"}})
    d3 = decide(moved, rec(), POLICY, d2.memory)
    assert events(d1.actions) == ["LeaderElected"]
    assert events(d2.actions) == []
    assert events(d3.actions) == ["LeaderElected"]


def test_paused_cycle_keeps_memory_so_events_fire_after_resume() -> None:
    bad = REPEATING[0][1]
    paused = decide(bad, rec(paused=True), POLICY, PlannerMemory(leader=LEADER))
    resumed = decide(bad, rec(), POLICY, paused.memory)
    assert paused.actions == ()
    assert events(resumed.actions) == ["DualMainBlocked"]


def _apply(decision: Decision, record: ClusterRecord) -> ClusterRecord:
    """What the executor would leave in the Lease after running the decision."""
    for action in decision.actions:
        if isinstance(action, WriteRecord):
            record = action.record
    return record


def test_failovers_in_a_row_leave_a_replica_from_an_older_main_diverged_not_in_a_register_loop() -> None:
    # Prior art 001 issue 7: pod-2 recreated on its PVC (memgraph-0's timeline), then memgraph-0 fails.
    memory = PlannerMemory(leader="memgraph-1")
    record = rec()
    s1 = snap({0: down(), 1: replica(), 2: replica(data=49)}, unreachable={0: 6.0}, leader="memgraph-1")
    d1 = decide(s1, record, POLICY, memory)
    acts = core(d1.actions)
    assert [a for a in acts if isinstance(a, Promote)] == [Promote(name(1))]
    # the old MAIN is fenced first (issue 16 item 5), then the record names the new MAIN before it is
    # promoted (its own guard would demote it otherwise)
    assert isinstance(acts[0], Fence) and isinstance(acts[1], WriteRecord)
    assert acts.index(Promote(name(1))) > 1
    record = _apply(d1, record)
    assert (record.main, record.generation) == (name(1), 4)
    # memgraph-0 still down, but the failover replaced it: it is fenced by the record, so memgraph-2 is
    # registered on the new MAIN at once, which takes it from memgraph-0 (scenario 8: waiting left it to
    # memgraph-0, whose restored role shipped its unique writes to it before its guard demoted it)
    s2 = snap({0: down(), 1: main(), 2: replica(data=49)}, unreachable={0: 8.0}, leader="memgraph-1")
    d2 = decide(s2, record, POLICY, d1.memory)
    assert [a.replica_pod for a in d2.actions if isinstance(a, RegisterReplica)] == [name(2)]
    # memgraph-0 back (its guard demoted it): both are registered; REGISTER of memgraph-2 answers Error: 3
    s3 = snap({0: replica(data=49), 1: main(), 2: replica(data=49)}, leader="memgraph-1")
    d3 = decide(s3, record, POLICY, d2.memory)
    assert [a.replica_pod for a in d3.actions if isinstance(a, RegisterReplica)] == [name(0), name(2)]
    s4 = snap({0: replica(data=49), 1: main(row(0)), 2: replica(data=49, register_error=ERROR_3)},
              leader="memgraph-1")
    memory = d3.memory
    registers_of_2 = []
    for cycle in range(4):
        d = decide(s4, record, POLICY, memory)
        registers_of_2 += [a for a in core(d.actions) if a == reg(1, 2) or a == reg(1, 2, "strict_sync")]
        if cycle == 0:
            assert events(d.actions) == ["ReplicaRegistered", "ReplicaDiverged"]  # memgraph-0 made sync
            write = next(i for i, a in enumerate(d.actions) if isinstance(a, WriteRecord))
            told = next(i for i, a in enumerate(d.actions)
                        if isinstance(a, EmitEvent) and a.reason == "ReplicaDiverged")
            assert write < told  # the mark is in the record before it is announced
            assert next(a for a in d.actions if isinstance(a, WriteRecord)).record.diverged == (name(2),)
            # the failover registered memgraph-2 (ready at the last look) as the sync replica (item 7)
            assert d.verdict.startswith("resync: sync replica memgraph-2 not ready, designating memgraph-0")
        else:
            assert "ReplicaDiverged" not in events(d.actions)
        record, memory = _apply(d, record), d.memory
    assert registers_of_2 == []
    assert record.diverged == (name(2),)
    # second failover: memgraph-1 dies; memgraph-0 (sync, ready) is promoted, never the diverged memgraph-2
    s5 = snap({0: replica(), 1: down(), 2: replica(data=49, register_error=ERROR_3)},
              unreachable={1: 5.0}, last_ready=(0, 2), leader="memgraph-0")
    d5 = decide(s5, record, POLICY, memory)
    assert [a for a in core(d5.actions) if isinstance(a, Promote)] == [Promote(name(0))]
    assert _apply(d5, record).diverged == (name(2),)


def test_decide_is_deterministic_and_does_not_touch_its_inputs() -> None:
    s = snap({0: main(row(1, "strict_sync")), 1: replica(), 2: replica(register_error=ERROR_3)})
    before = copy.deepcopy(s)
    a = decide(s, rec(), POLICY, PlannerMemory())
    b = decide(s, rec(), POLICY, PlannerMemory())
    assert a == b
    assert s == before


CORE = Path(__file__).resolve().parents[3] / "coordinator" / "core"
PURE_MODULES = sorted(p.name for p in CORE.glob("*.py"))
# json: the history's codec (coordinator/core/history.py) and the data-directory report's codec
# (coordinator.core.datadir) turn text into values and back, no I/O
ALLOWED = {"__future__", "dataclasses", "collections", "collections.abc", "typing", "enum", "math", "json",
           "coordinator"}


def test_the_decision_modules_are_in_the_pure_core() -> None:
    assert {"planner.py", "rules.py", "replication.py", "health.py", "status.py", "reseed.py",
            "datadir.py"} <= set(PURE_MODULES)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_decision_modules_import_nothing_that_does_io(module: str) -> None:
    tree = ast.parse((CORE / module).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    roots = {m if m in ALLOWED else m.split(".")[0] for m in imported}
    assert roots <= ALLOWED, roots - ALLOWED
    assert all(m.startswith("coordinator.core") for m in imported if m.split(".")[0] == "coordinator")


def test_failover_record_carries_generation_and_duration() -> None:
    d = decide(snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 5.2}, now=77.0), rec(), POLICY)
    record = _apply(d, ClusterRecord())
    assert (record.main, record.generation, record.last_failover_from, record.last_failover_duration_s) == (
        name(1), 4, name(0), 5.2)
    assert record.last_failover == "memgraph-0->memgraph-1 at 77.000 after 5.2s; fence: confirmed"
