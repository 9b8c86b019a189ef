"""The pure decision core: decide(snapshot, record, policy) -> Decision.

Role: read one immutable Snapshot of the cluster, the ClusterRecord kept in the Lease and the Policy,
and return the ordered actions for the executor plus exactly one one-line verdict. The rules run in the
order of `decide`; each is a small function whose comment names the incident it prevents.

Must never: do I/O (no kubernetes, neo4j, requests, socket, time: `snapshot.now` is the clock), keep
state between calls (what must be remembered travels in the record or in PlannerMemory), promote
while the record's MAIN is reachable and MAIN, or REGISTER while another instance may be an unfenced
MAIN (I2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from coordinator.core.model import (
    LEADER_LABEL,
    ROLE_LABEL,
    Action,
    ClusterRecord,
    Demote,
    DropReplica,
    EmitEvent,
    Policy,
    Promote,
    RegisterReplica,
    ReplicaMode,
    ReplicaStatus,
    RequestSwitchover,
    Role,
    SetLabels,
    Snapshot,
    WriteRecord,
    pod_ordinal,
    replica_name,
)
from coordinator.core.replication import reconcile_replication
from coordinator.core.rules import Plan, View, is_divergence_error


@dataclass(frozen=True)
class PlannerMemory:
    """Edge-detection state the leader passes from one decide call to the next (in process only).

    `warned` holds the keys of the conditions already announced by an Event; a key that stops holding
    is forgotten, so the Event fires again if the condition returns. A new leader starts empty.
    """

    leader: str = ""
    warned: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    verdict: str
    record: ClusterRecord
    blocked_by: str = ""
    memory: PlannerMemory = PlannerMemory()
    degraded: bool = False

    @property
    def mutating(self) -> bool:
        return any(not isinstance(a, EmitEvent) for a in self.actions)


def decide(
    snapshot: Snapshot, record: ClusterRecord, policy: Policy, memory: PlannerMemory | None = None
) -> Decision:
    """One reconcile decision. The rules below run in order; the first that owns the cycle ends it."""
    memory = memory or PlannerMemory()
    # A running switchover procedure owns the cluster: two writers of labels/roles would fight.
    if snapshot.switchover_in_progress:
        verdict = f"waiting: switchover in progress ({snapshot.switchover_in_progress})"
        return Decision((), verdict, record, memory=memory)
    view = View.build(snapshot, record, policy)
    plan = Plan(record=record)
    view = _track_divergence(view, plan)
    for rule in (_bootstrap, _terminating_main, _main_lost, _empty_main, _dual_main):
        verdict = rule(view, plan)
        if verdict:
            break
    else:
        verdict = reconcile_replication(view, plan)
    plan.verdict = verdict
    return _finish(view, plan, record, memory)


# ---- rule: divergence (I4) -------------------------------------------------------------------------


def _track_divergence(view: View, plan: Plan) -> View:
    """Prior art 001 issue 7: an old MAIN's data on a replica: marked, never re-registered in a loop."""
    diverged = set(view.record.diverged)
    for name in view.expected:
        obs = view.obs(name)
        row = view.row(name)
        shown = row is not None and row.status == ReplicaStatus.DIVERGED
        refused = obs is not None and is_divergence_error(obs.register_error) and not obs.empty
        if name != view.record.main and (shown or refused):
            diverged.add(name)
        elif name in diverged and obs is not None and obs.reachable and obs.empty and not shown:
            diverged.discard(name)  # observed as a clean instance: Memgraph accepts it (r_ldt == 0)
    new = sorted(diverged - set(view.record.diverged), key=pod_ordinal)
    if diverged != set(view.record.diverged):
        plan.record = replace(plan.record, diverged=tuple(sorted(diverged, key=pod_ordinal)))
    if new:
        plan.notes.append(f"{', '.join(new)} marked diverged")
    for name in new:
        main = view.record.main or "(none)"
        msg = f"{name} holds history the MAIN {main} never had; quarantined, not re-registered"
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


def _bootstrap(view: View, plan: Plan) -> str:
    """Fresh cluster: wait for every pod, pick the most data then the lowest ordinal, record it FIRST (I2)."""
    if view.record.main:
        return ""
    blocker, reason = view.register_block()
    if blocker:
        plan.blocked_by = blocker
        return f"waiting: bootstrap needs all {len(view.expected)} pods reachable, {reason}"
    mains = [p for p in view.expected if view.role(p) == Role.MAIN]
    if len(mains) == len(view.expected) and not any(view.main_rows_of(p) for p in mains):
        unknown = [p for p in mains if _data(view, p) < 0]
        if unknown:
            plan.blocked_by = unknown[0]
            return f"waiting: bootstrap needs storage info of {unknown[0]}"
        chosen, why = _bootstrap_choice(view, mains)
        plan.write_record(replace(plan.record, main=chosen, generation=plan.record.generation + 1))
        plan.event("Promoted", f"{chosen} chosen as MAIN at bootstrap ({why})", chosen)
        for other in [p for p in mains if p != chosen]:
            plan.actions.append(Demote(other))
            plan.event("Demoted", f"{other} demoted to REPLICA at bootstrap", other)
        return f"bootstrap: {chosen} chosen as MAIN ({why})"
    if len(mains) == 1:  # the record was lost while the cluster ran: adopt the only MAIN
        plan.write_record(replace(plan.record, main=mains[0], generation=plan.record.generation + 1))
        return f"adopt: no MAIN in the record, {mains[0]} is the only MAIN; recording it"
    plan.blocked_by = mains[0] if mains else (view.expected[0] if view.expected else "")
    msg = f"no record and {len(mains)} MAINs; choose one by hand"
    plan.key_event("nomain:bootstrap", "DualMainBlocked", msg)
    return f"blocked: no MAIN in the record and {len(mains)} instances report MAIN alongside replicas"


# ---- rule: terminating MAIN ---------------------------------------------------------------------------


def _terminating_main(view: View, plan: Plan) -> str:
    """Prior art 001 issue 6: a preStop hook that never reached us must not leave the hand-over undone."""
    main = view.record.main
    if not (view.main_ok() and view.terminating(main)):
        return ""
    plan.actions.append(RequestSwitchover(main, "pod terminating"))
    msg = f"{main} is terminating: switchover requested"
    plan.key_event(f"switchover:{main}", "Switchover", msg, main, warning=False)
    return f"switchover: {main} is terminating, requesting a hand-over"


# ---- rule: the record's MAIN is not a reachable MAIN ---------------------------------------------------


def _main_lost(view: View, plan: Plan) -> str:
    """Failover only after failoverAfter and only with a pod Kubernetes also sees down (I3, I7)."""
    main = view.record.main
    if view.main_ok():
        return ""
    if view.role(main) == Role.REPLICA:
        return _restore_main(view, plan)
    down = view.snapshot.unreachable_for_s.get(main, 0.0)
    after = view.policy.failover_after_s
    rogues = view.rogue_mains()
    note = f"; {rogues[0]} reports MAIN (its guard demotes it)" if rogues else ""
    _warn_dual(plan, rogues, main)
    plan.blocked_by = main  # cleared below when a failover is decided
    if down < after:
        return f"waiting: {main} unreachable {down:.1f}s < failoverAfter {after:g}s{note}"
    pod = view.pod(main)
    if pod is not None and pod.ready and not pod.terminating:
        return f"waiting: {main} unreachable {down:.1f}s but its pod is Ready (no failover){note}"
    candidate, is_async, why = _failover_candidate(view)
    if not candidate:
        plan.key_event(f"nocand:{main}", "NoFailoverCandidate", f"{main} lost; {why}", main)
        return f"waiting: {main} unreachable {down:.1f}s, no failover candidate ({why}){note}"
    plan.blocked_by = ""
    return _failover(view, plan, candidate, is_async, down)


def _restore_main(view: View, plan: Plan) -> str:
    """A switchover that demoted the MAIN but never promoted its target must not leave us headless."""
    main = view.record.main
    rogues = view.rogue_mains()
    plan.blocked_by = main
    if rogues:
        return f"waiting: {main} (record's MAIN) reports REPLICA, {rogues[0]} reports MAIN (guard demotes it)"
    if view.terminating(main):
        return f"waiting: {main} is terminating and already demoted (hand-over in progress)"
    plan.actions.append(Promote(main))
    plan.event("Promoted", f"{main} named by the record reported REPLICA; promoted again", main)
    return f"restore: {main} is named by the record but reports REPLICA and no MAIN exists; promoting it"


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
        elif not safe_mode:
            why = f"{sync} is registered {view.record.sync_mode or 'async'}"
        else:
            return sync, False, ""
    if not view.policy.allow_async_failover:
        return "", False, why + ", allowAsyncFailover is off"
    pool = [p for p in view.replica_pods() if view.live_replica(p) and p in last_ready]
    if not pool:
        return "", False, why + ", no other replica was ready"
    ts = view.snapshot.last_replica_ts
    best = sorted(pool, key=lambda p: (-ts.get(p, -1), pod_ordinal(p)))[0]
    return best, True, ""


def _failover(view: View, plan: Plan, candidate: str, is_async: bool, down: float) -> str:
    """Label off first (no writes reach the old MAIN), promote, then record; replicas follow next cycles."""
    old = view.record.main
    now = view.snapshot.now
    kind = "ASYNC replica (may lose writes)" if is_async else "sync replica"
    plan.drop_main_label = True
    plan.event("FailoverStarted", f"{old} unreachable {down:.1f}s; promoting {kind} {candidate}", old, True)
    text = f"{old}->{candidate} at {now:.3f} after {down:.1f}s"
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
        )
    )
    # Review M2: record before promotion, or the candidate's own guard sees a MAIN the record does not name
    plan.actions.append(Promote(candidate))
    plan.event("Promoted", f"{candidate} promoted to MAIN (failover from {old})", candidate)
    return f"failover: {old} unreachable {down:.1f}s, promoting {kind} {candidate}"


# ---- rule: the record's MAIN came back empty -----------------------------------------------------------


def _empty_main(view: View, plan: Plan) -> str:
    """Prior art 001 issue 5: an empty re-created MAIN must not own replicas holding data."""
    main = view.record.main
    obs = view.obs(main)
    if obs is None or not obs.empty or view.main_rows:
        return ""
    holders = [p for p in view.replica_pods() if view.reachable(p) and _data(view, p) > 0]
    if not holders:
        return ""
    plan.withhold_main_label = True
    # Scenario 9: the MAIN's volume is gone and it came back empty (Memgraph starts as MAIN by default).
    # It is a lost MAIN: fail over to the sync replica if it is known to be in sync; else block.
    candidate, is_async, why = _failover_candidate(view)
    if candidate and not is_async:
        plan.blocked_by = ""
        verdict = _failover(view, plan, candidate, is_async, 0.0)
        return verdict.replace(" unreachable 0.0s", " came back empty (its data is on the replicas)")
    plan.blocked_by = main
    plan.key_event(f"empty:{main}", "EmptyMainBlocked", f"{main} holds no data, {holders[0]} does", main)
    return (f"blocked: {main} (record's MAIN) holds no data but {holders[0]} does; not registering or routing"
            f" ({why})")


# ---- rule: dual MAIN (I2) ------------------------------------------------------------------------------


def _dual_main(view: View, plan: Plan) -> str:
    """Prior art 001 issue 2 (cardinal rule): no REGISTER while another instance is an unfenced MAIN."""
    rogues = view.rogue_mains()
    if not rogues:
        return ""
    _warn_dual(plan, rogues, view.record.main)
    plan.blocked_by = rogues[0]
    return f"blocked: {rogues[0]} reports MAIN but the record names {view.record.main} (dual MAIN)"


def _warn_dual(plan: Plan, rogues: list[str], main: str) -> None:
    for rogue in rogues:
        msg = f"{rogue} reports MAIN; record names {main}"
        plan.key_event(f"dual:{rogue}", "DualMainBlocked", msg, rogue)


# ---- labels, events, pause ---------------------------------------------------------------------------


def _desired_role(view: View, plan: Plan, name: str) -> str | None:
    """Prior art 3.7 (label drift): role labels follow observed roles every cycle, level-triggered."""
    pod = view.pod(name)
    current = pod.label(ROLE_LABEL) if pod is not None else None
    if view.terminating(name) or name in view.diverged:
        return None
    if name == plan.record.main and name == view.record.main:
        if view.role(name) == Role.MAIN:
            return None if plan.withhold_main_label else "main"
        if not view.reachable(name) and not plan.drop_main_label:
            return current  # I7: a MAIN we cannot reach keeps its route until we decide to fail over
        return None
    if view.role(name) == Role.REPLICA and name in view.expected:
        return "replica"
    return None


def _label_actions(view: View, plan: Plan) -> tuple[list[Action], list[Action]]:
    """(routing removals that must run first, other label changes). Only pods whose labels differ."""
    first: list[Action] = []
    rest: list[Action] = []
    for pod in sorted(view.snapshot.pods, key=lambda p: pod_ordinal(p.name)):
        want: dict[str, str | None] = {ROLE_LABEL: _desired_role(view, plan, pod.name)}
        if view.snapshot.leader:
            want[LEADER_LABEL] = "true" if pod.name == view.snapshot.leader else None
        changes = tuple((k, v) for k, v in want.items() if pod.label(k) != v)
        if changes:
            losing_main = pod.label(ROLE_LABEL) == "main" and want[ROLE_LABEL] != "main"
            (first if losing_main else rest).append(SetLabels(pod.name, changes))
    return first, rest


def _keyed_events(view: View, plan: Plan, memory: PlannerMemory) -> tuple[list[Action], PlannerMemory]:
    leader = view.snapshot.leader
    events: list[Action] = []
    if leader and leader != memory.leader:
        events.append(EmitEvent("LeaderElected", f"{leader} leads the coordinator", leader))
    events += [ev for key, ev in sorted(plan.keyed_events.items()) if key not in memory.warned]
    return events, PlannerMemory(leader=leader or memory.leader, warned=frozenset(plan.keyed_events))


def _describe(actions: Sequence[Action]) -> str:
    parts: list[str] = []
    for a in actions:
        if isinstance(a, Promote):
            parts.append(f"promote {a.pod}")
        elif isinstance(a, Demote):
            parts.append(f"demote {a.pod}")
        elif isinstance(a, RegisterReplica):
            parts.append(f"register {a.replica_pod} as {a.mode.value}")
        elif isinstance(a, DropReplica):
            parts.append(f"drop {a.name}")
        elif isinstance(a, SetLabels):
            parts.append(f"relabel {a.pod}")
        elif isinstance(a, WriteRecord):
            parts.append("write the record")
        elif isinstance(a, RequestSwitchover):
            parts.append(f"request a switchover from {a.from_pod}")
    return ", ".join(parts)


def _confirm_sync(view: View, plan: Plan, record: ClusterRecord) -> None:
    """Keep `sync_confirmed` true only while the MAIN shows the designated sync replica in sync (review C2).

    A clear goes out in a record write placed before every other action of the cycle, so the record never
    vouches for a sync replica that is being dropped or re-registered. Without a view of the MAIN the
    fact stands as last written.
    """
    main = record.main
    if not main or not view.reachable(main) or view.role(main) != Role.MAIN:
        return
    obs = view.obs(main)
    if obs is not None and obs.empty and not view.main_rows:
        return  # a MAIN that came back empty is not the MAIN whose replicas the record vouches for
    sync = plan.record.sync_replica
    row = view.row(sync) if sync else None
    touched = any(
        (isinstance(a, DropReplica) and a.name == replica_name(sync))
        or (isinstance(a, RegisterReplica) and a.replica_pod == sync)
        for a in plan.actions
    )
    confirmed = (
        bool(sync) and sync == record.sync_replica and row is not None and row.healthy
        and row.mode.value == plan.record.sync_mode and not touched
    )
    if confirmed == plan.record.sync_confirmed:
        return
    plan.actions[:] = [
        WriteRecord(replace(a.record, sync_confirmed=confirmed)) if isinstance(a, WriteRecord) else a
        for a in plan.actions
    ]
    if not confirmed and record.sync_confirmed:
        plan.actions.insert(0, WriteRecord(replace(record, sync_confirmed=False)))
    plan.record = replace(plan.record, sync_confirmed=confirmed)


def _finish(view: View, plan: Plan, record: ClusterRecord, memory: PlannerMemory) -> Decision:
    _confirm_sync(view, plan, record)
    first, rest = _label_actions(view, plan)
    core = list(plan.actions)
    writes = [i for i, a in enumerate(core) if isinstance(a, WriteRecord)]
    last = core[writes[-1]].record if writes else record  # type: ignore[union-attr]
    if plan.record != last:
        # the cycle's final record must be written even when an earlier write (the sync_confirmed
        # clear) exists: right after that clear, or first of all when there is none
        core.insert(writes[0] + 1 if writes and writes[0] == 0 else 0, WriteRecord(plan.record))
    events, new_memory = _keyed_events(view, plan, memory)
    actions = first + core + rest + plan.after + events
    verdict = plan.verdict
    if verdict.startswith("no action") and (first or rest):
        verdict = "labels" + verdict[len("no action") :] + f"; {_describe(first + rest)}"
    if record.paused:
        mutating = [a for a in actions if not isinstance(a, EmitEvent)]
        said = f"would {_describe(mutating)}" if mutating else "nothing to do"
        return Decision((), f"paused: {said} ({verdict})", record, plan.blocked_by, memory, plan.degraded)
    return Decision(tuple(actions), verdict, plan.record, plan.blocked_by, new_memory, plan.degraded)


__all__ = ["Decision", "PlannerMemory", "RequestSwitchover", "decide", "replica_name"]
