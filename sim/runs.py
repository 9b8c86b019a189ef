"""Runs on the emulated cluster: the rolling restart, and the end-of-run evidence (timeline + report).

Role: what the demo, the scenarios and the bench all do the same way -- roll the StatefulSet from the
highest ordinal down, one pod at a time, each waited Ready and the cluster healthy, with one progress
line per step; and at the end gather the final data of every pod, the preStop records and the samples
into a `sim.timeline.Timeline`, check I1-I7 and summarise the run as the `RESULT` JSON.

Must never: wait without a bound, or report a figure it did not measure.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.archives import archived_ids
from sim.check import Bounds, Report, Sampler, check, write_report
from sim.cluster import SimCluster
from sim.kube.errors import ApiError
from sim.timeline import FinalData, Timeline, changes_of_main, read_prestop_logs
from sim.workload import Writer, collect_final_ids

log = logging.getLogger(__name__)

RECORD_MAIN = "memgraph-ha.io/main"  # the cluster record's annotations on the Lease (DESIGN)
RECORD_GENERATION = "memgraph-ha.io/generation"


def record_reader(cluster: SimCluster) -> Callable[[], tuple[str, int] | None]:
    """For the sampler: the cluster record's (MAIN, generation) read from the Lease, None before the
    first leader wrote it."""

    def read() -> tuple[str, int] | None:
        try:
            lease = cluster.kube.get("Lease", cluster.cfg.namespace, f"{cluster.cfg.name}-ha")
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
        ann = lease["metadata"].get("annotations") or {}
        gen = str(ann.get(RECORD_GENERATION, "0"))
        return str(ann.get(RECORD_MAIN, "")), int(gen) if gen.isdigit() else 0

    return read


def sampler(cluster: SimCluster, timeline: Timeline, period_s: float = 0.2,
            diverged: Callable[[], list[tuple[str, str]]] | None = None) -> Sampler:
    """The invariant sampler of a run on `cluster` (roles, labels, Ready, the record's MAIN)."""
    timeline.endpoint_delay_s = cluster.timings.endpoint_delay_s
    return Sampler(timeline, cluster.roles, period_s=period_s, diverged=diverged,
                   record=record_reader(cluster))


def writer(cluster: SimCluster, rate_hz: float, label: str = "W", threads: int = 1,
           id_prefix: str | None = None, reconnect_on_read_only: bool = False) -> Writer:
    """A writer through the cluster's write Service, with backend attribution. `reconnect_on_read_only`:
    an application following docs/operations.md's client guidance (see `sim.workload`)."""
    user, password = cluster.cfg.memgraph_auth or ("", "")
    backend_of = cluster.net.backend_of if cluster.net is not None else None
    return Writer(cluster.resolve_main, user=user, password=password, label=label, rate_hz=rate_hz,
                  threads=threads, backend_of=backend_of, id_prefix=id_prefix,
                  reconnect_on_read_only=reconnect_on_read_only)


@dataclass(frozen=True)
class RestartStep:
    pod: str
    old_role: str
    main_before: str | None
    main_after: str | None
    duration_s: float
    write_pause_s: float

    def line(self, elapsed_s: float) -> str:
        moved = (
            f"MAIN {self.main_before} -> {self.main_after}"
            if self.main_before != self.main_after
            else f"MAIN stays {self.main_after}"
        )
        return (
            f"[{elapsed_s:6.1f}s] restarted {self.pod:<12} (was {self.old_role:<7}) "
            f"in {self.duration_s:5.1f}s; {moved}; write pause {self.write_pause_s:.3f}s"
        )


def max_pause_between(writer: Writer | None, start: float, end: float) -> float:
    """Longest gap between acknowledged writes that overlaps [start, end] (0 without a writer)."""
    if writer is None:
        return 0.0
    pauses = [p.duration for p in writer.write_pauses(threshold_s=0.0) if p.end >= start and p.start <= end]
    return max(pauses, default=0.0)


def rolling_restart(
    cluster: SimCluster,
    writer: Writer | None = None,
    progress: Callable[[str], None] = print,
    healthy_timeout_s: float = 60.0,
    t0: float | None = None,
) -> list[RestartStep]:
    """Restart every pod, highest ordinal first; stop at the first pod that does not come back healthy."""
    t0 = time.monotonic() if t0 is None else t0
    steps: list[RestartStep] = []
    for name in reversed(cluster.pod_names()):
        seen = cluster.roles().get(name)
        old_role = (seen.role if seen is not None else None) or "down"
        before = cluster.main()
        start = time.monotonic()
        cluster.restart_pod(name, timeout_s=cluster.timings.grace_s + healthy_timeout_s)
        cluster.wait_for(cluster.healthy, healthy_timeout_s, f"cluster healthy after restarting {name}")
        end = time.monotonic()
        step = RestartStep(
            name, old_role, before, cluster.main(), end - start, max_pause_between(writer, start, end)
        )
        steps.append(step)
        progress(step.line(end - t0))
    return steps


class StatusDivergence:
    """The Sampler's `diverged` source: the pods the status document reports diverged, as (pod, detail).
    Asks any agent at most once per `min_interval_s` (bounded by `timeout_s`); a failed ask repeats the
    last answer (logged)."""

    def __init__(self, cluster: SimCluster, min_interval_s: float = 1.0, timeout_s: float = 1.0) -> None:
        self._cluster, self._interval, self._timeout = cluster, min_interval_s, timeout_s
        self._at, self._last = -1e9, list[tuple[str, str]]()

    def __call__(self) -> list[tuple[str, str]]:
        if time.monotonic() - self._at < self._interval:
            return self._last
        try:
            doc = self._cluster.status(timeout_s=self._timeout)
            self._last = [(str(p), "status: diverged") for p in doc.get("cluster", {}).get("diverged") or []]
        except Exception as exc:
            log.info("event=divergence_status_failed error=%s detail=%s", type(exc).__name__, exc)
        self._at = time.monotonic()
        return self._last


@dataclass
class RunEvidence:
    timeline: Timeline
    report: Report
    lost_acked_writes: int
    summary: dict[str, Any] = field(default_factory=dict)


def finish(
    cluster: SimCluster,
    writer: Writer | None,
    sampler: Sampler | None,
    timeline: Timeline,
    out_dir: Path,
    name: str,
    bounds: Bounds | None = None,
    catch_up_s: float = 10.0,
    planned: Sequence[tuple[float, float]] | None = None,
    extra_writers: tuple[Writer, ...] = (),
) -> RunEvidence:
    """Stop the writers and sampler, gather the final data and preStop records, check I1-I7.

    With `planned` (the windows in which the run itself moved the MAIN), every change of MAIN the samples
    show is marked on the timeline: a switchover inside a window, an unplanned failover outside (I4 judges
    a crashed MAIN's in-flight commit by these marks). Without it, the run marks its own (the bench)."""
    writers = [w for w in (writer, *extra_writers) if w is not None]
    for w in writers:
        w.stop()
    if writers:
        timeline.attempts = [a for w in writers for a in w.attempts]
    if sampler is not None:
        sampler.stop()
    if planned is not None:
        timeline.failovers.extend(changes_of_main(timeline, planned))
    status = cluster.status()
    main = status.get("cluster", {}).get("main") or ""
    ready = tuple(status.get("cluster", {}).get("ready_replicas") or ())
    acked = {a.id for a in timeline.attempts if a.acked}
    addresses = {n: (cluster.runtime(n).ip, cluster.ports["bolt"]) for n in cluster.pod_names()}
    user, password = cluster.cfg.memgraph_auth or ("", "")
    ids = collect_final_ids(addresses, acked, user=user, password=password, catch_up_s=catch_up_s)
    timeline.final = FinalData({k: tuple(sorted(v)) for k, v in ids.items()}, main, ready)
    for pod in cluster.pod_names():  # I4: what the re-seed (or the runbook) archived is kept, not lost
        kept = archived_ids(cluster.workdir / "pvc" / pod / "lib", user=user, password=password)
        if kept:
            timeline.final.quarantined[pod] = tuple(sorted(kept))
    for pod in cluster.pod_names():
        log_dir = cluster.workdir / "pvc" / pod / "log"
        timeline.prestops.extend(
            read_prestop_logs(log_dir, pod=pod, budget_s=cluster.timings.prestop_budget_s)
        )
    report = check(timeline, bounds)
    write_report(report, timeline, out_dir, name)
    lost = len(acked - set(ids.get(main, ()))) if main else len(acked)
    return RunEvidence(timeline, report, lost)


def result_json(evidence: RunEvidence, cluster: SimCluster, steps: list[RestartStep]) -> str:
    status = cluster.status().get("cluster", {})
    summary = {
        "lost_acked_writes": evidence.lost_acked_writes,
        "divergence": len(status.get("diverged") or []),
        "dual_main_observed": bool(cluster.dual_main_seen) or not evidence.report.result("I1").ok,
        "switchovers": sum(1 for s in steps if s.main_before != s.main_after),
        "max_write_pause_s": round(max((s.write_pause_s for s in steps), default=0.0), 3),
        "acked_writes": len(
            evidence.timeline.attempts and [a for a in evidence.timeline.attempts if a.acked]
        ),
        "invariants": {r.name: r.ok for r in evidence.report.results},
        "steps": [asdict(s) for s in steps],
    }
    evidence.summary = summary
    return json.dumps(summary, sort_keys=True)
