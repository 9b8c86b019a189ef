"""The invariant checker: judges a recorded `Timeline` against the contract I1-I7 (DESIGN.md).

Role: `check(timeline, bounds) -> Report`, one `CheckResult` per invariant with pass/fail and the
evidence (which ids were lost, at which instant two MAINs were seen, which hook overran), a per-run
JSON report file, and the `Sampler` that records role/label samples while a scenario runs.

What the sampler can see: for every pod, once per round, Memgraph's `SHOW REPLICATION ROLE` (None
when unreachable), the pod's role label and Ready condition, and optionally the replica names a MAIN
lists in `SHOW REPLICAS`. What it cannot see: anything between two rounds, the order of events inside
one round (pods and fields are read one after another, not atomically), which MAIN a replica actually
accepts (the main UUID, reference memgraph-replication.md 3.3/4.2), and the role of an unreachable pod.
Hence the lag rule used by I1 and I2: a condition seen in `lag_rounds` consecutive rounds (default one
sampling period) is sampling skew; seen in more consecutive rounds, it is a violation.

Must never: do I/O other than writing the report file and calling the sampler's callables, or
relax a check silently (every allowance is written into the evidence).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sim import check_clients, check_declared
from sim.sampler import Sampler
from sim.timeline import UNKNOWN, RoleSample, Timeline, write_pauses

__all__ = ["Bounds", "CheckResult", "Report", "Sampler", "check", "write_report"]  # Sampler: moved

log = logging.getLogger(__name__)

MAIN = "main"
REPLICA = "replica"


@dataclass(frozen=True)
class Bounds:
    """The bounds a run is judged by."""

    lag_rounds: int = 1  # consecutive rounds a bad I1/I2 condition may be seen (sampling skew)
    convergence_s: float = 60.0  # I5: fault stop -> 1 MAIN + ready replicas
    prestop_slack_s: float = 2.0  # I6: hook may exceed its budget by this much (process start, log flush)
    outage_pause_s: float = 1.0  # I7: longest write pause allowed inside an outage window


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    summary: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def result(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_json(self) -> str:
        return json.dumps({"ok": self.ok, "results": [dataclasses.asdict(r) for r in self.results]}, indent=1)


def write_report(report: Report, timeline: Timeline, directory: Path, run_name: str) -> Path:
    """Write `<run_name>.report.json` (verdicts) and `<run_name>.timeline.json` (the facts) to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{run_name}.timeline.json").write_text(timeline.to_json())
    path = directory / f"{run_name}.report.json"
    path.write_text(report.to_json())
    return path


def check(timeline: Timeline, bounds: Bounds | None = None) -> Report:
    b = bounds or Bounds()
    checks: list[Callable[[Timeline, Bounds], CheckResult]] = [
        check_i1,
        check_i2,
        check_i3,
        check_i4,
        check_i5,
        check_i6,
        check_i7,
        check_reads,
    ]
    return Report(tuple(c(timeline, b) for c in checks))


# ---- I1 / I2: conditions over rounds of samples ---------------------------------------------------


def _persistent(
    rounds: list[list[RoleSample]], keys_of: Callable[[list[RoleSample]], set[str]], lag_rounds: int
) -> list[str]:
    """Keys seen in more than `lag_rounds` consecutive rounds, with the instant their run began."""
    found: list[str] = []
    run: dict[str, tuple[float, int]] = {}
    for rnd in rounds:
        keys = keys_of(rnd)
        t = min(s.t for s in rnd)
        run = {k: (run[k][0], run[k][1] + 1) if k in run else (t, 1) for k in keys}
        for k, (t0, n) in run.items():
            if n == lag_rounds + 1:
                found.append(f"{k} from t={t0:.3f} (seen in >{lag_rounds} consecutive rounds)")
    return found


def _i1_keys(rnd: list[RoleSample]) -> set[str]:
    labelled = [s for s in rnd if s.label == MAIN]
    keys = {f"role=main on {s.pod}, which is a REPLICA" for s in labelled if s.role == REPLICA}
    both = sorted(s.pod for s in labelled if s.role == MAIN)
    if len(both) >= 2:
        keys.add(f"two MAINs both labelled role=main: {', '.join(both)}")
    return keys


def check_i1(tl: Timeline, b: Bounds) -> CheckResult:
    """I1 one writer. Rule: at most one pod is MAIN and labelled role=main, and role=main never sits on a
    reachable REPLICA, except for `lag_rounds` consecutive rounds (sampling skew). An unreachable pod's
    label is not judged: no write can be acknowledged by it. And no write the writer saw acknowledged
    came from a pod the cluster record did not name as MAIN then (`check_clients.acks_off_record`)."""
    rounds = tl.rounds()
    if not rounds:
        return CheckResult("I1", False, "no role samples recorded")
    bad = _persistent(rounds, _i1_keys, b.lag_rounds)
    second: list[str] = []  # a declared unfenced failover's second writer: counted, listed (check_declared)
    for a, text in check_clients.acks_off_record_by(tl, b.lag_rounds * tl.sample_period_s):
        (second if check_declared.covering(tl, a.backend_pod, a.t_end) else bad).append(text)
    note = (f"DECLARED SECOND WRITER: {len(second)} write(s) acknowledged by a declared old MAIN while the "
            "record named another",) if second else ()
    if bad:
        return CheckResult("I1", False, f"{len(bad)} one-writer violation(s)", tuple(bad) + note)
    extra = f"; {len(second)} declared second-writer ack(s)" if second else ""
    return CheckResult("I1", True, f"one writer in all {len(rounds)} rounds{extra}", note + tuple(second))


def _i2_keys(rnd: list[RoleSample]) -> set[str]:
    mains = [s for s in rnd if s.role == MAIN]
    unfenced = sorted(s.pod for s in mains if s.label == MAIN)
    replicas = [s.pod for s in rnd if s.role == REPLICA]
    keys = set()
    if len(unfenced) >= 2 and replicas:
        keys.add(f"unfenced MAINs {', '.join(unfenced)} while {', '.join(sorted(replicas))} are replicas")
    owners: dict[str, list[str]] = {}
    for s in mains:
        for name in s.replicas:
            owners.setdefault(name, []).append(s.pod)
    for name, pods in owners.items():
        if len(pods) >= 2:
            keys.add(f"replica {name} registered on MAINs {', '.join(sorted(pods))}")
    return keys


def check_i2(tl: Timeline, b: Bounds) -> CheckResult:
    """I2 (observable part): no round (beyond the lag) with two reachable unfenced MAINs (fenced = role
    label removed) while a pod is a replica, nor a replica name listed by two MAINs' SHOW REPLICAS."""
    rounds = tl.rounds()
    if not rounds:
        return CheckResult("I2", False, "no role samples recorded")
    bad = _persistent(rounds, _i2_keys, b.lag_rounds)
    if bad:
        return CheckResult("I2", False, f"{len(bad)} replica-ownership violation(s)", tuple(bad))
    return CheckResult("I2", True, f"one owner per replica in all {len(rounds)} rounds (as far as sampled)")


# ---- I3 / I4: the data --------------------------------------------------------------------------


def _short(ids: Iterable[str], n: int = 20) -> str:
    items = sorted(ids, key=lambda i: (len(i), i))
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def check_i3(tl: Timeline, b: Bounds) -> CheckResult:
    """I3 no acknowledged write lost: every acked id is on the final MAIN and on every ready replica.
    Loss is allowed only for ids acked before a failover marked lossy (non-ready or ASYNC target). And
    no write the client was told failed is committed anywhere; an unknown outcome is neither."""
    if tl.final is None or not tl.final.main:
        return CheckResult("I3", False, "no final MAIN recorded")
    acked = {a.id: a.t_end for a in tl.attempts if a.acked}
    lossy = [f for f in tl.failovers if f.lossy]
    allowed_until = max((f.t for f in lossy), default=None)
    evidence, allowed = [], []
    declared_ids = check_declared.acked_declared(tl)
    for pod in [tl.final.main, *tl.final.ready_replicas]:
        have = set(tl.final.ids_by_pod.get(pod, ()))
        lost = set(acked) - have
        excused = {i for i in lost if allowed_until is not None and acked[i] <= allowed_until}
        declared = {i for i in lost - excused if i in declared_ids}
        if lost - excused - declared:
            bad = lost - excused - declared
            evidence.append(f"{pod} lacks {len(bad)} acked id(s): {_short(bad)}")
        if excused:
            allowed.append(f"{pod} lacks {len(excused)} id(s) acked before lossy failover: {_short(excused)}")
        if tl.declared_losses:
            allowed += check_declared.lost_evidence(tl, declared, pod)
    lied = check_clients.failed_but_present(tl)
    if evidence or lied:
        what = "acknowledged writes lost" if evidence else "writes reported failed were committed"
        return CheckResult("I3", False, what, tuple(evidence + lied + allowed))
    note = f"; loss allowed by {len(lossy)} lossy failover(s)" if any("lossy" in a for a in allowed) else ""
    declared_n = sum(1 for a in allowed if a.startswith("DECLARED"))
    note += f"; {declared_n} DECLARED LOSS line(s) in the evidence" if declared_n else ""
    unknown = sum(1 for a in tl.attempts if a.outcome == UNKNOWN)
    return CheckResult(
        "I3",
        True,
        f"all {len(acked)} acked ids on {tl.final.main} and "
        f"{len(tl.final.ready_replicas)} ready replica(s){note}; no failed write committed; "
        f"{unknown} outcome(s) unknown",
        tuple(allowed),
    )


def check_i4(tl: Timeline, b: Bounds) -> CheckResult:
    """I4 no divergence created: divergence reported only on pods where it was injected or that were
    diverged at the start; no pod outside that set holds ids the final MAIN lacks; and the ids a diverged
    pod held are still on it or in its quarantine (never deleted)."""
    declared = {d.old_main for d in tl.declared_losses}  # an unfenced failover's old MAIN (check_declared)
    known = set(tl.injected_divergence) | set(tl.diverged_at_start) | declared
    crashed = _crashed_mains_with_inflight_commits(tl)
    evidence = [
        f"divergence reported on {r.pod} at t={r.t:.3f} via {r.source}: {r.detail}"
        for r in tl.divergence_reports
        if r.pod not in known and r.pod not in crashed
    ]
    if tl.final is not None and tl.final.main:
        on_main = set(tl.final.ids_by_pod.get(tl.final.main, ()))
        for pod, ids in sorted(tl.final.ids_by_pod.items()):
            extra = set(ids) - on_main
            if pod not in known and pod not in crashed and extra:
                evidence.append(f"{pod} holds {len(extra)} id(s) the MAIN lacks: {_short(extra)}")
    for pod, before in sorted(tl.diverged_ids_before.items()):
        kept: set[str] = set()
        if tl.final is not None:
            kept = set(tl.final.ids_by_pod.get(pod, ())) | set(tl.final.quarantined.get(pod, ()))
        deleted = set(before) - kept
        if deleted:
            evidence.append(f"{pod} lost {len(deleted)} id(s) of its diverged history: {_short(deleted)}")
    if evidence:
        return CheckResult("I4", False, "divergence created or diverged data deleted", tuple(evidence))
    notes = tuple(
        f"{pod}: crashed MAIN kept unacknowledged in-flight commit(s) {_short(ids)} (from outside)"
        for pod, ids in sorted(crashed.items())
    ) + tuple(f"DECLARED DIVERGENCE: {pod}, the old MAIN of a declared unfenced failover"
              for pod in sorted(declared))
    return CheckResult(
        "I4",
        True,
        f"divergence only where known ({', '.join(sorted(known | set(crashed))) or 'none'})",
        notes,
    )


def _crashed_mains_with_inflight_commits(tl: Timeline) -> dict[str, set[str]]:
    """Pods that were a MAIN lost to a failover and hold only ids no client saw acknowledged.

    A MAIN killed between its local commit and the replicas' finalize (STRICT_SYNC two-phase commit,
    reference memgraph-replication.md section 5) keeps a write the client never got back; after the
    failover it returns diverged. That divergence arrives from outside (a crash inside Memgraph's commit),
    not from a decision of the HA layer: it must be detected and quarantined (the rest of I4), and no
    acknowledged write may be among those ids (else it is an I3 matter and not excused here). A pod
    re-seeded since (issue 17) holds them in its archive, so the archive's ids count as its own.
    """
    if tl.final is None or not tl.final.main:
        return {}
    on_main = set(tl.final.ids_by_pod.get(tl.final.main, ()))
    acked = {a.id for a in tl.attempts if a.acked}
    attempted = {a.id for a in tl.attempts}
    out: dict[str, set[str]] = {}
    for mark in tl.failovers:
        if mark.planned or mark.old_main == tl.final.main:
            continue
        old = mark.old_main
        extra = (set(tl.final.ids_by_pod.get(old, ())) | set(tl.final.quarantined.get(old, ()))) - on_main
        if extra and not (extra & acked) and extra <= attempted:
            out[mark.old_main] = extra
    return out


# ---- I5 / I6 / I7 -------------------------------------------------------------------------------


def _converged(rnd: list[RoleSample], pods: Sequence[str]) -> bool:
    seen = {s.pod: s for s in rnd}
    if pods and set(seen) != set(pods):
        return False
    mains = [s for s in seen.values() if s.role == MAIN and s.label == MAIN and s.ready]
    rest = [s for s in seen.values() if s not in mains]
    return len(mains) == 1 and all(s.role == REPLICA and s.ready and s.label != MAIN for s in rest)


def check_i5(tl: Timeline, b: Bounds) -> CheckResult:
    """I5 convergence: from the first round at or after the fault stop in which 1 MAIN (labelled, ready)
    and all other pods ready replicas are seen, and stay so to the last round, within the bound."""
    if tl.fault_stop_t is None:
        return CheckResult("I5", False, "no fault stop time recorded")
    after = [r for r in tl.rounds() if min(s.t for s in r) >= tl.fault_stop_t]
    conv_t: float | None = None
    for rnd in after:
        if not _converged(rnd, tl.pods):
            conv_t = None  # not stable yet: convergence counts from the last unbroken run
        elif conv_t is None:
            conv_t = min(s.t for s in rnd)
    source = "samples"
    if conv_t is None and not after and tl.converged_t is not None:
        conv_t, source = tl.converged_t, "cluster"
    if conv_t is None:
        last = after[-1] if after else []
        state = ", ".join(f"{s.pod}={s.role}/{s.label}/{'ready' if s.ready else 'unready'}" for s in last)
        return CheckResult("I5", False, "not converged by the end of the run", (f"last round: {state}",))
    took = conv_t - tl.fault_stop_t
    ok = took <= b.convergence_s
    return CheckResult(
        "I5", ok, f"converged {took:.2f}s after the fault stopped ({source}); bound {b.convergence_s:.1f}s"
    )


def check_i6(tl: Timeline, b: Bounds) -> CheckResult:
    """I6 bounded, traceable preStop: every hook run has START and END and lasted <= budget + slack."""
    evidence = []
    for r in tl.prestops:
        if r.start_wall is None:
            evidence.append(f"{r.pod}: record without START in {r.path}")
        elif r.end_wall is None:
            evidence.append(f"{r.pod}: hook started and never wrote END in {r.path}")
        elif (r.duration_s or 0.0) > r.budget_s + b.prestop_slack_s:
            evidence.append(
                f"{r.pod}: hook overran: {r.duration_s:.2f}s > budget {r.budget_s:.1f}s"
                f" + {b.prestop_slack_s:.1f}s in {r.path}"
            )
    if evidence:
        return CheckResult("I6", False, "preStop unbounded or untraceable", tuple(evidence))
    longest = max((r.duration_s or 0.0 for r in tl.prestops), default=0.0)
    return CheckResult("I6", True, f"{len(tl.prestops)} hook run(s), longest {longest:.2f}s")


def _main_at(rounds: list[list[RoleSample]], t: float) -> str | None:
    before = [r for r in rounds if min(s.t for s in r) <= t]
    if not before:
        return None
    mains = [s.pod for s in before[-1] if s.role == MAIN and s.label == MAIN and s.ready]
    return mains[0] if len(mains) == 1 else None


def check_i7(tl: Timeline, b: Bounds) -> CheckResult:
    """I7 control plane not in the write path: inside every outage window whose MAIN was healthy, no
    write pause longer than the bound, and the MAIN seen before the window is not demoted, unlabelled or
    NotReady."""
    windows = [w for w in tl.outages if w.main_healthy]
    if not windows:
        return CheckResult("I7", True, "no outage window with a healthy MAIN in this run")
    rounds = tl.rounds()
    pauses = write_pauses(tl.attempts, 0.0)
    last_t = max((a.t_end for a in tl.attempts), default=0.0)
    evidence = []
    for w in windows:
        acks_in = [a for a in tl.attempts if a.acked and w.start <= a.t_end <= w.end]
        for p in pauses:
            inside = min(p.end, w.end) - max(p.start, w.start)
            if inside > b.outage_pause_s:
                evidence.append(
                    f"{w.kind} outage [{w.start:.3f}, {w.end:.3f}]: write pause {inside:.2f}s "
                    f"inside it (ack {p.last_id} on {p.before} -> {p.first_id} on {p.after})"
                )
        if not acks_in and min(w.end, last_t) - w.start > b.outage_pause_s:
            evidence.append(f"{w.kind} outage [{w.start:.3f}, {w.end:.3f}]: no write acknowledged inside it")
        main = _main_at(rounds, w.start)
        for rnd in rounds:
            s = next((s for s in rnd if s.pod == main), None)
            healthy = s is not None and s.role == MAIN and s.label == MAIN and s.ready
            if s is not None and w.start <= s.t <= w.end and not healthy:
                evidence.append(
                    f"{w.kind} outage: MAIN {main} at t={s.t:.3f} was role={s.role} "
                    f"label={s.label} ready={s.ready}"
                )
                break
    if evidence:
        return CheckResult("I7", False, "writes stalled or MAIN disturbed during an outage", tuple(evidence))
    return CheckResult("I7", True, f"writes went on through {len(windows)} outage window(s)")


def check_reads(tl: Timeline, b: Bounds) -> CheckResult:
    """Reads through the read Service reached only a ready replica or the MAIN (`check_clients`)."""
    if not tl.reads:
        return CheckResult("reads", True, "no reads recorded in this run")
    bad, judged, unjudged = check_clients.reads_off_target(tl, b.lag_rounds * tl.sample_period_s)
    if bad:
        return CheckResult("reads", False, f"{len(bad)} read(s) off target", tuple(bad[:20]))
    return CheckResult("reads", True, f"{judged} read(s) on a ready replica or the MAIN"
                       + (f" ({unjudged} without samples of their pod)" if unjudged else ""))
