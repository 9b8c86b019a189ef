"""Switchover as a named, ordered, bounded procedure (DESIGN: switchover).

Role: move the MAIN role off a pod without losing an acknowledged write: pick the target (the sync replica
if ready, else the most advanced ready replica); make sure it is registered STRICT_SYNC on the old MAIN
(so every later commit needs its vote); take the role label off the old MAIN (no new connections reach
it); wait, bounded, until the old MAIN's SHOW REPLICAS shows the target ready and not behind; write the
record naming the target; demote the old MAIN; promote the target; register the replicas that were in
sync; label the new MAIN; emit an Event. Every step is logged through `step` (the agent appends these
lines to the preStop record) and bounded by the budget.

The record is written BEFORE the demotion and the promotion (DESIGN lists it after them): a promoted
target that the record does not name would be demoted by its own agent's guard, and with the record
written first any leader can finish an interrupted hand-over (the planner promotes a record MAIN that
reports REPLICA once no other MAIN exists; the old MAIN's guard fences it).

Must never: demote the old MAIN before the target is proven in sync, promote a target that is not a
ready replica, act without a valid lease, keep the role label off the MAIN for longer than
IN_SYNC_WAIT_S when nothing was handed over, or run past its budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from coordinator.core.model import (
    ROLE_LABEL,
    ClusterRecord,
    EmitEvent,
    PodView,
    Policy,
    RegisterReplica,
    ReplicaInfo,
    ReplicaMode,
    ReplicaStatus,
    Role,
    replica_name,
)
from coordinator.core.outcomes import SwitchoverOutcome
from coordinator.core.rules import replica_address
from coordinator.edge.actions import Executor, LeaseLost
from coordinator.edge.demotion import demote_while_busy
from coordinator.edge.logs import log_event

log = logging.getLogger(__name__)


class SwitchoverError(RuntimeError):
    """The switchover could not be done safely; `outcome` names why."""

    def __init__(self, outcome: SwitchoverOutcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


@dataclass(frozen=True)
class SwitchoverResult:
    outcome: SwitchoverOutcome
    old_main: str
    new_main: str | None
    duration_s: float
    detail: str = ""
    # role label off the old MAIN -> on the new MAIN (or back on the old one); None when never removed
    write_pause_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is SwitchoverOutcome.DONE


@dataclass
class SwitchoverContext:
    executor: Executor
    policy: Policy
    record: Callable[[], ClusterRecord]
    pods: Callable[[], dict[str, PodView]]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    step: Callable[[str], None] = lambda line: None
    poll_s: float = 0.05


def choose_target(
    replicas: list[ReplicaInfo],
    record: ClusterRecord,
    pods: dict[str, PodView],
    old_main: str,
    to: str | None,
) -> str | None:
    """The sync replica if ready, else the most advanced ready replica; `to` when given and eligible."""
    eligible: dict[str, ReplicaInfo] = {}
    for r in replicas:
        pod = r.name.replace("_", "-")
        view = pods.get(pod)
        if pod == old_main or view is None or view.terminating or pod in record.diverged:
            continue
        if r.status in (ReplicaStatus.READY, ReplicaStatus.REPLICATING):
            eligible[pod] = r
    if to is not None:
        return to if to in eligible else None
    if record.sync_replica in eligible:
        return record.sync_replica
    if not eligible:
        return None
    return max(eligible, key=lambda p: (eligible[p].ts, -pods[p].ordinal))


IN_SYNC_WAIT_S = 30.0  # the role label is off while we wait: this bounds that write outage (review M5)


@dataclass
class _Progress:
    label_removed: bool = False
    record_written: bool = False
    new_main: str | None = None
    label_off_at: float | None = None  # ctx.clock() when the old MAIN's role label was removed
    label_on_at: float | None = None  # ... when a pod carried it again

    def write_pause_s(self) -> float | None:
        if self.label_off_at is None or self.label_on_at is None:
            return None
        return self.label_on_at - self.label_off_at


def switchover(ctx: SwitchoverContext, old_main: str, to: str | None, budget_s: float) -> SwitchoverResult:
    """Run the switchover; never raises, the outcome says what happened."""
    start = ctx.clock()
    progress = _Progress()
    try:
        _run(ctx, old_main, to, start + budget_s, progress)
        outcome, detail = SwitchoverOutcome.DONE, f"{old_main} -> {progress.new_main}"
    except SwitchoverError as exc:
        outcome, detail = exc.outcome, str(exc)
    except LeaseLost as exc:
        outcome, detail = SwitchoverOutcome.FAILED, f"lease lost: {exc}"
    except Exception as exc:
        log.exception("switchover failed")
        outcome, detail = SwitchoverOutcome.FAILED, f"{type(exc).__name__}: {exc}"
    handed_over = outcome is SwitchoverOutcome.DONE or progress.record_written
    if progress.label_removed and not handed_over and _restore_label(ctx, old_main):
        progress.label_on_at = ctx.clock()  # nothing was handed over: the MAIN keeps serving
    duration = ctx.clock() - start
    ctx.step(f"switchover {outcome} in {duration:.3f}s: {detail}")
    new_main = progress.new_main if outcome is SwitchoverOutcome.DONE else None
    return SwitchoverResult(outcome, old_main, new_main, duration, detail, progress.write_pause_s())


def _run(ctx: SwitchoverContext, old_main: str, to: str | None, deadline: float, progress: _Progress) -> None:
    ex, record, pods = ctx.executor, ctx.record(), ctx.pods()
    if record.main != old_main:
        raise SwitchoverError(
            SwitchoverOutcome.NOT_MAIN,
            f"{old_main} is not the designated MAIN (record: {record.main or '-'})",
        )
    if to is not None and to not in pods:
        raise SwitchoverError(SwitchoverOutcome.FAILED, f"unknown target pod {to}")
    old_client = ex._client(old_main)
    if old_client.role() is not Role.MAIN:
        raise SwitchoverError(SwitchoverOutcome.NOT_MAIN, f"{old_main} does not report MAIN")
    rows = old_client.replicas()
    target = choose_target(rows, record, pods, old_main, to)
    if target is None:
        ex.emit(
            EmitEvent("NoSwitchoverTarget", f"no ready replica to hand {old_main} over to", old_main, True)
        )
        raise SwitchoverError(
            SwitchoverOutcome.NO_TARGET, "no ready replica to switch over to; MAIN left in place"
        )
    ctx.step(f"target {target} (sync replica: {record.sync_replica or '-'})")
    _make_strict(ctx, old_client, target, rows)
    ex.check_lease()
    ex.kube.patch_labels(old_main, {ROLE_LABEL: None})
    progress.label_removed, progress.label_off_at = True, ctx.clock()
    ctx.step(f"label {ROLE_LABEL} removed from {old_main}: no new connections reach it")
    in_sync = _wait_in_sync(ctx, old_client, target, min(deadline, ctx.clock() + IN_SYNC_WAIT_S))
    # Record first (review M5): from here any leader can finish the hand-over, and the old MAIN's own
    # guard fences it if the demotion below does not happen.
    new_record = replace(
        record,
        main=target,
        sync_replica="",
        sync_mode="",
        sync_confirmed=False,
        generation=record.generation + 1,
    )
    ex.check_lease()
    ex.write_record(record, new_record)
    progress.record_written = True
    ctx.step(f"record: main={target} generation={new_record.generation}")
    ex.check_lease()
    _demote(ctx, old_client, old_main)
    ctx.step(f"demoted {old_main} to REPLICA: it refuses writes from now on")
    ex.check_lease()
    ex._client(target).promote()
    progress.new_main = target
    ctx.step(f"promoted {target} to MAIN")
    _register_rest(ctx, new_record, target, in_sync)
    ex.check_lease()
    ex.kube.patch_labels(target, {ROLE_LABEL: "main"})
    progress.label_on_at = ctx.clock()
    ctx.step(f"label {ROLE_LABEL}=main on {target}: writes resume")
    ex.emit(EmitEvent("Switchover", f"MAIN moved {old_main} -> {target}", target))


def _demote(ctx: SwitchoverContext, old_client: Any, old_main: str) -> None:
    """SET REPLICATION ROLE TO REPLICA on the old MAIN, retried while a commit in flight holds the
    replication-state lock (`coordinator.edge.demotion.demote_while_busy`)."""
    demote_while_busy(old_client, ctx.policy.replication_port, ctx.sleep, old_main)


def _make_strict(ctx: SwitchoverContext, old_client: Any, target: str, rows: list[ReplicaInfo]) -> None:
    """Review C1: only a STRICT_SYNC target has every acknowledged write. An ASYNC or SYNC target is
    re-registered STRICT_SYNC on the old MAIN (it owns it already: no ownership moves), so a commit on a
    pooled connection after the in-sync check still needs the target's vote."""
    name = replica_name(target)
    row = next((r for r in rows if r.name == name), None)
    if row is None or row.mode is ReplicaMode.STRICT_SYNC:
        return
    ctx.executor.check_lease()
    old_client.drop(name)
    old_client.register(name, ReplicaMode.STRICT_SYNC, row.socket_address)
    ctx.step(f"{target} re-registered STRICT_SYNC on the old MAIN (was {row.mode.value}) for the hand-over")


def _wait_in_sync(ctx: SwitchoverContext, old_client: Any, target: str, deadline: float) -> set[str]:
    """Until the target is READY and not behind on the old MAIN. Returns the pods in sync at that moment.

    `behind` may be positive (replica ahead after a snapshot, reference 2.2): that is in sync too.
    """
    name = replica_name(target)
    last = "not seen"
    while ctx.clock() < deadline:
        rows = {r.name: r for r in old_client.replicas()}
        row = rows.get(name)
        if row is not None and row.status is ReplicaStatus.READY and row.behind >= 0:
            ctx.step(f"{target} in sync on the old MAIN (ts={row.ts}, behind={row.behind})")
            return {r.name.replace("_", "-") for r in rows.values() if r.healthy and r.behind >= 0}
        last = f"{row.status.value} behind={row.behind}" if row else "not registered"
        ctx.sleep(ctx.poll_s)
    raise SwitchoverError(
        SwitchoverOutcome.TIMEOUT, f"{target} did not catch up in time (last: {last}); MAIN left in place"
    )


def _register_rest(ctx: SwitchoverContext, record: ClusterRecord, new_main: str, in_sync: set[str]) -> None:
    """Register on the new MAIN right away the replicas that were in sync on the old one (review M4: no
    unreachable or unobserved pod, so no dead STRICT_SYNC registration); the planner does the rest."""
    pods = ctx.pods()
    others = sorted(
        (
            p
            for p in pods.values()
            if p.name in in_sync
            and p.name != new_main
            and not p.terminating
            and p.name not in record.diverged
        ),
        key=lambda p: p.ordinal,
    )
    sync_done = ctx.policy.sync_mode is ReplicaMode.ASYNC
    for pod in others:
        mode = ReplicaMode.ASYNC if sync_done else ctx.policy.sync_mode
        address = replica_address(ctx.policy, pod)
        if not address:
            ctx.step(f"register {pod.name} deferred to the reconcile loop: the pod has no address yet")
            continue
        action = RegisterReplica(new_main, pod.name, mode, address)
        result = ctx.executor.run([action], record)
        if not result.ok:
            ctx.step(f"register {action.name} deferred to the reconcile loop: {result.error}")
            continue
        ctx.step(f"registered {action.name} ({mode.keyword}) on {new_main}")
        if not sync_done:
            updated = replace(record, sync_replica=pod.name, sync_mode=mode.value)
            ctx.executor.write_record(record, updated)
            record, sync_done = updated, True


def _restore_label(ctx: SwitchoverContext, old_main: str) -> bool:
    try:
        ctx.executor.kube.patch_labels(old_main, {ROLE_LABEL: "main"})
        ctx.step(f"switchover abandoned: label {ROLE_LABEL}=main restored on {old_main}")
        return True
    except Exception as exc:
        log_event(log, "main label not restored after an abandoned switchover", level=logging.WARNING,
                  pod=old_main, error=f"{type(exc).__name__}: {exc}")
        return False
