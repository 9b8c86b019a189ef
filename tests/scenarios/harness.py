"""The scenario harness: one emulated cluster with a writer and the invariant checker around a fault.

Role: start a 3-pod `SimCluster` (fixed seed, short timings), wait until it is healthy, then record
everything `sim.check` judges: role/label samples (`Sampler` on `cluster.roles`, divergence from the
status document), the writer's attempts through the client Service, outage windows and failover marks
(from the faults and the samples), the fault stop time, and at the end the final data and the preStop
records (`sim.runs.finish`). The JSON report and timeline go to the test's tmp dir, with the fault log.

Must never: leave a process running (teardown stops the writer, the sampler and the cluster, also when
the test failed), wait without a bound, or relax a bound silently (a scenario passes its `Bounds`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sim import check_declared, runs
from sim.check import Bounds, Sampler
from sim.cluster import ClusterConfig, SimCluster
from sim.converge import STABLE_S, converged, wait_stable
from sim.faults import FaultLog
from sim.reader import Reader
from sim.runs import RunEvidence, StatusDivergence, finish
from sim.timeline import Timeline
from sim.workload import Writer

MAIN = "main"


class Scenario:
    """A running scenario. Use `with Scenario(...) as sc:`; `sc.finish()` judges the run."""

    def __init__(self, workdir: Path, name: str, config: ClusterConfig, rate_hz: float = 20.0,
                 writer_threads: int = 1, reader: bool = False, reconnect_on_read_only: bool = False) -> None:
        self.workdir, self.name, self.cfg = workdir, name, config
        self.reconnect_on_read_only = reconnect_on_read_only  # the client guidance (sim.workload.Writer)
        self.cluster = SimCluster(workdir / "cluster", config)
        self.timeline = Timeline()
        self.flog = FaultLog()
        self.rate_hz = rate_hz
        self.writer_threads, self.with_reader = writer_threads, reader
        self.writer: Writer | None = None
        self.more_writers: list[Writer] = []  # clients that connect later (e.g. after a failover)
        self.reader: Reader | None = None
        self.sampler: Sampler | None = None
        self.planned: list[tuple[float, float]] = []  # windows in which a change of MAIN is a switchover
        self.t0 = time.monotonic()

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Scenario:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.cluster.start(wait_ready_s=90)
        self.flog.add("pods Ready")
        self.cluster.wait_for(self.cluster.healthy, 60, "cluster healthy at start")
        self.flog.add("cluster healthy")
        self.timeline.pods = self.cluster.pod_names()
        self.sampler = runs.sampler(self.cluster, self.timeline, 0.2, StatusDivergence(self.cluster))
        self.sampler.start()
        self.writer = runs.writer(self.cluster, self.rate_hz, threads=self.writer_threads,
                                  reconnect_on_read_only=self.reconnect_on_read_only)
        self.writer.start()
        if self.with_reader:
            user, password = self.cfg.memgraph_auth or ("", "")
            net, read_svc = self.cluster.net, f"{self.cfg.name}-read"
            assert net is not None
            self.reader = Reader(lambda: net.service(read_svc), net.backend_of, user, password).start()
        if not self.writer.wait_acks(20, timeout_s=20):
            raise AssertionError("the writer got no 20 acks through the client Service at start")
        self.flog.add("writer running")

    def close(self) -> None:
        for stoppable in (self.writer, *self.more_writers, self.reader, self.sampler):
            if stoppable is not None:
                with contextlib.suppress(Exception):
                    stoppable.stop()
        self.cluster.stop()

    # ---- what scenarios use ---------------------------------------------------------------------

    def main(self) -> str:
        """The pod that is MAIN, labelled and Ready right now (as the sampler judges it)."""
        mains = [p for p, v in self.cluster.roles().items() if v.role == MAIN and v.label == MAIN and v.ready]
        if len(mains) != 1:
            raise AssertionError(f"expected exactly one labelled MAIN, saw {mains}")
        return mains[0]

    def replicas(self) -> list[str]:
        main = self.main()
        return [p for p in self.cluster.pod_names() if p != main]

    def sync_replica(self) -> str:
        sync = self.cluster.status().get("cluster", {}).get("sync_replica")
        if not sync:
            raise AssertionError("no sync replica designated")
        return str(sync)

    def wait_acks_after(self, t: float, count: int, timeout_s: float) -> float:
        """Until `count` writes (of every writer) acked after monotonic `t` (bounded); returns the time
        waited."""
        writers = [w for w in (self.writer, *self.more_writers) if w is not None]
        return self.cluster.wait_for(
            lambda: sum(1 for w in writers for a in w.attempts if a.acked and a.t_start >= t) >= count,
            timeout_s, f"{count} writes acknowledged after t={t - self.t0:.1f}s",
        )

    def new_client(self, rate_hz: float | None = None) -> Writer:
        """A writer that connects now (a new application instance): its connections are NEW ones."""
        w = runs.writer(self.cluster, rate_hz or self.rate_hz, id_prefix=f"n{len(self.more_writers)}w")
        self.more_writers.append(w.start())
        self.flog.add(f"new client {w.id_prefix} connected")
        return w

    def wait_main(self, pred: Callable[[str], bool], timeout_s: float, what: str) -> str:
        self.cluster.wait_for(lambda: pred(self.main()), timeout_s, what)
        return self.main()

    @contextlib.contextmanager
    def planned_change(self) -> Any:
        """Changes of MAIN inside this block are switchovers (planned), not failovers."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.planned.append((start, time.monotonic()))

    def faults_stopped(self) -> None:
        self.timeline.fault_stop_t = time.monotonic()
        self.flog.add("faults stopped")

    def converge(self, timeout_s: float = 60.0, stable_s: float = STABLE_S, pods: Iterable[str] = (),
                 final: bool = True) -> float:
        """Until the cluster shows 1 MAIN + ready replicas (of `pods`, default all) for `stable_s` without
        a break (sim/converge.py: a fault's effect can show late). With `final` the faults are over: I5
        counts from here unless `faults_stopped` was called before. Returns the time to the stable run."""
        if final and self.timeline.fault_stop_t is None:
            self.faults_stopped()
        need = set(pods) or set(self.cluster.pod_names())
        return wait_stable(lambda: converged(self.cluster.roles(), need), timeout_s + stable_s,
                           "converged: 1 MAIN + ready replicas", stable_s=stable_s)

    def finish(self, bounds: Bounds | None = None, extra: dict[str, Any] | None = None) -> RunEvidence:
        """Stop the writer and sampler, gather the evidence, check I1-I7, write the reports."""
        out = self.workdir / "reports"
        if self.reader is not None:
            self.reader.stop()
            self.timeline.reads = self.reader.reads
        # every change of MAIN is marked (never lossy: every scenario here expects its acked writes kept)
        ev = finish(self.cluster, self.writer, self.sampler, self.timeline, out, self.name, bounds,
                    planned=self.planned, extra_writers=tuple(self.more_writers))
        self.writer = self.sampler = self.reader = None
        self.more_writers = []
        doc = {
            "ok": ev.report.ok,
            "lost_acked_writes": ev.lost_acked_writes,
            "acked_writes": sum(1 for a in ev.timeline.attempts if a.acked),
            "failovers": [f"{f.old_main}->{f.new_main} planned={f.planned}" for f in ev.timeline.failovers],
            "faults": self.flog.render(self.t0),
            "results": {r.name: {"ok": r.ok, "summary": r.summary, "evidence": list(r.evidence)}
                        for r in ev.report.results},
            **({"declared_loss": check_declared.summary(ev.timeline)} if ev.timeline.declared_losses else {}),
            **(extra or {}),
        }
        ev.summary = doc
        (out / f"{self.name}.scenario.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
        return ev

    def failure_text(self, ev: RunEvidence) -> str:
        bad = [f"{r.name}: {r.summary}: {'; '.join(r.evidence[:5])}" for r in ev.report.results if not r.ok]
        return (f"report {self.workdir / 'reports'}: " + " | ".join(bad) + "\nfaults:\n"
                + "\n".join(self.flog.render(self.t0)))
