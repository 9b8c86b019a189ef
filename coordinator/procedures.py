"""Switchover as a named, ordered, bounded procedure (DESIGN: switchover).

Role: move the MAIN role off a pod without losing an acknowledged write: pick the target, take the
role label off the old MAIN (no new connections reach it), wait until the old MAIN's SHOW REPLICAS shows
the target ready with behind 0, demote the old MAIN, write the record naming the target, promote the
target, register the remaining replicas, label the new MAIN, emit an Event. Every step is logged through
`step` (the agent appends these lines to the preStop record) and bounded by the budget.

The record is written BEFORE the promotion (DESIGN lists it after): between the two, the target would be
a MAIN that the record does not name, and its own agent's guard would demote it. With the record first,
a crash between the steps leaves "record names a REPLICA", which the planner completes by promoting it.

Must never: demote the old MAIN before the target is proven in sync, promote a target that is not a
ready replica, act without a valid lease, or run past its budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from coordinator.actions import Executor, LeaseLost
from coordinator.model import (
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

log = logging.getLogger(__name__)


class SwitchoverError(RuntimeError):
    """The switchover could not be done safely; `outcome` names why."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


@dataclass(frozen=True)
class SwitchoverResult:
    outcome: str  # switchover-done | no-target | not-main | timeout | failed
    old_main: str
    new_main: str | None
    duration_s: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "switchover-done"


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


def switchover(ctx: SwitchoverContext, old_main: str, to: str | None, budget_s: float) -> SwitchoverResult:
    """Run the switchover; never raises, the outcome says what happened."""
    start = ctx.clock()
    deadline = start + budget_s
    new_main: str | None = None
    label_removed = False
    try:
        new_main, label_removed = _run(ctx, old_main, to, deadline)
        outcome, detail = "switchover-done", f"{old_main} -> {new_main}"
    except SwitchoverError as exc:
        outcome, detail = exc.outcome, str(exc)
    except LeaseLost as exc:
        outcome, detail = "failed", f"lease lost: {exc}"
    except Exception as exc:
        log.exception("switchover failed")
        outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
    if outcome != "switchover-done" and label_removed and new_main is None:
        _restore_label(ctx, old_main)
    duration = ctx.clock() - start
    ctx.step(f"switchover {outcome} in {duration:.3f}s: {detail}")
    return SwitchoverResult(
        outcome, old_main, new_main if outcome == "switchover-done" else None, duration, detail
    )


def _run(ctx: SwitchoverContext, old_main: str, to: str | None, deadline: float) -> tuple[str, bool]:
    ex, record, pods = ctx.executor, ctx.record(), ctx.pods()
    if record.main != old_main:
        raise SwitchoverError(
            "not-main", f"{old_main} is not the designated MAIN (record: {record.main or '-'})"
        )
    if to is not None and to not in pods:
        raise SwitchoverError("failed", f"unknown target pod {to}")
    old_client = ex._client(old_main)
    if old_client.role() is not Role.MAIN:
        raise SwitchoverError("not-main", f"{old_main} does not report MAIN")
    target = choose_target(old_client.replicas(), record, pods, old_main, to)
    if target is None:
        ex.emit(
            EmitEvent("NoSwitchoverTarget", f"no ready replica to hand {old_main} over to", old_main, True)
        )
        raise SwitchoverError("no-target", "no ready replica to switch over to; MAIN left in place")
    ctx.step(f"target {target} (sync replica: {record.sync_replica or '-'})")
    ex.check_lease()
    ex.kube.patch_labels(old_main, {ROLE_LABEL: None})
    ctx.step(f"label {ROLE_LABEL} removed from {old_main}: no new connections reach it")
    _wait_in_sync(ctx, old_client, target, deadline)
    ex.check_lease()
    old_client.demote(ctx.policy.replication_port)
    ctx.step(f"demoted {old_main} to REPLICA: it refuses writes from now on")
    new_record = replace(record, main=target, sync_replica="", generation=record.generation + 1)
    ex.write_record(record, new_record)
    ctx.step(f"record: main={target} generation={new_record.generation}")
    ex.check_lease()
    ex._client(target).promote()
    ctx.step(f"promoted {target} to MAIN")
    _register_rest(ctx, new_record, target, old_main)
    ex.check_lease()
    ex.kube.patch_labels(target, {ROLE_LABEL: "main"})
    ctx.step(f"label {ROLE_LABEL}=main on {target}: writes resume")
    ex.emit(EmitEvent("Switchover", f"MAIN moved {old_main} -> {target}", target))
    return target, True


def _wait_in_sync(ctx: SwitchoverContext, old_client: object, target: str, deadline: float) -> None:
    name = replica_name(target)
    last = "not seen"
    while ctx.clock() < deadline:
        rows = {r.name: r for r in old_client.replicas()}  # type: ignore[attr-defined]
        row = rows.get(name)
        if row is not None and row.status is ReplicaStatus.READY and row.behind == 0:
            ctx.step(f"{target} in sync on the old MAIN (ts={row.ts}, behind=0)")
            return
        last = f"{row.status.value} behind={row.behind}" if row else "not registered"
        ctx.sleep(ctx.poll_s)
    raise SwitchoverError("timeout", f"{target} did not catch up within the budget (last: {last})")


def _register_rest(ctx: SwitchoverContext, record: ClusterRecord, new_main: str, old_main: str) -> None:
    """Register the other live replicas on the new MAIN right away; the planner finishes the rest."""
    pods = ctx.pods()
    others = sorted(
        (
            p
            for p in pods.values()
            if p.name != new_main and not p.terminating and p.name not in record.diverged
        ),
        key=lambda p: p.ordinal,
    )
    sync_done = ctx.policy.sync_mode is ReplicaMode.ASYNC
    for pod in others:
        mode = ReplicaMode.ASYNC if sync_done else ctx.policy.sync_mode
        action = RegisterReplica(new_main, pod.name, mode, _address(ctx.policy, pod.name))
        result = ctx.executor.run([action], record)
        if result.ok:
            ctx.step(f"registered {action.name} ({mode.keyword}) on {new_main}")
            if not sync_done:
                record = replace(record, sync_replica=pod.name)
                ctx.executor.write_record(ctx.record(), record)
                sync_done = True
        else:
            ctx.step(f"register {action.name} deferred to the reconcile loop: {result.error}")


def _address(policy: Policy, pod: str) -> str:
    host = f"{pod}.{policy.headless_service}" if policy.headless_service else pod
    return f"{host}:{policy.replication_port}"


def _restore_label(ctx: SwitchoverContext, old_main: str) -> None:
    try:
        ctx.executor.kube.patch_labels(old_main, {ROLE_LABEL: "main"})
        ctx.step(f"switchover abandoned: label {ROLE_LABEL}=main restored on {old_main}")
    except Exception as exc:
        log.warning("could not restore the main label on %s: %s", old_main, exc)
