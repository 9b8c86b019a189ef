"""The pure decision core: decide(snapshot, record, policy) -> Decision.

Role: read one immutable Snapshot of the cluster, the ClusterRecord kept in the Lease and the Policy,
and return the ordered actions for the executor plus exactly one one-line verdict. The rules run in the
order of `decide`; each is a small function whose comment names the incident it prevents.

Must never: do I/O (no kubernetes, neo4j, requests, socket, time: `snapshot.now` is the clock), keep
state between calls (what must be remembered travels in the record or in PlannerMemory), promote
while the record's MAIN is reachable and MAIN, or REGISTER from any pod but the record's MAIN, or
while another reachable instance reports MAIN (I2).
"""

from __future__ import annotations

from dataclasses import replace

from coordinator.core import fencing, reseed
from coordinator.core.compose import Decision, PlannerMemory, finish
from coordinator.core.history import Transition, append_transition
from coordinator.core.model import (
    FENCE_READY_RETRY_S,
    ClusterRecord,
    CreateSnapshot,
    Demote,
    EmitEvent,
    Policy,
    Promote,
    RegisterReplica,
    ReplicaMode,
    ReplicaStatus,
    RequestSwitchover,
    ReseedPolicy,
    Role,
    Snapshot,
    pod_ordinal,
    replica_name,
)
from coordinator.core.outcomes import DecisionKind as K
from coordinator.core.outcomes import TransitionKind
from coordinator.core.replication import reconcile_replication
from coordinator.core.rules import Plan, Verdict, View, is_divergence_error, replica_address


def decide(
    snapshot: Snapshot, record: ClusterRecord, policy: Policy, memory: PlannerMemory | None = None
) -> Decision:
    """One reconcile decision. The rules below run in order; the first that owns the cycle (returns a
    Verdict) ends it; coordinator.core.compose then places the record writes, labels and Events."""
    memory = memory or PlannerMemory()
    # A running switchover procedure owns the cluster: two writers of labels/roles would fight.
    if snapshot.switchover_in_progress:
        waiting = Verdict(K.WAITING, f"switchover in progress ({snapshot.switchover_in_progress})")
        return Decision((), waiting.kind, waiting.text, record, memory=memory)
    view = View.build(snapshot, record, policy)
    plan = Plan(record=record)
    view = _track_divergence(view, plan)
    # reseed.step (I4): the new MAIN's epoch on disk, then one diverged pod a step closer to a replica.
    for rule in (_bootstrap, _terminating_main, _main_lost, _empty_main, _dual_main, reseed.step):
        verdict = rule(view, plan)
        if verdict is not None:
            break
    else:
        verdict = reconcile_replication(view, plan)
    return finish(view, plan, verdict, record, memory)


# ---- rule: divergence (I4) -------------------------------------------------------------------------


def _track_divergence(view: View, plan: Plan) -> View:
    """Prior art 001 issue 7: an old MAIN's data on a replica: marked, never re-registered in a loop."""
    diverged = set(view.record.diverged)
    for name in view.expected:
        obs = view.obs(name)
        row = view.current_row(name)  # a row at a previous address is an earlier incarnation's (issue 17)
        shown = row is not None and row.status == ReplicaStatus.DIVERGED
        refused = obs is not None and is_divergence_error(obs.register_error) and not obs.empty
        if name != view.record.main and (shown or refused):
            diverged.add(name)
        elif name in diverged and obs is not None and obs.reachable and obs.empty and not shown \
                and reseed.clean_start(view, name) is not False:
            # Memgraph accepts it only with a last durable timestamp of 0 (reference 7.3): its init
            # container saw no snapshot or WAL file. A graph emptied by hand keeps its files (and its
            # timestamp): not cleared, or it would loop through REGISTER Error 3. Unknown: empty is all.
            diverged.discard(name)
    new = sorted(diverged - set(view.record.diverged), key=pod_ordinal)
    if diverged != set(view.record.diverged):
        plan.record = replace(plan.record, diverged=tuple(sorted(diverged, key=pod_ordinal)))
    if new:
        plan.notes.append(f"{', '.join(new)} marked diverged")
    for name in new:
        main = view.record.main or "(none)"
        then = "re-seeded" if view.policy.reseed is ReseedPolicy.AUTO else "left to an operator (manual)"
        msg = f"{name} holds history the MAIN {main} never had; quarantined, not re-registered, {then}"
        plan.after.append(EmitEvent("ReplicaDiverged", msg, name, True))
    return view.with_diverged(frozenset(diverged))


# ---- rule: bootstrap --------------------------------------------------------------------------------


def _data(view: View, name: str) -> int:
    obs = view.obs(name)
    return -1 if obs is None or obs.storage is None else obs.storage.vertex_count + obs.storage.edge_count


def _bootstrap_choice(view: View, mains: list[str]) -> tuple[str, str]:
    """(pod, why): the most data (vertices + edges), then the lowest ordinal (DESIGN: replication policy)."""
    ranked = sorted(mains, key=lambda p: (-_data(view, p), pod_ordinal(p)))
    ties = [p for p in ranked if _data(view, p) == _data(view, ranked[0])]
    if len(ties) == 1:
        return ranked[0], "most data"
    return ranked[0], "lowest ordinal" if len(ties) == len(ranked) else "most data, then lowest ordinal"


def _bootstrap(view: View, plan: Plan) -> Verdict | None:
    """Fresh cluster: wait for every pod, pick the most data then the lowest ordinal, record it FIRST (I2)."""
    if view.record.main:
        return None
    block = view.bootstrap_block()
    if block is not None:
        plan.blocked_by = block.pod
        return Verdict(K.WAITING, f"bootstrap needs all {len(view.expected)} pods reachable, {block.text}")
    mains = [p for p in view.expected if view.role(p) == Role.MAIN]
    if len(mains) == len(view.expected) and not any(view.main_rows_of(p) for p in mains):
        unknown = [p for p in mains if _data(view, p) < 0]
        if unknown:
            plan.blocked_by = unknown[0]
            return Verdict(K.WAITING, f"bootstrap needs storage info of {unknown[0]}")
        chosen, why = _bootstrap_choice(view, mains)
        plan.write_record(replace(plan.record, main=chosen, generation=plan.record.generation + 1))
        plan.event("Promoted", f"{chosen} chosen as MAIN at bootstrap ({why})", chosen)
        for other in [p for p in mains if p != chosen]:
            plan.actions.append(Demote(other))
            plan.event("Demoted", f"{other} demoted to REPLICA at bootstrap", other)
        return Verdict(K.BOOTSTRAP, f"{chosen} chosen as MAIN ({why})")
    if len(mains) == 1:  # the record was lost while the cluster ran: adopt the only MAIN
        plan.write_record(replace(plan.record, main=mains[0], generation=plan.record.generation + 1))
        return Verdict(K.ADOPT, f"no MAIN in the record, {mains[0]} is the only MAIN; recording it")
    plan.blocked_by = mains[0] if mains else (view.expected[0] if view.expected else "")
    msg = f"no record and {len(mains)} MAINs; choose one by hand"
    plan.key_event("nomain:bootstrap", "DualMainBlocked", msg)
    return Verdict(K.BLOCKED, f"no MAIN in the record and {len(mains)} instances report MAIN alongside "
                   "replicas")


# ---- rule: terminating MAIN ---------------------------------------------------------------------------


def _terminating_main(view: View, plan: Plan) -> Verdict | None:
    """Prior art 001 issue 6: a preStop hook that never reached us must not leave the hand-over undone."""
    main = view.record.main
    if not (view.main_ok() and view.terminating(main)):
        return None
    plan.actions.append(RequestSwitchover(main, "pod terminating"))
    msg = f"{main} is terminating: switchover requested"
    plan.key_event(f"switchover:{main}", "Switchover", msg, main, warning=False)
    return Verdict(K.SWITCHOVER, f"{main} is terminating, requesting a hand-over")


# ---- rule: the record's MAIN is not a reachable MAIN ---------------------------------------------------


def _main_lost(view: View, plan: Plan) -> Verdict | None:
    """Failover only after failoverAfter and only with a pod Kubernetes also sees down (I3, I7), or whose
    own agent confirms it lost: its Memgraph stopped or not answering locally, and now killed (issue 16
    item 4: a stopped Memgraph still accepts TCP, so its pod stays Ready; a busy one answers)."""
    main = view.record.main
    if view.main_ok():
        return None
    if view.role(main) == Role.REPLICA:
        return _restore_main(view, plan)
    down = view.snapshot.unreachable_for_s.get(main, 0.0)
    after = view.policy.failover_after_s
    rogues = view.rogue_mains()
    note = f"; {rogues[0]} reports MAIN (its guard demotes it)" if rogues else ""
    _warn_dual(plan, rogues, main)
    plan.blocked_by = main  # cleared below when a failover is decided
    if down < after:
        return Verdict(K.WAITING, f"{main} unreachable {down:.1f}s < failoverAfter {after:g}s{note}")
    pod = view.pod(main)
    ready = pod is not None and pod.ready and not pod.terminating
    miss = fencing.note(view.snapshot.fence_unconfirmed, view, main)
    if ready and miss is not None and view.snapshot.now - miss.at < FENCE_READY_RETRY_S:
        return Verdict(K.WAITING, f"{main} unreachable {down:.1f}s but its pod is Ready and its agent did "
                       f"not confirm it lost ({miss.reason}): no failover{note}")
    candidate, is_async, why = _failover_candidate(view)
    if not candidate:
        plan.key_event(f"nocand:{main}", "NoFailoverCandidate", f"{main} lost; {why}", main)
        return Verdict(K.WAITING, f"{main} unreachable {down:.1f}s, no failover candidate ({why}){note}")
    plan.blocked_by = ""
    verdict = _failover(view, plan, candidate, is_async, down, fence=True, ready=ready)
    refused = fencing.note(view.snapshot.fence_refused, view, main)
    if refused is None:
        return verdict
    # Review defect c: the old MAIN's agent says its Memgraph runs and answers locally (only our Bolt path
    # to it fails): promoting would make two MAINs. Withheld, said why; the fence is asked again each cycle.
    plan.blocked_by = main
    # (no seconds in this text: the verdict is logged when it changes, and this one lasts)
    return Verdict(K.WAITING, f"failover withheld: {main} is unreachable from the leader, but its agent "
                   f"refused the fence ({refused.reason}); asking again each cycle{note}")


def _restore_main(view: View, plan: Plan) -> Verdict | None:
    """A switchover that demoted the MAIN but never promoted its target must not leave us headless."""
    main = view.record.main
    rogues = view.rogue_mains()
    plan.blocked_by = main
    if rogues:
        return Verdict(K.WAITING, f"{main} (record's MAIN) reports REPLICA, {rogues[0]} reports MAIN "
                       "(guard demotes it)")
    if view.terminating(main):
        return Verdict(K.WAITING, f"{main} is terminating and already demoted (hand-over in progress)")
    plan.actions.append(Promote(main))
    plan.event("Promoted", f"{main} named by the record reported REPLICA; promoted again", main)
    return Verdict(K.RESTORE, f"{main} is named by the record but reports REPLICA and no MAIN exists; "
                   "promoting it")


def _failover_candidate(view: View) -> tuple[str, bool, str]:
    """(pod, is_async, why-none). Prior art 001 issue 5: a replica not READY at the last look: never."""
    last_ready = set(view.snapshot.last_ready_replicas)
    sync = view.record.sync_replica
    safe_mode = view.record.sync_mode in (ReplicaMode.STRICT_SYNC.value, ReplicaMode.SYNC.value)
    # Review C2: a leader elected after the MAIN died never saw it; the record carries the fact instead.
    seen = view.snapshot.main_seen
    in_sync = sync in view.snapshot.last_sync_ready if seen else view.record.sync_confirmed
    why = "no sync replica designated"
    if sync:
        if not view.live_replica(sync):
            why = f"sync replica {sync} is not a reachable replica"
        elif not in_sync:
            why = f"sync replica {sync} was not ready at the last observation"
        elif view.record.sync_mode == ReplicaMode.STRICT_SYNC.value:
            return sync, False, ""
        else:
            # Issue 16 item 6: only STRICT_SYNC votes fence an isolated old MAIN (its commits abort without
            # the vote); in SYNC mode it keeps committing after a failover. Opt-in, like an ASYNC target.
            why = (f"{sync} is registered {view.record.sync_mode or 'async'}, which does not fence the old "
                   "MAIN (may lose writes, two writers during a partition)")
            if view.policy.allow_async_failover and safe_mode:
                return sync, True, ""
    if not view.policy.allow_async_failover:
        return "", False, why + ", allowAsyncFailover is off"
    pool = [p for p in view.replica_pods() if view.live_replica(p) and p in last_ready]
    if not pool:
        return "", False, why + ", no other replica was ready"
    ts = view.snapshot.last_replica_ts
    best = sorted(pool, key=lambda p: (-ts.get(p, -1), pod_ordinal(p)))[0]
    return best, True, ""


def _incarnation(view: View, name: str) -> str:
    pod = view.pod(name)
    return pod.incarnation if pod is not None else ""


def _failover(
    view: View, plan: Plan, candidate: str, is_async: bool, down: float, cause: str = "", fence: bool = False,
    ready: bool = False,
) -> Verdict:
    """Fence the old MAIN (`fence`; compose puts it before everything, so a refused fence leaves its route
    alone), label off (no writes reach it), record, promote; replicas follow. `cause` says why the old
    MAIN is lost in the verdict (default: how long it has been unreachable); `ready`: its pod is Ready."""
    old = view.record.main
    now = view.snapshot.now
    mode = view.record.sync_mode if candidate == view.record.sync_replica else ReplicaMode.ASYNC.value
    kind = (f"{mode.upper()} replica (may lose writes; two writers possible during a partition)" if is_async
            else "sync replica")
    plan.drop_main_label = True
    fenced = fencing.fence_or_say(view, plan, candidate, ready) if fence else ""
    plan.event("FailoverStarted", f"{old} unreachable {down:.1f}s; promoting {kind} {candidate}", old, True)
    text = f"{old}->{candidate} at {now:.3f} after {down:.1f}s"
    if is_async:  # status shows it (last_failover.text): the loss is reported, not hidden (item 6)
        text += f" to an unfenced {kind}"
    if fenced:
        text += f"; fence: {fenced}"
    plan.write_record(
        replace(
            plan.record,
            main=candidate,
            generation=plan.record.generation + 1,
            sync_replica="",
            sync_mode="",
            sync_confirmed=False,
            last_failover=text,
            last_failover_from=old,
            last_failover_to=candidate,
            last_failover_at=now,
            last_failover_duration_s=down,
            history=append_transition(plan.record.history, Transition(
                TransitionKind.FAILOVER, old, candidate, plan.record.generation + 1, view.snapshot.wall, down,
            )),
            promoted_incarnation=_incarnation(view, candidate),
        )
    )
    # Review M2: record before promotion, or the candidate's own guard sees a MAIN the record does not name
    plan.actions.append(Promote(candidate))
    plan.event("Promoted", f"{candidate} promoted to MAIN (failover from {old})", candidate)
    # reference 7.2: its new epoch reaches disk only with a WAL or snapshot; after the new route (labels)
    plan.after.append(CreateSnapshot(candidate))
    cause = cause or f"unreachable {down:.1f}s"
    follow = _register_followers(view, plan, candidate)
    sync = f"; {follow} registered {view.policy.sync_mode.value} before it is labelled" if follow else ""
    # the verdict is logged before the actions run: a planned fence is not yet a confirmed one
    said = "" if not fenced else f"; fencing {old} first" if fenced == "confirmed" else f"; fence: {fenced}"
    if ready and fenced == "confirmed":
        said += " (its pod is Ready: no failover unless its agent finds its Memgraph lost)"
    return Verdict(K.FAILOVER, f"{old} {cause}, promoting {kind} {candidate}{sync}{said}")


def _register_followers(view: View, plan: Plan, new_main: str) -> str:
    """Issue 16 item 7: no acknowledged write without its sync copy after a failover. The replicas that were
    ready on the old MAIN at the last look are registered on the new MAIN right after its promotion -- the
    most advanced in the sync mode, the rest ASYNC -- and the new MAIN is labelled in the same cycle only
    after them (the executor stops at the first failure, so a failed REGISTER leaves it unlabelled until
    the next cycle). Returns the sync replica, or "" when none was ready: then the new MAIN is labelled next
    cycle with `degraded: no sync replica` (status, Event, metric) and its replicas follow ASYNC first."""
    last_ready = set(view.snapshot.last_ready_replicas)
    ts = view.snapshot.last_replica_ts
    ready = [p for p in view.replica_pods() if p != new_main and p in last_ready and view.live_replica(p)
             and replica_address(view.policy, view.pod(p))]  # no address yet: registered by a later cycle
    ready.sort(key=lambda p: (-ts.get(p, -1), pod_ordinal(p)))
    if not ready:
        return ""
    mode = view.policy.sync_mode
    for i, pod in enumerate(ready):
        want = mode if i == 0 else ReplicaMode.ASYNC
        plan.actions.append(RegisterReplica(new_main, pod, want, replica_address(view.policy, view.pod(pod))))
        plan.event("ReplicaRegistered", f"{pod} registered {want.value} on {new_main}", pod)
    plan.record = replace(plan.record, sync_replica=ready[0], sync_mode=mode.value)
    plan.label_new_main = True
    return ready[0]


# ---- rule: the record's MAIN came back empty -----------------------------------------------------------


def _empty_main(view: View, plan: Plan) -> Verdict | None:
    """Prior art 001 issue 5: an empty re-created MAIN must not own replicas holding data."""
    main = view.record.main
    obs = view.obs(main)
    if obs is None or not obs.empty or view.main_rows:
        return None
    holders = [p for p in view.replica_pods() if view.reachable(p) and _data(view, p) > 0]
    if not holders:
        return None
    plan.withhold_main_label = True
    # Scenario 9: the MAIN's volume is gone and it came back empty (Memgraph starts as MAIN by default).
    # It is a lost MAIN: fail over to the sync replica if it is known to be in sync; else block.
    candidate, is_async, why = _failover_candidate(view)
    if candidate and not is_async:
        plan.blocked_by = ""
        cause = "came back empty (its data is on the replicas)"
        return _failover(view, plan, candidate, is_async, 0.0, cause)
    plan.blocked_by = main
    plan.key_event(f"empty:{main}", "EmptyMainBlocked", f"{main} holds no data, {holders[0]} does", main)
    return Verdict(K.BLOCKED, f"{main} (record's MAIN) holds no data but {holders[0]} does; not registering "
                   f"or routing ({why})")


# ---- rule: dual MAIN (I2) ------------------------------------------------------------------------------


def _dual_main(view: View, plan: Plan) -> Verdict | None:
    """Prior art 001 issue 2 (cardinal rule): no REGISTER while another instance is an unfenced MAIN."""
    rogues = view.rogue_mains()
    if not rogues:
        return None
    _warn_dual(plan, rogues, view.record.main)
    plan.blocked_by = rogues[0]
    return Verdict(K.BLOCKED, f"{rogues[0]} reports MAIN but the record names {view.record.main} (dual MAIN)")


def _warn_dual(plan: Plan, rogues: list[str], main: str) -> None:
    for rogue in rogues:
        msg = f"{rogue} reports MAIN; record names {main}"
        plan.key_event(f"dual:{rogue}", "DualMainBlocked", msg, rogue)


__all__ = ["Decision", "PlannerMemory", "RequestSwitchover", "decide", "replica_name"]
