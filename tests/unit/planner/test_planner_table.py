"""The planner as a table: one named case per situation, asserting the exact verdict, the actions that
change Memgraph or the record (in order), the Events, and where it matters the labels.

Each prior-art incident (reference prior-art/001) has a case here whose safe outcome is asserted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from coordinator.core.history import Transition, append_transition
from coordinator.core.model import (
    LEADER_LABEL,
    ROLE_LABEL,
    Action,
    ClusterRecord,
    CreateSnapshot,
    Demote,
    DropReplica,
    Fence,
    FenceMiss,
    Policy,
    Promote,
    RegisterReplica,
    ReplicaMode,
    RequestSwitchover,
    SetLabels,
    Snapshot,
    WriteRecord,
)
from coordinator.core.outcomes import TransitionKind
from coordinator.core.planner import PlannerMemory, decide
from tests.unit.planner.builders import (
    DNS_POLICY,
    HEADLESS,
    LEADER,
    POLICY,
    core,
    down,
    events,
    healthy,
    label_actions,
    main,
    name,
    rec,
    reg,
    replica,
    row,
    snap,
)

ERROR_3 = "Couldn't register replica memgraph_2. Error: 3"
STRICT = "strict_sync"
NEW_IP = "127.0.9.9"  # a pod's next incarnation
SYNC_POLICY = replace(POLICY, sync_mode=ReplicaMode.SYNC)


FENCE_0 = Fence(name(0), "uid-0", 3)  # the old MAIN memgraph-0 of rec() (generation 3)


def drop(i: int) -> DropReplica:
    return DropReplica(name(0), f"memgraph_{i}")


@dataclass(frozen=True)
class Case:
    id: str
    snapshot: Snapshot
    record: ClusterRecord
    verdict: str
    core: list[Action]
    events: tuple[str, ...] = ()
    policy: Policy = POLICY
    labels: list[SetLabels] | None = None  # None: not asserted
    blocked_by: str = ""


def _failed_over(old: int, new: int, after: float, gen: int = 4, now: float = 1000.0,
                 sync: int | None = None, unfenced: str = "", fence: str = "confirmed") -> ClusterRecord:
    lossy = f" to an unfenced {unfenced} replica (may lose writes; two writers possible during a partition)"
    return replace(
        rec(new, sync, gen, confirmed=False),
        last_failover=f"memgraph-{old}->memgraph-{new} at {now:.3f} after {after:.1f}s"
        + (lossy if unfenced else "") + (f"; fence: {fence}" if fence else ""),
        last_failover_from=name(old), last_failover_to=name(new), last_failover_at=now,
        last_failover_duration_s=after, promoted_incarnation=f"uid-{new}/0",
        history=append_transition(
            "", Transition(TransitionKind.FAILOVER, name(old), name(new), gen, 0.0, after)),
    )


HEALTHY_409 = "agent of memgraph-0 answered 409 main-healthy"

CASES = [
    # ---- steady state ---------------------------------------------------------------------------
    Case("steady_state_converged_cluster_needs_nothing", healthy(), rec(),
         "no action: memgraph-0 is MAIN, 2/2 replicas ready", [], labels=[]),
    Case("replica_stuck_invalid_with_behind_0_is_not_ready_and_not_reregistered",
         snap({0: main(row(1, STRICT), row(2, status="invalid", behind=0)), 1: replica(), 2: replica()}),
         rec(),
         "no action: memgraph-0 is MAIN, 1/2 replicas ready", []),
    Case("wrong_mode_is_dropped_and_reregistered",
         snap({0: main(row(1, STRICT), row(2, "sync")), 1: replica(), 2: replica()}), rec(),
         "replicas: drop memgraph_2, register memgraph-2 as async; memgraph-0 is MAIN, 2/2 replicas ready",
         [drop(2), reg(0, 2)], ("ReplicaRegistered",)),
    Case("wrong_address_is_dropped_and_reregistered",
         snap({0: main(row(1, STRICT), row(2, address="10.0.0.7:10000")), 1: replica(), 2: replica()}), rec(),
         "replicas: drop memgraph_2, register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [drop(2), reg(0, 2)], ("ReplicaRegistered",)),
    # ---- a pod's new incarnation has a new IP (replicas are addressed by pod IP) ------------------
    Case("async_replica_with_a_new_pod_ip_is_dropped_and_registered_at_the_new_ip",
         snap({0: main(row(1, STRICT), row(2, status="invalid")), 1: replica(), 2: replica()},
              ips={2: NEW_IP}), rec(),
         "replicas: drop memgraph_2, register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [drop(2), reg(0, 2, pod_ip=NEW_IP)], ("ReplicaRegistered",)),
    Case("sync_replica_with_a_new_pod_ip_is_redesignated_before_its_row_is_replaced",
         # the MAIN still shows the old incarnation's row ready: it says nothing about the new one, so
         # another ready replica becomes STRICT_SYNC first (review M1), then the row moves to the new IP
         snap({0: main(row(1, STRICT), row(2)), 1: replica(), 2: replica()}, ips={1: NEW_IP}), rec(),
         "resync: sync replica memgraph-1 not ready, designating memgraph-2 (strict_sync); "
         "memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(2), reg(0, 2, STRICT), drop(1), reg(0, 1, pod_ip=NEW_IP),
          WriteRecord(rec(sync=2, confirmed=False))],
         ("ReplicaRegistered", "ReplicaRegistered")),
    Case("only_replica_with_a_new_pod_ip_goes_async_and_the_cluster_reports_degraded",
         snap({0: main(row(1, STRICT, status="invalid")), 1: replica()}, expected=2, ips={1: NEW_IP}), rec(),
         "degraded: sync replica memgraph-1 not ready, no other replica ready; memgraph-0 is MAIN, "
         "0/1 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(1), reg(0, 1, pod_ip=NEW_IP),
          WriteRecord(rec(sync=None, confirmed=False))],
         ("ReplicaRegistered", "SyncReplicaDegraded")),
    Case("new_pod_ip_is_registered_while_another_pod_is_unreachable",
         # an unreachable pod blocks no registration (issue 16 item 2): the dead STRICT_SYNC row goes so
         # the MAIN can commit, and memgraph-2's new incarnation is registered (ASYNC until it is ready)
         snap({0: main(row(1, STRICT), row(2, status="invalid")), 1: down(), 2: replica()},
              ips={2: NEW_IP}, force_ready=(1,)), rec(),
         "degraded: sync replica memgraph-1 not ready, no other replica ready; dropped its STRICT_SYNC "
         "registration so the MAIN can commit; memgraph-0 is MAIN, 0/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(1), drop(2), reg(0, 2, pod_ip=NEW_IP),
          WriteRecord(rec(sync=None, confirmed=False))],
         ("ReplicaRegistered", "SyncReplicaDegraded")),
    Case("pod_without_an_ip_yet_is_not_registered",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica()}, ips={2: ""}), rec(),
         "no action: memgraph-0 is MAIN, 1/2 replicas ready", []),
    Case("with_a_headless_service_replicas_are_addressed_by_dns_name",
         snap({0: main(row(1, STRICT, address=f"memgraph-1.{HEADLESS}:10000")), 1: replica(), 2: replica()},
              ips={1: NEW_IP}), rec(),
         "replicas: register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [RegisterReplica(name(0), name(2), ReplicaMode.ASYNC, f"memgraph-2.{HEADLESS}:10000")],
         ("ReplicaRegistered",), policy=DNS_POLICY),
    # ---- a departing replica (pod terminating) goes while its address answers (memgraph#1526) -------
    Case("departing_async_replica_is_dropped_while_its_memgraph_still_answers",
         healthy(terminating=(2,)), rec(),
         "replicas: drop memgraph_2; memgraph-0 is MAIN, 1/2 replicas ready",
         [drop(2)]),
    Case("departing_replica_already_silent_keeps_its_row_until_its_next_incarnation",
         snap({0: main(row(1, STRICT), row(2)), 1: replica(), 2: down()}, terminating=(2,),
              unreachable={2: 1.0}), rec(),
         "no action: memgraph-0 is MAIN, 1/2 replicas ready", []),
    Case("departing_replica_in_SYNC_mode_is_dropped_too",
         snap({0: main(row(1, "sync"), row(2)), 1: replica(), 2: replica()}, terminating=(2,)),
         rec(mode="sync"),
         "replicas: drop memgraph_2; memgraph-0 is MAIN, 1/2 replicas ready",
         [drop(2)], policy=SYNC_POLICY),
    Case("departing_sync_replica_hands_the_designation_over_before_its_row_goes",
         healthy(terminating=(1,)), rec(),
         "resync: sync replica memgraph-1 not ready, designating memgraph-2 (strict_sync);"
         " memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(2), reg(0, 2, STRICT), drop(1),
          WriteRecord(rec(sync=2, confirmed=False))], ("ReplicaRegistered",)),
    Case("departed_replica_without_a_row_is_registered_fresh_at_its_new_address",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica()}, ips={2: NEW_IP}), rec(),
         "replicas: register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [reg(0, 2, pod_ip=NEW_IP)], ("ReplicaRegistered",)),
    Case("scale_down_drops_the_row_of_the_removed_pod",
         snap({0: main(row(1, STRICT), row(2)), 1: replica()}, expected=2), rec(),
         "replicas: drop memgraph_2; memgraph-0 is MAIN, 1/1 replicas ready",
         [drop(2)]),
    Case("row_matching_no_pod_is_dropped",
         snap({0: main(row(1, STRICT), row(2), replace(row(7), name="old_name")), 1: replica(),
               2: replica()}),
         rec(), "replicas: drop old_name; memgraph-0 is MAIN, 2/2 replicas ready",
         [DropReplica(name(0), "old_name")]),
    Case("unregistered_replica_is_registered_async",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica()}), rec(),
         "replicas: register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [reg(0, 2)], ("ReplicaRegistered",)),
    Case("first_ready_replica_becomes_the_strict_sync_replica",
         snap({0: main(row(1), row(2)), 1: replica(), 2: replica()}), rec(0, None, 1),
         "designate: memgraph-1 as sync replica (strict_sync); drop memgraph_1, register memgraph-1"
         " as strict_sync;"
         " memgraph-0 is MAIN, 2/2 replicas ready",
         [drop(1), reg(0, 1, STRICT), WriteRecord(rec(0, 1, 1, confirmed=False))], ("ReplicaRegistered",)),
    Case("zombie_registration_of_a_live_replica_is_dropped_and_registered_again",
         # REGISTER answered Error: 5 earlier (replication port unreachable): the row stays with data_info {}
         snap({0: main(row(1, STRICT), row(2, status="unknown")), 1: replica(), 2: replica()}), rec(),
         "replicas: drop memgraph_2, register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [drop(2), reg(0, 2)], ("ReplicaRegistered",)),
    Case("sync_mode_SYNC_policy_registers_the_sync_replica_as_sync",
         snap({0: main(row(1, STRICT), row(2)), 1: replica(), 2: replica()}), rec(),
         "replicas: drop memgraph_1, register memgraph-1 as sync; memgraph-0 is MAIN, 2/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(1), reg(0, 1, "sync"),
          WriteRecord(rec(mode="sync", confirmed=False))],
         ("ReplicaRegistered",), policy=SYNC_POLICY),
    # ---- STRICT_SYNC availability (reference section 5) -------------------------------------------
    Case("strict_sync_replica_down_with_another_ready_moves_the_designation",
         snap({0: main(row(1, STRICT, "invalid", behind=-3), row(2)), 1: down(), 2: replica()},
              unreachable={1: 3.0}),
         rec(),
         "resync: sync replica memgraph-1 not ready, designating memgraph-2 (strict_sync);"
         " memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(2), reg(0, 2, STRICT), drop(1),
          WriteRecord(rec(sync=2, confirmed=False))], ("ReplicaRegistered",)),
    Case("strict_sync_replica_down_alone_is_dropped_so_the_main_can_commit",
         snap({0: main(row(1, STRICT, "invalid", behind=-3), row(2, status="invalid")), 1: down(),
               2: replica()},
              unreachable={1: 3.0}),
         rec(),
         "degraded: sync replica memgraph-1 not ready, no other replica ready; dropped its STRICT_SYNC"
         " registration so the MAIN can commit; memgraph-0 is MAIN, 0/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(1), WriteRecord(rec(sync=None))], ("SyncReplicaDegraded",)),
    Case("sync_replica_down_alone_in_SYNC_mode_stays_registered_and_is_reported_degraded",
         snap({0: main(row(1, "sync", "invalid"), row(2, status="invalid")), 1: down(), 2: replica()},
              unreachable={1: 3.0}),
         rec(mode="sync"),
         "degraded: sync replica memgraph-1 not ready, no other replica ready; memgraph-0 is MAIN,"
         " 0/2 replicas ready",
         [WriteRecord(rec(mode="sync", confirmed=False)), WriteRecord(rec(sync=None))],
         ("SyncReplicaDegraded",),
         policy=SYNC_POLICY),
    Case("sync_replica_stuck_invalid_with_behind_0_is_replaced",
         snap({0: main(row(1, STRICT, "invalid", behind=0), row(2)), 1: replica(), 2: replica()}), rec(),
         "resync: sync replica memgraph-1 not ready, designating memgraph-2 (strict_sync);"
         " memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(2), reg(0, 2, STRICT), drop(1), reg(0, 1),
          WriteRecord(rec(sync=2, confirmed=False))], ("ReplicaRegistered", "ReplicaRegistered")),
    Case("sync_replica_in_recovery_keeps_its_designation",
         snap({0: main(row(1, STRICT, "recovery", behind=-40), row(2)), 1: replica(), 2: replica()}), rec(),
         "no action: memgraph-0 is MAIN, 1/2 replicas ready", [WriteRecord(rec(confirmed=False))]),
    # ---- dual MAIN and hidden MAINs (I2, prior art 001 issue 2) -----------------------------------
    Case("two_mains_at_once_block_every_registration",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: main()}), rec(),
         "blocked: memgraph-2 reports MAIN but the record names memgraph-0 (dual MAIN)", [],
         ("DualMainBlocked",), blocked_by="memgraph-2",
         labels=[SetLabels(name(2), ((ROLE_LABEL, None),))]),
    # issue 16 item 2: an unreachable or missing pod is no reason to withhold a REGISTER by the record's
    # MAIN (the REGISTER takes the replica from any other MAIN, reference 3.3); it is registered ASYNC
    # first and designated sync once ready (reference 7.3)
    Case("pod_missing_from_observation_does_not_block_registration",
         snap({0: main(), 1: replica()}), rec(0, None, 1),
         "replicas: register memgraph-1 as async; memgraph-0 is MAIN, 0/2 replicas ready",
         [reg(0, 1)], ("ReplicaRegistered", "NoSyncReplica")),
    Case("unreachable_pod_does_not_block_registration",
         snap({0: main(), 1: replica(), 2: down()}, unreachable={2: 1.0}), rec(0, None, 1),
         "replicas: register memgraph-1 as async; memgraph-0 is MAIN, 0/2 replicas ready",
         [reg(0, 1)], ("ReplicaRegistered", "NoSyncReplica")),
    Case("crash_looping_third_pod_does_not_keep_the_returning_old_main_unregistered",
         snap({0: replica(), 1: main(), 2: down()}, unreachable={2: 30.0}), rec(1, None),
         "replicas: register memgraph-0 as async; memgraph-1 is MAIN, 0/2 replicas ready",
         [reg(1, 0)], ("ReplicaRegistered", "NoSyncReplica")),
    Case("unreachable_pod_does_not_block_remoding_a_replica_this_main_owns",
         snap({0: main(row(1, STRICT, "invalid"), row(2)), 1: down(), 2: replica()}, unreachable={1: 9.0}),
         rec(),
         "resync: sync replica memgraph-1 not ready, designating memgraph-2 (strict_sync);"
         " memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), drop(2), reg(0, 2, STRICT), drop(1),
          WriteRecord(rec(sync=2, confirmed=False))], ("ReplicaRegistered",)),
    # ---- bootstrap ------------------------------------------------------------------------------
    Case("bootstrap_waits_until_every_pod_is_observed",
         snap({0: main(data=0), 1: main(data=0)}), ClusterRecord(),
         "waiting: bootstrap needs all 3 pods reachable, memgraph-2 missing from observation (2/3 pods)", [],
         blocked_by="memgraph-2"),
    Case("bootstrap_picks_the_most_data_and_writes_the_record_before_demoting",
         snap({0: main(data=5), 1: main(data=9), 2: main(data=2)}), ClusterRecord(),
         "bootstrap: memgraph-1 chosen as MAIN (most data)",
         [WriteRecord(ClusterRecord(main=name(1), generation=1)), Demote(name(0)), Demote(name(2))],
         ("Promoted", "Demoted", "Demoted")),
    Case("bootstrap_breaks_a_data_tie_by_lowest_ordinal",
         snap({0: main(data=1), 1: main(data=7), 2: main(data=7)}), ClusterRecord(),
         "bootstrap: memgraph-1 chosen as MAIN (most data, then lowest ordinal)",
         [WriteRecord(ClusterRecord(main=name(1), generation=1)), Demote(name(0)), Demote(name(2))],
         ("Promoted", "Demoted", "Demoted")),
    Case("bootstrap_of_empty_instances_picks_ordinal_0",
         snap({0: main(data=0), 1: main(data=0), 2: main(data=0)}), ClusterRecord(),
         "bootstrap: memgraph-0 chosen as MAIN (lowest ordinal)",
         [WriteRecord(ClusterRecord(main=name(0), generation=1)), Demote(name(1)), Demote(name(2))],
         ("Promoted", "Demoted", "Demoted")),
    Case("lost_record_adopts_the_only_main",
         snap({0: replica(), 1: main(row(0), row(2)), 2: replica()}), ClusterRecord(),
         "adopt: no MAIN in the record, memgraph-1 is the only MAIN; recording it",
         [WriteRecord(ClusterRecord(main=name(1), generation=1))]),
    # ---- failover -------------------------------------------------------------------------------
    Case("failover_waits_just_before_failover_after",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 4.9}), rec(),
         "waiting: memgraph-0 unreachable 4.9s < failoverAfter 5s", [], blocked_by="memgraph-0"),
    # ---- review C2/M1: what a leader knows about the sync replica when the MAIN is gone -----------
    Case("new_leader_that_never_saw_the_main_fails_over_on_the_recorded_confirmation",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 5.0}, last_ready=(), main_seen=False,
              labels={0: {ROLE_LABEL: "main"}}),
         rec(confirmed=True),
         "failover: memgraph-0 unreachable 5.0s, promoting sync replica memgraph-1; fencing memgraph-0 first",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 5.0)), Promote(name(1)), CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted"),
         labels=None),
    Case("new_leader_without_a_recorded_confirmation_does_not_fail_over",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 9.0}, last_ready=(), main_seen=False),
         rec(confirmed=False),
         "waiting: memgraph-0 unreachable 9.0s, no failover candidate (sync replica memgraph-1 was not ready"
         " at the last observation, allowAsyncFailover is off)",
         [], ("NoFailoverCandidate",), blocked_by="memgraph-0"),
    Case("sync_replica_ready_only_in_async_mode_at_the_last_look_is_not_a_safe_candidate",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 9.0}, last_ready=(1, 2),
              last_sync_ready=()),
         rec(),
         "waiting: memgraph-0 unreachable 9.0s, no failover candidate (sync replica memgraph-1 was not ready"
         " at the last observation, allowAsyncFailover is off)",
         [], ("NoFailoverCandidate",), blocked_by="memgraph-0"),
    Case("a_divergence_mark_is_written_even_when_the_sync_confirmation_is_cleared_in_the_same_cycle",
         snap({0: main(row(1, STRICT, "recovery", behind=-4), row(2, status="diverged")), 1: replica(),
               2: replica()}),
         rec(),
         "replicas: drop memgraph_2; memgraph-0 is MAIN, 0/2 replicas ready",
         [WriteRecord(rec(confirmed=False)), WriteRecord(rec(diverged=(2,), confirmed=False)), drop(2)],
         ("ReplicaDiverged",)),
    Case("steady_state_records_that_the_sync_replica_is_confirmed_in_sync",
         healthy(), rec(confirmed=False),
         "no action: memgraph-0 is MAIN, 2/2 replicas ready", [WriteRecord(rec(confirmed=True))], labels=[]),
    # issue 16 item 7: the replica ready at the last look is registered STRICT_SYNC on the new MAIN right
    # after its promotion, and the new MAIN is labelled only after that (labels follow the core actions)
    Case("failover_promotes_the_sync_replica_at_failover_after",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 5.0},
              labels={0: {ROLE_LABEL: "main", LEADER_LABEL: "true"}}),
         rec(),
         "failover: memgraph-0 unreachable 5.0s, promoting sync replica memgraph-1; memgraph-2 registered"
         " strict_sync before it is labelled; fencing memgraph-0 first",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 5.0, sync=2)), Promote(name(1)), reg(1, 2, STRICT),
          CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted", "ReplicaRegistered"),
         labels=[SetLabels(name(0), ((ROLE_LABEL, None),)), SetLabels(name(1), ((ROLE_LABEL, "main"),))]),
    # issue 16 item 5: fence before promoting (reference memgraph-replication.md 7.2)
    Case("failover_fences_the_old_main_before_the_record_names_the_new_one",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 5.0}, last_ready=(1,)),
         rec(),
         "failover: memgraph-0 unreachable 5.0s, promoting sync replica memgraph-1; fencing memgraph-0 first",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 5.0)), Promote(name(1)), CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted")),
    Case("failover_after_an_unconfirmed_fence_goes_ahead_and_says_so",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 7.0}, last_ready=(1,),
              fence_unconfirmed={0: FenceMiss("uid-0", 3, "agent of memgraph-0 did not answer")}),
         rec(),
         "failover: memgraph-0 unreachable 7.0s, promoting sync replica memgraph-1; fence: unconfirmed (agent"
         " of memgraph-0 did not answer)",
         [WriteRecord(_failed_over(0, 1, 7.0, fence="unconfirmed (agent of memgraph-0 did not answer)")),
          Promote(name(1)), CreateSnapshot(name(1))],
         ("FenceUnconfirmed", "FailoverStarted", "Promoted")),
    Case("an_unconfirmed_fence_of_another_incarnation_or_generation_does_not_count",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 7.0}, last_ready=(1,),
              fence_unconfirmed={0: FenceMiss("uid-0", 2, "agent of memgraph-0 did not answer")}),
         rec(),
         "failover: memgraph-0 unreachable 7.0s, promoting sync replica memgraph-1; fencing memgraph-0 first",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 7.0)), Promote(name(1)), CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted")),
    Case("failover_of_a_main_whose_pod_is_gone_cannot_fence_and_says_so",
         snap({0: down(), 1: replica(), 2: replica()}, pods=(1, 2), unreachable={0: 5.0}, last_ready=(1,)),
         rec(),
         "failover: memgraph-0 unreachable 5.0s, promoting sync replica memgraph-1; fence: unconfirmed (its"
         " pod is gone)",
         [WriteRecord(_failed_over(0, 1, 5.0, fence="unconfirmed (its pod is gone)")), Promote(name(1)),
          CreateSnapshot(name(1))],
         ("FenceUnconfirmed", "FailoverStarted", "Promoted")),
    # issue 16 item 4: a stopped Memgraph still accepts TCP (its pod stays Ready); only its own agent can
    # tell it lost, so a Ready pod is failed over through a confirmed fence alone
    Case("a_ready_main_pod_is_failed_over_only_through_its_agents_fence",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 30.0},
              labels={0: {ROLE_LABEL: "main", LEADER_LABEL: "true"}},
              force_ready=(0,)),
         rec(),
         "failover: memgraph-0 unreachable 30.0s, promoting sync replica memgraph-1; memgraph-2 registered"
         " strict_sync before it is labelled; fencing memgraph-0 first (its pod is Ready: no failover unless"
         " its agent finds its Memgraph lost)",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 30.0, sync=2)), Promote(name(1)), reg(1, 2, STRICT),
          CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted", "ReplicaRegistered")),
    Case("no_failover_while_the_main_pod_is_ready_and_its_agent_did_not_answer",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 30.0},
              labels={0: {ROLE_LABEL: "main", LEADER_LABEL: "true"}}, force_ready=(0,),
              fence_unconfirmed={0: FenceMiss("uid-0", 3, "agent of memgraph-0 did not answer", 999.0)}),
         rec(),
         "waiting: memgraph-0 unreachable 30.0s but its pod is Ready and its agent did not confirm it lost"
         " (agent of memgraph-0 did not answer): no failover", [], blocked_by="memgraph-0",
         labels=[]),
    Case("a_ready_main_pods_agent_that_did_not_answer_is_asked_again_after_the_retry_delay",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 30.0}, last_ready=(1,),
              labels={0: {ROLE_LABEL: "main", LEADER_LABEL: "true"}}, force_ready=(0,),
              fence_unconfirmed={0: FenceMiss("uid-0", 3, "agent of memgraph-0 did not answer", 989.0)}),
         rec(),
         "failover: memgraph-0 unreachable 30.0s, promoting sync replica memgraph-1; fencing memgraph-0 first"
         " (its pod is Ready: no failover unless its agent finds its Memgraph lost)",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 30.0)), Promote(name(1)), CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted")),
    # review defect c: the old MAIN's agent says its Memgraph answers locally (only the leader's path is
    # cut): no promotion (two MAINs), said in the verdict; the fence is asked again every cycle
    Case("failover_is_withheld_while_the_old_mains_agent_refuses_the_fence",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 7.0}, last_ready=(1,),
              fence_refused={0: FenceMiss("uid-0", 3, HEALTHY_409, 999.0)}),
         rec(),
         "waiting: failover withheld: memgraph-0 is unreachable from the leader, but its agent refused the"
         " fence (agent of memgraph-0 answered 409 main-healthy); asking again each cycle",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 7.0)), Promote(name(1)), CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted"), blocked_by="memgraph-0"),
    Case("a_refused_fence_of_an_earlier_generation_withholds_nothing",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 7.0}, last_ready=(1,),
              fence_refused={0: FenceMiss("uid-0", 2, HEALTHY_409, 999.0)}),
         rec(),
         "failover: memgraph-0 unreachable 7.0s, promoting sync replica memgraph-1; fencing memgraph-0 first",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 7.0)), Promote(name(1)), CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted")),
    Case("replica_invalid_during_main_termination_is_not_promoted",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 8.0}, terminating=(0,), last_ready=()),
         rec(),
         "waiting: memgraph-0 unreachable 8.0s, no failover candidate (sync replica memgraph-1 was"
         " not ready at"
         " the last observation, allowAsyncFailover is off)",
         [], ("NoFailoverCandidate",), blocked_by="memgraph-0"),
    Case("async_failover_refused_by_default",
         snap({0: down(), 1: down(), 2: replica()}, unreachable={0: 6.0, 1: 6.0}, last_ready=(2,)), rec(),
         "waiting: memgraph-0 unreachable 6.0s, no failover candidate (sync replica memgraph-1 is"
         " not a reachable"
         " replica, allowAsyncFailover is off)",
         [], ("NoFailoverCandidate",), blocked_by="memgraph-0"),
    Case("async_failover_allowed_promotes_the_most_advanced_ready_replica",
         snap({0: down(), 1: down(), 2: replica(), 3: replica()}, expected=4, unreachable={0: 6.0, 1: 6.0},
              last_ready=(2, 3), last_ts={2: 40, 3: 52}),
         rec(),
         "failover: memgraph-0 unreachable 6.0s, promoting ASYNC replica (may lose writes; two writers"
         " possible during a partition) memgraph-3;"
         " memgraph-2 registered strict_sync before it is labelled; fencing memgraph-0 first",
         [FENCE_0, WriteRecord(_failed_over(0, 3, 6.0, sync=2, unfenced="ASYNC")), Promote(name(3)),
          reg(3, 2, STRICT), CreateSnapshot(name(3))],
         ("FailoverStarted", "Promoted", "ReplicaRegistered"),
         policy=replace(POLICY, allow_async_failover=True)),
    # issue 16 item 6: in SYNC mode nothing fences an isolated old MAIN; failover is opt-in
    Case("sync_mode_failover_is_refused_without_allow_async_failover",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 5.0}), rec(mode="sync"),
         "waiting: memgraph-0 unreachable 5.0s, no failover candidate (memgraph-1 is registered sync, which"
         " does not fence the old MAIN (may lose writes, two writers during a partition), allowAsyncFailover"
         " is off)",
         [], ("NoFailoverCandidate",), policy=SYNC_POLICY, blocked_by="memgraph-0"),
    Case("sync_mode_failover_with_allow_async_failover_says_it_may_lose_writes",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 5.0}), rec(mode="sync"),
         "failover: memgraph-0 unreachable 5.0s, promoting SYNC replica (may lose writes; two writers"
         " possible during a partition) memgraph-1; memgraph-2 registered sync before it is labelled;"
         " fencing memgraph-0 first",
         [FENCE_0, WriteRecord(replace(_failed_over(0, 1, 5.0, sync=2, unfenced="SYNC"), sync_mode="sync")),
          Promote(name(1)),
          reg(1, 2, "sync"), CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted", "ReplicaRegistered"),
         policy=replace(SYNC_POLICY, allow_async_failover=True)),
    Case("new_pod_starting_as_main_while_failover_is_pending_is_neither_promoted_nor_given_replicas",
         snap({0: down(), 1: replica(), 2: main(data=0)}, unreachable={0: 2.1}, labels={2: {}}), rec(),
         "waiting: memgraph-0 unreachable 2.1s < failoverAfter 5s; memgraph-2 reports MAIN (its"
         " guard demotes it)",
         [], ("DualMainBlocked",), blocked_by="memgraph-0", labels=[]),
    Case("failover_with_a_default_main_pod_around_still_promotes_only_the_sync_replica",
         snap({0: down(), 1: replica(), 2: main(data=0)}, unreachable={0: 5.5}, labels={2: {}}), rec(),
         "failover: memgraph-0 unreachable 5.5s, promoting sync replica memgraph-1; fencing memgraph-0 first",
         [FENCE_0, WriteRecord(_failed_over(0, 1, 5.5)), Promote(name(1)),
          CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted", "DualMainBlocked")),
    Case("diverged_sync_replica_is_never_a_failover_candidate",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 9.0}), rec(diverged=(1,)),
         "waiting: memgraph-0 unreachable 9.0s, no failover candidate (sync replica memgraph-1 is"
         " not a reachable"
         " replica, allowAsyncFailover is off)",
         [], ("NoFailoverCandidate",), blocked_by="memgraph-0"),
    Case("record_main_reporting_replica_with_no_other_main_is_promoted_again",
         snap({0: replica(), 1: replica(), 2: replica()}), rec(),
         "restore: memgraph-0 is named by the record but reports REPLICA and no MAIN exists; promoting it",
         [Promote(name(0))], ("Promoted",), blocked_by="memgraph-0"),
    Case("record_main_recreated_empty_fails_over_to_the_confirmed_sync_replica",
         # scenario 9: the MAIN lost its volume and came back empty, as Memgraph's default MAIN (it answers:
         # no fence, its agent would refuse a Memgraph that answers, and it holds no commit to resume)
         snap({0: main(data=0), 1: replica(data=500), 2: replica(data=500)}), rec(),
         "failover: memgraph-0 came back empty (its data is on the replicas),"
         " promoting sync replica memgraph-1; memgraph-2 registered strict_sync before it is labelled",
         [WriteRecord(_failed_over(0, 1, 0.0, sync=2, fence="")), Promote(name(1)), reg(1, 2, STRICT),
          CreateSnapshot(name(1))],
         ("FailoverStarted", "Promoted", "ReplicaRegistered"),
         labels=[SetLabels(name(0), ((ROLE_LABEL, None),)), SetLabels(name(1), ((ROLE_LABEL, "main"),))]),
    Case("record_main_recreated_empty_without_a_known_sync_replica_gets_no_replicas_and_no_route",
         snap({0: main(data=0), 1: replica(data=500), 2: replica(data=500)}, main_seen=False),
         rec(confirmed=False),
         "blocked: memgraph-0 (record's MAIN) holds no data but memgraph-1 does; not registering or routing"
         " (sync replica memgraph-1 was not ready at the last observation, allowAsyncFailover is off)",
         [], ("EmptyMainBlocked",), blocked_by="memgraph-0",
         labels=[SetLabels(name(0), ((ROLE_LABEL, None),))]),
    # ---- divergence (I4, prior art 001 issue 7) ---------------------------------------------------
    Case("register_error_3_marks_the_replica_diverged_instead_of_retrying",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica(data=49, register_error=ERROR_3)}), rec(),
         "diverged: memgraph-2 marked diverged; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec(diverged=(2,)))], ("ReplicaDiverged",),
         labels=[SetLabels(name(2), ((ROLE_LABEL, None),))]),
    Case("replica_shown_diverged_on_the_main_is_marked_and_its_row_dropped",
         snap({0: main(row(1, STRICT), row(2, status="diverged", behind=-3657)), 1: replica(), 2: replica()}),
         rec(),
         "replicas: drop memgraph_2; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec(diverged=(2,))), drop(2)], ("ReplicaDiverged",)),
    Case("known_diverged_replica_is_left_alone_without_a_new_event",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica(data=49, register_error=ERROR_3)},
              labels={2: {}}),
         rec(diverged=(2,)),
         "no action: memgraph-0 is MAIN, 1/2 replicas ready", [], labels=[]),
    Case("diverged_pod_observed_empty_is_cleared_and_registered",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica(data=0, register_error=ERROR_3)}),
         rec(diverged=(2,)),
         "replicas: register memgraph-2 as async; memgraph-0 is MAIN, 1/2 replicas ready",
         [WriteRecord(rec()), reg(0, 2)], ("ReplicaRegistered",)),
    # ---- terminating MAIN, pause, procedure --------------------------------------------------------
    Case("terminating_main_requests_a_switchover_and_loses_its_route_first",
         healthy(terminating=(0,)), rec(),
         "switchover: memgraph-0 is terminating, requesting a hand-over",
         [RequestSwitchover(name(0), "pod terminating")], ("Switchover",),
         labels=[SetLabels(name(0), ((ROLE_LABEL, None),))]),
    Case("pause_reports_what_it_would_do_and_does_nothing",
         snap({0: main(row(1, STRICT)), 1: replica(), 2: replica()}), rec(paused=True),
         "paused: would register memgraph-2 as async (replicas: register memgraph-2 as async;"
         " memgraph-0 is MAIN, 1/2 replicas ready)", [], labels=[]),
    Case("pause_with_wrong_labels_fixes_no_labels",
         healthy(labels={1: {ROLE_LABEL: "main"}}), rec(paused=True),
         "paused: would relabel memgraph-1 (labels: memgraph-0 is MAIN, 2/2 replicas ready; relabel"
         " memgraph-1)",
         [], labels=[]),
    Case("running_switchover_procedure_owns_the_cycle",
         healthy(switchover="memgraph-0->memgraph-1", labels={0: {}}), rec(),
         "waiting: switchover in progress (memgraph-0->memgraph-1)", [], labels=[]),
    # ---- labels ---------------------------------------------------------------------------------
    Case("labels_follow_roles_and_the_leader_label_moves",
         healthy(leader="memgraph-1",
                 labels={0: {LEADER_LABEL: "true"}, 1: {ROLE_LABEL: "main"}, 2: {ROLE_LABEL: "replica"}}),
         rec(),
         "labels: memgraph-0 is MAIN, 2/2 replicas ready; relabel memgraph-1, relabel memgraph-0",
         [], ("LeaderElected",),
         labels=[SetLabels(name(1), ((ROLE_LABEL, "replica"), (LEADER_LABEL, "true"))),
                 SetLabels(name(0), ((ROLE_LABEL, "main"), (LEADER_LABEL, None)))]),
    Case("unreachable_replica_loses_its_role_label",
         snap({0: main(row(1, STRICT), row(2, status="invalid")), 1: replica(), 2: down()},
              unreachable={2: 4.0},
              labels={2: {ROLE_LABEL: "replica"}}),
         rec(),
         "labels: memgraph-0 is MAIN, 1/2 replicas ready; relabel memgraph-2", [],
         labels=[SetLabels(name(2), ((ROLE_LABEL, None),))]),
    Case("unreachable_main_keeps_its_route_until_failover_is_decided",
         snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 1.0},
              labels={0: {ROLE_LABEL: "main", LEADER_LABEL: "true"}}),
         rec(),
         "waiting: memgraph-0 unreachable 1.0s < failoverAfter 5s", [], blocked_by="memgraph-0", labels=[]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_planner_case(case: Case) -> None:
    decision = decide(case.snapshot, case.record, case.policy, PlannerMemory(leader=LEADER))
    assert decision.verdict == case.verdict
    assert decision.verdict.startswith(f"{decision.kind.value}: ")  # the kind code reads is the one shown
    assert core(decision.actions) == case.core
    assert events(decision.actions) == list(case.events)
    assert decision.blocked_by == case.blocked_by
    if case.labels is not None:
        assert label_actions(decision.actions) == case.labels


def test_table_has_at_least_30_named_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_fence_runs_before_the_old_mains_route_is_removed() -> None:
    """Review defect c: a fence the old MAIN's agent refuses (its Memgraph answers locally) stops the cycle
    before anything else, so a MAIN that may be healthy keeps its client Service route."""
    case = next(c for c in CASES if c.id == "failover_promotes_the_sync_replica_at_failover_after")
    actions = list(decide(case.snapshot, case.record, case.policy, PlannerMemory(leader=LEADER)).actions)
    label_off = actions.index(SetLabels(name(0), ((ROLE_LABEL, None),)))
    assert actions[0] == FENCE_0
    assert label_off < actions.index(Promote(name(1)))
