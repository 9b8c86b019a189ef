"""The re-seed rule (I4, issue 17) as a table: which pod is re-seeded, every guard, every step, and what a
new leader or a new MAIN does with a re-seed in progress. Each case asserts the exact verdict, the actions
that change Memgraph, the pods or the record (in order) and the Events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from coordinator.core.datadir import Archive, DataOutcome, DataReport
from coordinator.core.model import (
    Action,
    ClusterRecord,
    CreateSnapshot,
    DropReplica,
    Policy,
    ReseedPod,
    ReseedStep,
    WriteRecord,
)
from coordinator.core.planner import PlannerMemory, decide
from tests.unit.planner.builders import (
    AUTO,
    LEADER,
    POLICY,
    addr,
    core,
    down,
    events,
    main,
    name,
    rec,
    reg,
    replica,
    row,
    snap,
)
from tests.unit.planner.test_planner_table import NEW_IP
from tests.unit.planner.test_planner_table import Case as TableCase

STRICT = "strict_sync"
KEPT = DataReport(DataOutcome.KEPT, durable_files=4)
ARCHIVED_G3 = DataReport(DataOutcome.ARCHIVED, generation=3, durable_files=0,
                         archives=(Archive("20261130T203000Z-g3", 4096, 3, "2026-11-30T20:30:00Z"),))
REFUSED = DataReport(DataOutcome.REFUSED, generation=3, durable_files=4,
                     reason="volume has 1024 bytes free, a fresh copy needs 4096")


def reseed_rec(i: int, step: ReseedStep, gen: int = 3, incarnation: str = "", **kw: object) -> ClusterRecord:
    base = rec(**kw)  # type: ignore[arg-type]
    return replace(base, reseed_pod=name(i), reseed_step=step.value, reseed_generation=gen,
                   reseed_incarnation=incarnation or f"uid-{i}/0")


def started(i: int, base: ClusterRecord) -> ClusterRecord:
    return replace(base, reseed_pod=name(i), reseed_step="archive", reseed_generation=base.generation,
                   reseed_incarnation=f"uid-{i}/0")


def failed_over(epoch: int = 0, incarnation: str = "uid-1/0", sync: int | None = 2) -> ClusterRecord:
    """memgraph-0 -> memgraph-1 at generation 4 (the record a failover writes, `sync` designated since)."""
    return replace(rec(1, sync, 4), last_failover_from=name(0), last_failover_to=name(1),
                   epoch_generation=epoch, promoted_incarnation=incarnation)


@dataclass(frozen=True)
class Case(TableCase):
    """A case of the planner's table, under `auto` unless it says otherwise."""

    policy: Policy = AUTO


DIVERGED_2 = {0: main(row(1, STRICT)), 1: replica(), 2: replica(data=49)}

CASES = [
    # ---- start: which pod, and the guards ---------------------------------------------------------------
    Case("auto_diverged_replica_is_recorded_first_then_stamped_and_deleted",
         snap(DIVERGED_2, data={2: KEPT}), rec(diverged=(2,)),
         "reseed: memgraph-2 diverged: stamped and deleted for a re-seed from memgraph-0 (generation 3); its "
         "init container archives its files",
         [WriteRecord(started(2, rec(diverged=(2,)))), ReseedPod(name(2), "uid-2", 3)], ("ReseedStarted",)),
    Case("manual_policy_keeps_the_quarantine_and_touches_nothing",
         snap(DIVERGED_2, data={2: KEPT}, labels={2: {}}), rec(diverged=(2,)),
         "no action: memgraph-0 is MAIN, 1/2 replicas ready", [], policy=POLICY),
    Case("no_reseed_while_the_record_main_is_unreachable",
         snap({0: down(), 1: replica(), 2: replica(data=49)}, unreachable={0: 1.0}, data={2: KEPT}),
         rec(diverged=(2,)),
         "waiting: memgraph-0 unreachable 1.0s < failoverAfter 5s", []),
    Case("two_diverged_pods_only_the_lowest_ordinal_starts",
         snap({0: main(), 1: replica(data=7), 2: replica(data=49)}, data={1: KEPT, 2: KEPT}),
         rec(sync=None, diverged=(1, 2)),
         "reseed: memgraph-1 diverged: stamped and deleted for a re-seed from memgraph-0 (generation 3); its "
         "init container archives its files",
         [WriteRecord(started(1, rec(sync=None, diverged=(1, 2)))), ReseedPod(name(1), "uid-1", 3)],
         ("ReseedStarted",)),
    Case("second_diverged_pod_waits_while_one_is_being_reseeded",
         snap({0: main(), 1: down(), 2: replica(data=49)}, pods=(0, 2), data={2: KEPT}),
         reseed_rec(1, ReseedStep.ARCHIVE, sync=None, diverged=(1, 2)),
         "diverged: re-seed of memgraph-1 (generation 3): waiting for its new pod; memgraph-0 is MAIN, 0/2 "
         "replicas ready", [], ("NoSyncReplica",)),
    Case("refused_for_lack_of_space_says_why_and_deletes_nothing",
         snap(DIVERGED_2, data={2: REFUSED}), rec(diverged=(2,)),
         "diverged: re-seed of memgraph-2 refused: volume has 1024 bytes free, a fresh copy needs 4096; "
         "memgraph-0 is MAIN, 1/2 replicas ready", [], ("ReseedRefused",)),
    Case("a_pod_without_the_init_container_report_is_not_deleted_in_a_loop",
         snap(DIVERGED_2), rec(diverged=(2,)),
         "diverged: re-seed of memgraph-2 refused: no re-seed init container report on the pod; "
         "memgraph-0 is MAIN, 1/2 replicas ready", [], ("ReseedRefused",)),
    # ---- the new MAIN's epoch on disk (reference 7.2) --------------------------------------------------
    Case("first_cycle_after_a_failover_snapshots_the_new_main_before_registering_the_former_main",
         snap({0: replica(data=50), 1: main(), 2: replica()}, data={0: KEPT}),
         failed_over(sync=None),
         "replicas: register memgraph-0 as async, register memgraph-2 as async; memgraph-1 is MAIN, 0/2 "
         "replicas ready",
         [CreateSnapshot(name(1)), WriteRecord(failed_over(4, sync=None)), reg(1, 0), reg(1, 2)],
         ("ReplicaRegistered", "ReplicaRegistered", "NoSyncReplica")),
    Case("new_main_restarted_before_its_epoch_reached_disk_the_former_main_is_diverged_not_registered",
         snap({0: replica(data=50), 1: main(), 2: replica()}, data={0: KEPT}, restarts={1: 1}),
         failed_over(sync=None),
         "reseed: CREATE SNAPSHOT on memgraph-1: generation 4's epoch on disk; memgraph-0 marked diverged "
         "(memgraph-1 restarted before its epoch reached disk)",
         [CreateSnapshot(name(1)), WriteRecord(replace(failed_over(4, sync=None), diverged=(name(0),)))],
         ("ReplicaDiverged",)),
    Case("no_reseed_from_a_main_whose_epoch_is_not_on_disk_yet",
         snap({0: replica(data=50), 1: main(row(2, STRICT)), 2: replica()}, data={0: KEPT}),
         replace(failed_over(), diverged=(name(0),)),
         "diverged: CREATE SNAPSHOT on memgraph-1: generation 4's epoch on disk; memgraph-1 is MAIN, 1/2 "
         "replicas ready",
         [CreateSnapshot(name(1)), WriteRecord(replace(failed_over(4), diverged=(name(0),)))]),
    # ---- a re-seed in progress --------------------------------------------------------------------------
    Case("archived_pod_back_clean_is_cleared_and_registered_async_never_strict_sync",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica(data=0)}, uids={2: "uid-2b"},
              data={2: ARCHIVED_G3}),
         reseed_rec(2, ReseedStep.ARCHIVE, diverged=(2,)),
         "replicas: register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(reseed_rec(2, ReseedStep.CATCHUP, incarnation="uid-2b/0")), reg(0, 2)],
         ("ReplicaRegistered", "ReseedArchived")),
    Case("two_pod_cluster_heals_its_only_replica_async_first",
         snap({0: main(), 1: replica(data=0)}, expected=2, uids={1: "uid-1b"}, data={1: ARCHIVED_G3}),
         reseed_rec(1, ReseedStep.ARCHIVE, sync=None, diverged=(1,)),
         "replicas: register memgraph-1 as async; memgraph-0 is MAIN, 0/1 replicas ready",
         [WriteRecord(reseed_rec(1, ReseedStep.CATCHUP, incarnation="uid-1b/0", sync=None)), reg(0, 1)],
         ("ReplicaRegistered", "ReseedArchived", "NoSyncReplica")),
    Case("recovering_reseeded_pod_is_not_designated_sync_while_behind",
         snap({0: main(row(1, status="ready", behind=-40)), 1: replica()}, expected=2, uids={1: "uid-1b"},
              data={1: ARCHIVED_G3}),
         reseed_rec(1, ReseedStep.CATCHUP, incarnation="uid-1b/0", sync=None),
         "diverged: re-seed of memgraph-1: recovering from memgraph-0 (ready, behind -40); memgraph-0 is "
         "MAIN, 1/1 replicas ready",
         [], ("NoSyncReplica",)),
    Case("reseeded_pod_ready_with_behind_0_ends_the_reseed",
         snap({0: main(row(1, status="ready")), 1: replica()}, expected=2, uids={1: "uid-1b"},
              data={1: ARCHIVED_G3}),
         reseed_rec(1, ReseedStep.CATCHUP, incarnation="uid-1b/0", sync=None),
         "diverged: memgraph-1 re-seeded from memgraph-0: ready, behind 0 (its old files stay archived on "
         "its volume); memgraph-0 is MAIN, 1/1 replicas ready",
         [WriteRecord(rec(sync=None))], ("ReseedCompleted", "NoSyncReplica")),
    # the mark a pod carried into its re-seed is cleared only once its new Memgraph answers empty: until
    # then it is no sign of a new divergence (scenarios: halted "diverged again" right after the archive)
    Case("reseeded_pod_not_answering_yet_keeps_its_old_mark_and_the_reseed_waits",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: down()}, uids={2: "uid-2b"}, ips={2: NEW_IP},
              data={2: ARCHIVED_G3}),
         reseed_rec(2, ReseedStep.CATCHUP, incarnation="uid-2b/0", diverged=(2,)),
         "diverged: re-seed of memgraph-2: recovering from memgraph-0 (not registered yet); memgraph-0 is "
         "MAIN, 1/2 replicas ready", []),
    Case("reseeded_pod_with_storage_not_read_yet_is_not_diverged_again",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica()}, uids={2: "uid-2b"}, ips={2: NEW_IP},
              data={2: ARCHIVED_G3}),
         reseed_rec(2, ReseedStep.CATCHUP, incarnation="uid-2b/0", diverged=(2,)),
         "diverged: re-seed of memgraph-2: recovering from memgraph-0 (not registered yet); memgraph-0 is "
         "MAIN, 1/2 replicas ready", []),
    # a row at the pod's previous address describes the incarnation that diverged, not the re-seeded one
    Case("stale_diverged_row_at_the_previous_address_neither_halts_nor_keeps_the_mark",
         snap({0: main(row(1, STRICT), row(2, status="diverged", ts=0)), 1: replica(), 2: replica(data=0)},
              uids={2: "uid-2b"}, ips={2: NEW_IP}, data={2: ARCHIVED_G3}),
         reseed_rec(2, ReseedStep.CATCHUP, incarnation="uid-2b/0", diverged=(2,)),
         "replicas: drop memgraph_2, register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(reseed_rec(2, ReseedStep.CATCHUP, incarnation="uid-2b/0")),
          DropReplica(name(0), "memgraph_2"), reg(0, 2, pod_ip=NEW_IP)], ("ReplicaRegistered",)),
    Case("stale_ready_row_at_the_previous_address_does_not_end_the_reseed",
         snap({0: main(row(1, STRICT), row(2)), 1: replica(), 2: replica(data=0)},
              uids={2: "uid-2b"}, ips={2: NEW_IP}, data={2: ARCHIVED_G3}),
         reseed_rec(2, ReseedStep.CATCHUP, incarnation="uid-2b/0"),
         "replicas: drop memgraph_2, register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [DropReplica(name(0), "memgraph_2"), reg(0, 2, pod_ip=NEW_IP)], ("ReplicaRegistered",)),
    Case("reseeded_pod_diverged_at_its_current_address_halts",
         snap({0: main(row(1, STRICT), row(2, status="diverged", ts=0, address=addr(2, NEW_IP))),
               1: replica(), 2: replica(data=0)}, uids={2: "uid-2b"}, ips={2: NEW_IP}, data={2: ARCHIVED_G3}),
         reseed_rec(2, ReseedStep.CATCHUP, incarnation="uid-2b/0"),
         "replicas: drop memgraph_2; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(reseed_rec(2, ReseedStep.HALTED, incarnation="uid-2b/0", diverged=(2,))),
          DropReplica(name(0), "memgraph_2")], ("ReplicaDiverged", "ReseedHalted")),
    Case("deletion_that_did_not_happen_is_sent_again",
         snap(DIVERGED_2, data={2: KEPT}), reseed_rec(2, ReseedStep.ARCHIVE, diverged=(2,)),
         "reseed: re-seed of memgraph-2 (generation 3): stamping and deleting it again",
         [ReseedPod(name(2), "uid-2", 3)]),
    Case("init_container_refused_halts_the_reseed_for_that_incarnation",
         snap(DIVERGED_2, uids={2: "uid-2b"}, data={2: REFUSED}),
         reseed_rec(2, ReseedStep.ARCHIVE, diverged=(2,)),
         "diverged: re-seed of memgraph-2 halted: volume has 1024 bytes free, a fresh copy needs 4096; "
         "nothing deleted; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(reseed_rec(2, ReseedStep.HALTED, incarnation="uid-2b/0", diverged=(2,)))],
         ("ReseedHalted",)),
    Case("a_new_main_abandons_the_reseed_of_the_old_generation_and_deletes_nothing",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: down()}, pods=(0, 1)),
         reseed_rec(2, ReseedStep.ARCHIVE, gen=2, diverged=(2,)),
         "diverged: re-seed of memgraph-2 (generation 2) abandoned: the MAIN changed (generation 3); nothing "
         "deleted, decided again under memgraph-0; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec(diverged=(2,)))], ("ReseedAbandoned",)),
    # ---- the diverged mark and the last durable timestamp (manual runbook) --------------------------------
    Case("graph_emptied_by_hand_keeps_its_files_and_its_mark",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica(data=0)}, data={2: KEPT}, labels={2: {}}),
         rec(diverged=(2,)),
         "no action: memgraph-0 is MAIN, 1/2 replicas ready", [], policy=POLICY),
    Case("files_moved_aside_by_the_runbook_clear_the_mark_and_register_async",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica(data=0)},
              data={2: DataReport(DataOutcome.KEPT, durable_files=0)}),
         rec(diverged=(2,)),
         "replicas: register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec()), reg(0, 2)], ("ReplicaRegistered",), policy=POLICY),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_reseed_case(case: Case) -> None:
    decision = decide(case.snapshot, case.record, case.policy, PlannerMemory(leader=LEADER))
    assert decision.verdict == case.verdict
    assert core(decision.actions) == case.core
    assert events(decision.actions) == list(case.events)


def _written(actions: tuple[Action, ...], record: ClusterRecord) -> ClusterRecord:
    for action in actions:
        if isinstance(action, WriteRecord):
            record = action.record
    return record


def test_a_two_pod_cluster_heals_and_the_reseeded_pod_is_strict_sync_only_after_behind_0() -> None:
    # Each cycle's record is what the previous cycle wrote, decided by a new leader with no memory (the
    # record alone carries the re-seed, so a leader change at any step resumes it).
    record = rec(sync=None, diverged=(1,))
    steps = [
        snap({0: main(), 1: replica(data=9)}, expected=2, data={1: KEPT}),
        snap({0: main()}, expected=2, pods=(0,)),  # deleted; the StatefulSet re-creates it
        snap({0: main(), 1: replica(data=0)}, expected=2, uids={1: "uid-1b"}, data={1: ARCHIVED_G3}),
        snap({0: main(row(1, status="recovery", behind=-9)), 1: replica()}, expected=2, uids={1: "uid-1b"},
             data={1: ARCHIVED_G3}),
        snap({0: main(row(1)), 1: replica()}, expected=2, uids={1: "uid-1b"}, data={1: ARCHIVED_G3}),
        snap({0: main(row(1)), 1: replica()}, expected=2, uids={1: "uid-1b"}, data={1: ARCHIVED_G3}),
    ]
    seen: list[list[str]] = []
    for snapshot in steps:
        d = decide(snapshot, record, AUTO, PlannerMemory())
        seen.append([type(a).__name__ + (f":{a.mode.value}" if hasattr(a, "mode") else "")
                     for a in core(d.actions) if not isinstance(a, WriteRecord)])
        record = _written(d.actions, record)
    assert seen == [["ReseedPod"], [], ["RegisterReplica:async"], [], [],
                    ["DropReplica", "RegisterReplica:strict_sync"]]
    assert record.reseed_pod == "" and record.diverged == () and record.sync_replica == name(1)


def test_a_halted_reseed_is_not_retried_on_the_same_incarnation_but_is_on_the_next() -> None:
    halted = reseed_rec(2, ReseedStep.HALTED, incarnation="uid-2b/0", diverged=(2,))
    failed = DataReport(DataOutcome.FAILED, generation=3, durable_files=4, reason="cluster record unreadable")
    same = decide(snap(DIVERGED_2, uids={2: "uid-2b"}, data={2: failed}), halted, AUTO, PlannerMemory())
    assert not [a for a in same.actions if isinstance(a, ReseedPod)]
    restarted = decide(snap(DIVERGED_2, uids={2: "uid-2c"}, data={2: KEPT}), halted, AUTO, PlannerMemory())
    assert [a for a in restarted.actions if isinstance(a, ReseedPod)] == [ReseedPod(name(2), "uid-2c", 3)]


def test_the_refusal_event_is_emitted_once_while_the_refusal_holds() -> None:
    s, r = snap(DIVERGED_2, data={2: REFUSED}), rec(diverged=(2,))
    first = decide(s, r, AUTO, PlannerMemory(leader=LEADER))
    second = decide(s, r, AUTO, first.memory)
    assert events(first.actions) == ["ReseedRefused"] and events(second.actions) == []


def test_a_purge_request_stands_until_its_pod_reports_the_archive_gone() -> None:
    pending = replace(rec(), purge=(f"{name(2)}/{ARCHIVED_G3.archives[0].name}",))
    healthy3 = {0: main(row(1, STRICT), row(2)), 1: replica(), 2: replica()}
    still = decide(snap(healthy3, data={2: ARCHIVED_G3}), pending, AUTO, PlannerMemory())
    assert _written(still.actions, pending).purge == pending.purge
    gone = decide(snap(healthy3, data={2: KEPT}), pending, AUTO, PlannerMemory())
    assert _written(gone.actions, pending).purge == ()
