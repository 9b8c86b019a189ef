"""Steady-state replication rules: who is registered on the MAIN, in which mode, which is the sync replica.

Role: with the record's MAIN reachable and MAIN (and no rule before it owning the cycle), compute the
DROP/REGISTER actions and the sync-replica designation, and return the cycle's verdict.

Only the record's MAIN registers (this rule runs only when it is reachable and MAIN, and no other reachable
pod reports MAIN: `_dual_main` owns that cycle). An unreachable or missing pod holds nothing back: a
REGISTER by the record's MAIN takes the replica from any other MAIN (reference memgraph-replication.md 3.3,
SwapMainUUID is accepted unconditionally), which is the direction I2 needs (issue 16 item 2).

Must never: do I/O, re-register a diverged pod (I4), or leave a dead STRICT_SYNC replica registered when
that stops the MAIN from committing (reference section 5).
"""

from __future__ import annotations

from dataclasses import replace

from coordinator.core.model import (
    Action,
    DropReplica,
    EmitEvent,
    RegisterReplica,
    ReplicaMode,
    ReplicaStatus,
    pod_ordinal,
    replica_name,
)
from coordinator.core.outcomes import DecisionKind as K
from coordinator.core.reseed import reseeding
from coordinator.core.rules import ALIVE_STATUSES, Plan, Verdict, View, is_divergence_error, replica_address


def _alive_sync(view: View, name: str) -> bool:
    """Alive at its current address: a sync replica whose row names an older incarnation's address is
    re-designated (the new one registered first) rather than dropped and re-registered in place."""
    row = view.current_row(name)
    return view.live_replica(name) and row is not None and row.status in ALIVE_STATUSES


def designate_sync(view: View) -> str:
    """Keep the sync replica while it is alive; otherwise the lowest-ordinal READY replica; "" if none."""
    current = view.record.sync_replica
    if current and current != view.record.main and _alive_sync(view, current):
        return current
    # a pod being re-seeded recovers ASYNC: STRICT_SYNC only once ready with behind 0 (reference 7.3)
    held = reseeding(view.record)
    ready = [p for p in view.replica_pods() if view.ready_replica(p) and p not in (current, held)]
    return ready[0] if ready else ""


def _stale_rows(view: View) -> list[Action]:
    """Prior art 001 issue 7 and scale-down: rows for no pod of the StatefulSet, or a diverged one, go."""
    known = {replica_name(p): p for p in view.expected}
    drops: list[Action] = []
    for name in sorted(view.main_rows):
        pod = known.get(name)
        if pod is None or pod == view.record.main or pod in view.diverged:
            drops.append(DropReplica(view.record.main, name))
    return drops


def _pod_actions(view: View, plan: Plan, sync: str) -> tuple[list[Action], list[Action]]:
    """(drops that restore commits, re-mode drops then registers with events).

    A departing replica (its pod terminating) is dropped while its Memgraph still answers: its next
    incarnation comes back at a new address, and a DROP REPLICA of the old address once it is silent holds
    the MAIN's commits for seconds (memgraph#1526, reference kubernetes-and-helm.md; 1.2-2.4 s write pauses
    on every restart of an ASYNC replica before). The new incarnation is then registered fresh."""
    main = view.record.main
    urgent: list[Action] = []
    changes: list[Action] = []
    # the new sync replica first (review M1): a STRICT_SYNC registration exists before the old one goes
    for pod in sorted(view.replica_pods(), key=lambda p: (p != sync, pod_ordinal(p))):
        if pod in view.diverged:
            continue
        row, live = view.row(pod), view.live_replica(pod)
        mode, addr = view.desired_mode(pod, sync), replica_address(view.policy, view.pod(pod))
        # review M4: a live replica whose row is an Error 5 leftover (data_info {}) is registered again
        zombie = row is not None and row.status is ReplicaStatus.UNKNOWN and live
        if row is not None and not live:
            if row.mode == ReplicaMode.STRICT_SYNC and mode != ReplicaMode.STRICT_SYNC:
                urgent.append(DropReplica(main, row.name))  # a dead STRICT_SYNC replica stops every commit
            elif view.terminating(pod) and view.reachable(pod):
                changes.append(DropReplica(main, row.name))  # while its address answers (docstring)
            continue
        if row is not None and row.mode == mode and row.socket_address == addr and not zombie:
            continue
        if not live or not addr:
            continue
        # A row at another address is an older incarnation of the pod (pod IPs change on every restart);
        # like a wrong mode it is replaced by the MAIN that owns it.
        if row is not None:  # wrong mode/address; re-registering a replica this MAIN owns moves no ownership
            changes.append(DropReplica(main, row.name))
        changes.append(RegisterReplica(main, pod, mode, addr))
        changes.append(EmitEvent("ReplicaRegistered", f"{pod} registered {mode.value} on {main}", pod))
        obs = view.obs(pod)
        if obs is not None and obs.register_error and not is_divergence_error(obs.register_error):
            msg = f"REGISTER of {pod} on {main} failed: {obs.register_error}"
            plan.key_event(f"regfail:{pod}:{obs.register_error}", "RegistrationFailed", msg, pod)
    return urgent, changes


def reconcile_replication(view: View, plan: Plan) -> Verdict:
    """Every non-MAIN pod registered once with the right mode; one designated sync replica (DESIGN policy)."""
    main = view.record.main
    current, mode = view.record.sync_replica, view.policy.sync_mode
    sync = designate_sync(view)
    stale = _stale_rows(view)
    urgent, changes = _pod_actions(view, plan, sync)
    plan.actions.extend(stale + _order(view, sync, urgent, changes))
    if sync != current or (sync and view.record.sync_mode != mode.value):
        plan.write_record(replace(plan.record, sync_replica=sync, sync_mode=mode.value if sync else ""))
    replicas = view.replica_pods()
    ready = sum(view.ready_replica(p) for p in replicas)
    plan.degraded = bool(replicas) and not sync
    status = f"{main} is MAIN, {ready}/{len(replicas)} replicas ready"
    if plan.degraded and not current:
        plan.key_event(f"nosync:{main}", "NoSyncReplica", f"degraded: no sync replica: {main} acknowledges "
                       "writes without a replica copy until a replica is ready", main)
    if current and not sync:
        plan.key_event(f"degraded:{current}", "SyncReplicaDegraded",
                       f"sync replica {current} not ready and no other replica ready", current)
        dropped = " dropped its STRICT_SYNC registration so the MAIN can commit;" if urgent else ""
        return Verdict(K.DEGRADED,
                       f"sync replica {current} not ready, no other replica ready;{dropped} {status}")
    if current and sync != current:
        return Verdict(K.RESYNC,
                       f"sync replica {current} not ready, designating {sync} ({mode.value}); {status}")
    what = ", ".join(_say(a) for a in plan.actions if isinstance(a, (DropReplica, RegisterReplica)))
    if sync != current:
        return Verdict(K.DESIGNATE,
                       f"{sync} as sync replica ({mode.value}); {what or 'record updated'}; {status}")
    if what:
        return Verdict(K.REPLICAS, f"{what}; {status}")
    if plan.notes:
        return Verdict(K.DIVERGED, f"{'; '.join(plan.notes)}; {status}")
    degraded = "; degraded: no sync replica" if plan.degraded else ""
    return Verdict(K.NO_ACTION, f"{status}{degraded}")


def _order(view: View, sync: str, urgent: list[Action], changes: list[Action]) -> list[Action]:
    """Drop a dead STRICT_SYNC registration after the new sync replica is registered (review M1): until
    then the MAIN aborts commits instead of acknowledging them with no replica copy. If registering the
    new one failed last cycle, drop first: availability must not hang on a registration that keeps failing.
    """
    obs = view.obs(sync) if sync else None
    protects = any(
        isinstance(a, RegisterReplica) and a.replica_pod == sync and a.mode is not ReplicaMode.ASYNC
        for a in changes
    )
    if protects and not (obs is not None and obs.register_error):
        return changes + urgent
    return urgent + changes


def _say(action: DropReplica | RegisterReplica) -> str:
    if isinstance(action, DropReplica):
        return f"drop {action.name}"
    return f"register {action.replica_pod} as {action.mode.value}"


__all__ = ["designate_sync", "pod_ordinal", "reconcile_replication"]
