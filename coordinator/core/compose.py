"""The end of one decision: the record writes put in place, labels, Events, pause -- in explicit steps.

Role: turn what the planner's rules chose (a Plan: actions, the record they want and where it must be
written, keyed Events, flags) into the ordered actions of the Decision:
1. `sync_confirmation`: may the record vouch for the sync replica (review C2)?
2. `place_record_writes`: the record writes, each where it belongs -- a clear of `sync_confirmed` before
   everything else when the record may no longer vouch, the cycle's record where a rule asked for it
   (before a promotion, after a registration), else first of all when only this cycle's findings
   changed it;
3. label changes (routing removals first), Events that must follow the record, the keyed Events;
4. the verdict, and under pause no action at all.

Must never: do I/O, keep state between calls, or change what the rules decided (only where it goes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from coordinator.core.model import (
    LEADER_LABEL,
    ROLE_LABEL,
    Action,
    ClusterRecord,
    CreateSnapshot,
    Demote,
    DropReplica,
    EmitEvent,
    Fence,
    Promote,
    RegisterReplica,
    RequestSwitchover,
    ReseedPod,
    Role,
    SetLabels,
    WriteRecord,
    pod_ordinal,
    replica_name,
)
from coordinator.core.outcomes import DecisionKind
from coordinator.core.rules import Plan, Verdict, View


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
    kind: DecisionKind
    verdict: str
    record: ClusterRecord
    blocked_by: str = ""
    memory: PlannerMemory = PlannerMemory()
    degraded: bool = False

    @property
    def mutating(self) -> bool:
        return any(not isinstance(a, EmitEvent) for a in self.actions)


# ---- step 1: may the record vouch for the sync replica? -------------------------------------------


def sync_confirmation(view: View, plan: Plan, record: ClusterRecord) -> bool:
    """`sync_confirmed` for this cycle's record: true only while the MAIN shows the designated sync replica
    in sync, in its mode, and this cycle neither drops nor re-registers it (review C2). Without a view of
    the MAIN (or of a MAIN that came back empty) the fact stands as last written."""
    main = record.main
    if not main or not view.reachable(main) or view.role(main) != Role.MAIN:
        return plan.record.sync_confirmed
    obs = view.obs(main)
    if obs is not None and obs.empty and not view.main_rows:
        return plan.record.sync_confirmed  # not the MAIN whose replicas the record vouches for
    sync = plan.record.sync_replica
    row = view.row(sync) if sync else None
    touched = any(
        (isinstance(a, DropReplica) and a.name == replica_name(sync))
        or (isinstance(a, RegisterReplica) and a.replica_pod == sync)
        for a in plan.actions
    )
    return (
        bool(sync) and sync == record.sync_replica and row is not None and row.healthy
        and row.mode.value == plan.record.sync_mode and not touched
    )


# ---- step 2: the record writes, each in its place ------------------------------------------------------


def place_record_writes(
    plan: Plan, record: ClusterRecord, confirmed: bool
) -> tuple[list[Action], ClusterRecord]:
    """The rules' actions with the cycle's record writes in place, and the record as it will stand.

    - A record that vouched for the sync replica and no longer may (and that no rule already cleared) is
      cleared in a write before every other action, so it never vouches for a replica being dropped or
      re-registered.
    - The cycle's record (the rules' changes and this cycle's `sync_confirmed`) is written where a rule
      asked for it; when no rule did but the record still changed (divergence found, confirmation
      gained), it is written first of all (right after the clear).
    - Never before `plan.record_not_before`: a rule that records a fact an action makes true (the epoch
      a CREATE SNAPSHOT puts on disk) has the write follow that action.
    """
    final = replace(plan.record, sync_confirmed=confirmed)
    actions = list(plan.actions)
    withdrawn = record.sync_confirmed and plan.record.sync_confirmed and not confirmed
    clear = replace(record, sync_confirmed=False) if withdrawn else None
    if plan.record_at is not None:
        actions.insert(max(plan.record_at, plan.record_not_before), WriteRecord(final))
    elif final != (clear or record):
        actions.insert(plan.record_not_before, WriteRecord(final))
    if clear is not None:
        actions.insert(0, WriteRecord(clear))
    return actions, final


# ---- step 3: labels and Events ----------------------------------------------------------------------------


def _desired_role(view: View, plan: Plan, name: str) -> str | None:
    """Prior art 3.7 (label drift): role labels follow observed roles every cycle, level-triggered."""
    pod = view.pod(name)
    current = pod.label(ROLE_LABEL) if pod is not None else None
    if view.terminating(name) or name in view.diverged:
        return None
    if name == plan.record.main and plan.label_new_main:
        return "main"  # issue 16 item 7: after the promotion and the sync replica's REGISTER (in order)
    if name == plan.record.main and name == view.record.main:
        if view.role(name) == Role.MAIN:
            return None if plan.withhold_main_label else "main"
        if not view.reachable(name) and not plan.drop_main_label:
            return current  # I7: a MAIN we cannot reach keeps its route until we decide to fail over
        return None
    if view.role(name) == Role.REPLICA and name in view.expected:
        return "replica"
    return None


def label_actions(view: View, plan: Plan) -> tuple[list[Action], list[Action]]:
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


def keyed_events(view: View, plan: Plan, memory: PlannerMemory) -> tuple[list[Action], PlannerMemory]:
    leader = view.snapshot.leader
    events: list[Action] = []
    if leader and leader != memory.leader:
        events.append(EmitEvent("LeaderElected", f"{leader} leads the coordinator", leader))
    events += [ev for key, ev in sorted(plan.keyed_events.items()) if key not in memory.warned]
    return events, PlannerMemory(leader=leader or memory.leader, warned=frozenset(plan.keyed_events))


def describe(actions: Sequence[Action]) -> str:
    parts: list[str] = []
    for a in actions:
        if isinstance(a, Fence):
            parts.append(f"fence {a.pod}")
        elif isinstance(a, Promote):
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
        elif isinstance(a, CreateSnapshot):
            parts.append(f"create a snapshot on {a.pod}")
        elif isinstance(a, ReseedPod):
            parts.append(f"re-seed {a.pod}")
    return ", ".join(parts)


# ---- all steps --------------------------------------------------------------------------------------------


def finish(
    view: View, plan: Plan, verdict: Verdict, record: ClusterRecord, memory: PlannerMemory
) -> Decision:
    """The Decision: steps 1-3 above, then the verdict (and, while paused, nothing to do)."""
    core, final = place_record_writes(plan, record, sync_confirmation(view, plan, record))
    first, rest = label_actions(view, plan)
    events, new_memory = keyed_events(view, plan, memory)
    # the fence runs before the old MAIN's route is removed: a fence its agent refuses (its Memgraph
    # answers locally) must leave a MAIN that may be healthy in the client Service (review defect c)
    fences: list[Action] = [a for a in core if isinstance(a, Fence)]
    core = [a for a in core if not isinstance(a, Fence)]
    actions = fences + first + core + rest + plan.after + events
    if verdict.kind is DecisionKind.NO_ACTION and (first or rest):
        verdict = Verdict(DecisionKind.LABELS, f"{verdict.detail}; {describe(first + rest)}")
    if record.paused:
        mutating = [a for a in actions if not isinstance(a, EmitEvent)]
        said = f"would {describe(mutating)}" if mutating else "nothing to do"
        paused = Verdict(DecisionKind.PAUSED, f"{said} ({verdict.text})")
        return Decision((), paused.kind, paused.text, record, plan.blocked_by, memory, plan.degraded)
    return Decision(
        tuple(actions), verdict.kind, verdict.text, final, plan.blocked_by, new_memory, plan.degraded
    )
