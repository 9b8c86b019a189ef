"""The re-seed rule (I4): a diverged pod becomes a full replica again, its old files archived, never deleted.

Role: one rule the planner calls once per cycle, after the rules that own an unhealthy cluster, with the
record's MAIN reachable and MAIN. In order:
1. Epoch on disk (reference 7.2): after a failover the new MAIN's epoch reaches disk only with its next
   WAL or snapshot; until then a former MAIN holding one extra transaction looks "ahead in the same
   epoch", not diverged. So the first cycle after a failover runs `CREATE SNAPSHOT` on the new MAIN and
   records the generation; a new MAIN that restarted before that (its incarnation changed) lost its
   epoch, and the former MAIN is then marked diverged: re-seeded, never registered there.
2. A re-seed in progress (the record: pod, step, generation, incarnation) moves one step: the pod came
   back with its files archived -> registered ASYNC by the replication rules (never STRICT_SYNC while it
   recovers: every write would abort, reference 7.3); ready with `behind` 0 -> done, the sync designation
   may take it again. A change of MAIN meanwhile abandons it (nothing is lost: the archive stays, the
   pod is decided again under the new MAIN); a refusal (no space) or failure of the init container halts
   it for that pod incarnation.
3. Under `auto`, the lowest-ordinal diverged pod that is not held starts: record first, then the pod is
   stamped with the generation and deleted; its init container (agent.reseed) archives Memgraph's files.
   One pod at a time.

Must never: do I/O, re-seed the record's MAIN, start while the MAIN is not healthy or its epoch is not on
disk, start a second re-seed while one is in progress, or delete data (the archive is the init
container's move on the pod's own volume; purging is an operator's command).
"""

from __future__ import annotations

from dataclasses import replace

from coordinator.core.datadir import DataOutcome
from coordinator.core.model import (
    ClusterRecord,
    CreateSnapshot,
    EmitEvent,
    ReplicaStatus,
    ReseedPod,
    ReseedPolicy,
    ReseedStep,
    pod_ordinal,
)
from coordinator.core.outcomes import DecisionKind as K
from coordinator.core.outcomes import ReseedEnd, ReseedHold
from coordinator.core.rules import Plan, Verdict, View, is_divergence_error

_ACTIVE = (ReseedStep.ARCHIVE.value, ReseedStep.CATCHUP.value)
_CLEARED = {"reseed_pod": "", "reseed_step": "", "reseed_generation": 0, "reseed_incarnation": ""}


def reseeding(record: ClusterRecord) -> str:
    """The pod a re-seed in progress holds the slot for ("" when none): it is never designated sync."""
    return record.reseed_pod if record.reseed_step in _ACTIVE else ""


def epoch_pending(record: ClusterRecord) -> bool:
    """The MAIN a failover promoted has not had its epoch put on disk yet (reference 7.2)."""
    return bool(record.main) and record.last_failover_to == record.main and (
        record.epoch_generation < record.generation
    )


def clean_start(view: View, name: str) -> bool | None:
    """Did this pod's Memgraph start with no snapshot or WAL file (last durable timestamp 0)? None: unknown"""
    pod = view.pod(name)
    if pod is None or pod.data is None or pod.data.durable_files < 0:
        return None
    return pod.data.clean


def step(view: View, plan: Plan) -> Verdict | None:
    """The rule (see the module doc); a Verdict when it owns the cycle, else None (replication goes on)."""
    _forget_purged(view, plan)
    if not view.main_ok() or view.terminating(view.record.main):
        return None  # guard: a diverged pod adds no redundancy, so waiting for a healthy MAIN costs nothing
    if epoch_pending(view.record):
        return _epoch_on_disk(view, plan)  # owns the cycle only when it finds the former MAIN suspect
    if view.record.reseed_step in _ACTIVE:
        return _resume(view, plan)
    return _start(view, plan)


def _forget_purged(view: View, plan: Plan) -> None:
    """A purge request is done once its pod reports (after a start) that the archive is gone."""
    kept = []
    for entry in view.record.purge:
        name, _, archive = entry.partition("/")
        pod = view.pod(name)
        report = pod.data if pod is not None else None
        if pod is not None and (report is None or any(a.name == archive for a in report.archives)):
            kept.append(entry)  # not restarted yet (or no report): the request stands
    if tuple(kept) != view.record.purge:
        plan.record = replace(plan.record, purge=tuple(kept))


# ---- 1. the new MAIN's epoch on disk --------------------------------------------------------------------


def _epoch_on_disk(view: View, plan: Plan) -> Verdict | None:
    """Reference 7.2: a former MAIN is never registered on, nor a pod re-seeded from, a MAIN whose epoch is
    not on disk; a MAIN that restarted before it reached disk lost it, so the former MAIN is diverged.
    The snapshot comes first in the cycle: a REGISTER after it runs only if it succeeded."""
    rec = view.record
    main, former = rec.main, rec.last_failover_from
    pod = view.pod(main)
    lost = bool(rec.promoted_incarnation) and pod is not None and pod.incarnation != rec.promoted_incarnation
    plan.actions.append(CreateSnapshot(main))
    plan.record = replace(plan.record, epoch_generation=rec.generation)
    plan.record_not_before = len(plan.actions)  # the record never claims an epoch that is not on disk
    suspect = lost and former and former != main and former in view.expected and former not in view.diverged
    if not suspect:
        plan.notes.append(f"CREATE SNAPSHOT on {main}: generation {rec.generation}'s epoch on disk")
        return None
    marked = tuple(sorted({*plan.record.diverged, former}, key=pod_ordinal))
    plan.record = replace(plan.record, diverged=marked)
    msg = (f"{former} (former MAIN) may hold a transaction {main} never had: {main} restarted before its "
           f"epoch reached disk; marked diverged, re-seeded instead of registered")
    plan.after.append(EmitEvent("ReplicaDiverged", msg, former, True))
    plan.write_record(plan.record)
    return Verdict(K.RESEED, f"CREATE SNAPSHOT on {main}: generation {rec.generation}'s epoch on disk; "
                   f"{former} marked diverged ({main} restarted before its epoch reached disk)")


# ---- 2. a re-seed in progress ---------------------------------------------------------------------------


def _end(plan: Plan, end: ReseedEnd, pod: str, message: str, halt_at: str = "") -> None:
    """Clear (or halt) the record's re-seed and say so once, with the generation it acted for."""
    if halt_at:
        plan.record = replace(plan.record, reseed_step=ReseedStep.HALTED.value, reseed_incarnation=halt_at)
    else:
        plan.record = replace(plan.record, **_CLEARED)  # type: ignore[arg-type]
    plan.after.append(EmitEvent(end.value, message, pod, end is not ReseedEnd.COMPLETED))
    plan.notes.append(message)


def _resume(view: View, plan: Plan) -> Verdict | None:
    rec = view.record
    name, gen = rec.reseed_pod, rec.reseed_generation
    if gen != rec.generation:  # a new leader under a new MAIN: roll back; the archive, if any, stays
        _end(plan, ReseedEnd.ABANDONED, name, f"re-seed of {name} (generation {gen}) abandoned: the MAIN "
             f"changed (generation {rec.generation}); nothing deleted, decided again under {rec.main}")
        return None
    if rec.reseed_step == ReseedStep.ARCHIVE.value:
        return _archiving(view, plan)
    return _catching_up(view, plan)


def _archiving(view: View, plan: Plan) -> Verdict | None:
    rec = view.record
    name, gen = rec.reseed_pod, rec.reseed_generation
    old_uid = rec.reseed_incarnation.partition("/")[0]
    pod = view.pod(name)
    if pod is not None and pod.uid == old_uid and not pod.terminating:
        plan.actions.append(ReseedPod(name, pod.uid, gen))  # the deletion did not happen: once more
        return Verdict(K.RESEED, f"re-seed of {name} (generation {gen}): stamping and deleting it again")
    report = pod.data if pod is not None and pod.uid != old_uid else None
    if report is None:
        if pod is not None and pod.uid != old_uid and view.reachable(name):
            _end(plan, ReseedEnd.HALTED, name, f"re-seed of {name} halted: its new pod carries no re-seed "
                 "report (no init container?); nothing moved", halt_at=pod.incarnation)
            return None
        plan.notes.append(f"re-seed of {name} (generation {gen}): waiting for its new pod")
        return None
    assert pod is not None
    if report.outcome is DataOutcome.ARCHIVED and report.generation == gen and report.clean:
        plan.record = replace(plan.record, reseed_step=ReseedStep.CATCHUP.value,
                              reseed_incarnation=pod.incarnation)
        where = ", ".join(a.name for a in report.archives if a.generation == gen) or "an archive"
        msg = f"{name}'s files archived in {where} on its volume; registering it ASYNC on {rec.main}"
        plan.after.append(EmitEvent("ReseedArchived", msg, name))
        plan.notes.append(f"re-seed of {name}: {msg}")
        return None
    said = f"init container reported {report.outcome.value} for generation {report.generation}"
    why = report.reason or said
    _end(plan, ReseedEnd.HALTED, name, f"re-seed of {name} halted: {why}; nothing deleted",
         halt_at=pod.incarnation)
    return None


def _diverged_again(view: View, name: str) -> bool:
    """Evidence about the re-seeded incarnation itself: the MAIN's row at its current address says
    diverged, or a REGISTER was refused for divergence while it holds data (after a clean start it can
    hold only what that MAIN sent it). The mark it carried into the re-seed is not: it stays until its new
    Memgraph answers empty (planner._track_divergence), and a row at its previous address describes the
    incarnation that diverged."""
    row = view.current_row(name)
    if row is not None and row.status is ReplicaStatus.DIVERGED:
        return True
    obs = view.obs(name)
    return (obs is not None and obs.reachable and obs.storage is not None and not obs.empty
            and is_divergence_error(obs.register_error))


def _catching_up(view: View, plan: Plan) -> Verdict | None:
    rec = view.record
    name = rec.reseed_pod
    row = view.current_row(name)
    if _diverged_again(view, name):
        pod = view.pod(name)
        _end(plan, ReseedEnd.HALTED, name, f"re-seed of {name} halted: diverged again while recovering",
             halt_at=pod.incarnation if pod is not None else "-")
        return None
    if row is not None and row.status is ReplicaStatus.READY and row.behind == 0:
        _end(plan, ReseedEnd.COMPLETED, name, f"{name} re-seeded from {rec.main}: ready, behind 0 "
             "(its old files stay archived on its volume)")
        return None
    shown = f"{row.status.value}, behind {row.behind}" if row is not None else "not registered yet"
    plan.notes.append(f"re-seed of {name}: recovering from {rec.main} ({shown})")
    return None


# ---- 3. start one ---------------------------------------------------------------------------------------


def hold(view: View, name: str) -> tuple[ReseedHold, str] | None:
    """Why the diverged pod `name` may not start a re-seed now (None: it may)."""
    rec = view.record
    pod = view.pod(name)
    if view.policy.reseed is ReseedPolicy.MANUAL:
        return ReseedHold.MANUAL, "haAgent.divergence.reseed is manual"
    if pod is None or pod.terminating:
        return ReseedHold.WAITING, "its pod is absent or terminating"
    if reseeding(rec) and reseeding(rec) != name:
        return ReseedHold.BUSY, f"{reseeding(rec)} is being re-seeded (one at a time)"
    halted = rec.reseed_step == ReseedStep.HALTED.value and rec.reseed_pod == name
    report = pod.data
    if report is not None and report.outcome is DataOutcome.REFUSED:
        return ReseedHold.NO_SPACE, report.reason or "its volume lacks space for a fresh copy"
    if halted and pod.incarnation == rec.reseed_incarnation:
        why = report.reason if report is not None and report.reason else "its last attempt failed"
        return ReseedHold.FAILED, f"{why} (retried when the pod restarts)"
    if report is None:
        return ReseedHold.NO_REPORT, "no re-seed init container report on the pod"
    return None


def _start(view: View, plan: Plan) -> Verdict | None:
    rec = view.record
    candidates = sorted((p for p in view.diverged if p != rec.main and p in view.expected), key=pod_ordinal)
    for name in candidates:
        held = hold(view, name)
        if held is not None:
            reason, text = held
            if reason in (ReseedHold.NO_SPACE, ReseedHold.FAILED, ReseedHold.NO_REPORT):
                msg = f"re-seed of {name} refused: {text}"
                plan.key_event(f"reseed-hold:{name}:{reason.value}", "ReseedRefused", msg, name)
                plan.notes.append(msg)
            continue
        pod = view.pod(name)
        assert pod is not None
        plan.write_record(replace(plan.record, reseed_pod=name, reseed_step=ReseedStep.ARCHIVE.value,
                                  reseed_generation=rec.generation, reseed_incarnation=pod.incarnation))
        plan.actions.append(ReseedPod(name, pod.uid, rec.generation))  # record first: a new leader resumes
        msg = (f"re-seeding {name} from {rec.main} (generation {rec.generation}): its Memgraph files go to "
               "an archive on its volume, nothing is deleted")
        plan.event("ReseedStarted", msg, name, True)
        return Verdict(K.RESEED, f"{name} diverged: stamped and deleted for a re-seed from {rec.main} "
                       f"(generation {rec.generation}); its init container archives its files")
    return None
