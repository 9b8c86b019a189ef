"""`make bench`: the issue's measurements on the emulated 3-pod cluster (STRICT_SYNC sync replica).

Role: run the real agents on `sim.cluster.SimCluster` with a writer through the client Service, and
measure, in two phases:

1. fault phase (the sim's short timings, `ClusterConfig` defaults): N switchovers by deleting the MAIN
   pod (preStop path), one rolling restart of the 3 pods, N unplanned failovers (kill -9 of the MAIN's
   Memgraph held down, pod NotReady) and a few node losses (the MAIN's pod frozen); then the I1-I7
   check and the lost acknowledged writes;
2. steady phase (the product's default timings: lease 15 s / renew 10 s / retry 2 s, reconcile 2 s,
   failoverAfter 5 s): Kubernetes API requests per agent per minute and the leader's Bolt queries per
   reconcile cycle (the sim's 0.5 s retry period would make the request rate unrepresentative).

Agent memory (RSS of every process of the agent container, summed) is sampled from /proc in both.
Progress lines go to stderr; the LAST line on stdout is one JSON object with every figure.

Usage: python -m sim.bench [--quick] [--iterations N] [--node-loss N] [--window S] [--seed 7] [--keep]
Exit code 0 when every figure was measured, no acknowledged write was lost and I1-I7 held; targets
missed are listed in the JSON (`targets_missed`) but do not fail the run.

Must never: leave a process behind (every cluster is stopped in a `finally`), or print a figure it did
not measure (missing figures are null and make the exit code 1).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator.core import defaults
from sim import bench_late_ack, runs
from sim.bench_measure import MemorySampler, percentile, stats
from sim.bench_phases import Episode, SteadyState, agent_crash, failover, settle, steady_state, switchover
from sim.check import Sampler
from sim.cluster import ClusterConfig, SimCluster
from sim.kubelet import PodTemplate
from sim.runs import RunEvidence, finish, rolling_restart
from sim.timeline import PrestopRecord, Timeline, read_prestop_logs
from sim.workload import Writer

PRODUCT_TIMINGS = {  # the product's defaults, as a cluster without any timing set runs
    "lease_duration_s": defaults.LEASE_DURATION_S, "renew_deadline_s": defaults.RENEW_DEADLINE_S,
    "retry_period_s": defaults.RETRY_PERIOD_S, "reconcile_interval_s": defaults.RECONCILE_INTERVAL_S,
    "failover_after_s": defaults.FAILOVER_AFTER_S,
}
REQUIRED = (
    "switchover_pause_p50_s", "switchover_pause_p99_s", "prestop_p50_s", "prestop_p99_s",
    "failover_p50_s", "failover_p99_s", "rolling_restart_3_pods_s", "agent_rss_mb_max",
    "api_requests_per_min_per_agent", "bolt_queries_per_reconcile", "lost_acked_writes",
    "switchovers", "failovers", "wall_time_s", "agent_crash_on_main_write_pause_p99_s",
    "restarted_main_window_p99_s", "diverged_pods_reseeded", "manual_repairs",
)


@dataclass
class Options:
    iterations: int = 20
    node_loss: int = 3
    agent_kills: int = 20  # kill -9 of the MAIN's agent (issue 16 item 1)
    window_s: float = 60.0
    seed: int = 7
    writer_hz: float = 50.0
    keep: bool = False
    late_ack_pauses: int = 5  # sim/bench_late_ack.py: N frozen commits per flavour (0: phase skipped)


@dataclass
class FaultResult:
    episodes: list[Episode]
    rolling_s: float | None
    evidence: RunEvidence | None
    steady_sim: SteadyState | None
    errors: list[str]


class Bench:
    def __init__(self, opts: Options, workdir: Path, say: Callable[[str], None]) -> None:
        self.o = opts
        self.workdir = workdir
        self.say = say
        self.memory = MemorySampler(self._agent_pgids, period_s=1.0)
        self._cluster: SimCluster | None = None
        self.prestops: dict[tuple[str, float | None], PrestopRecord] = {}

    def _agent_pgids(self) -> dict[str, int]:
        c = self._cluster
        if c is None:
            return {}
        with c._lock:
            rts = dict(c.runtimes)
        return {n: rt.agent.pid for n, rt in rts.items() if rt.agent is not None and rt.agent.poll() is None}

    def _cluster_cfg(self, **timings: float) -> ClusterConfig:
        # Parallel pod creation only shortens the start (not measured); the roll itself is one pod at a time
        return ClusterConfig(replicas=3, seed=self.o.seed, sync_mode="STRICT_SYNC", pod_management="Parallel",
                             template=PodTemplate(grace_s=60, prestop_budget_s=30), **timings)  # type: ignore[arg-type]

    # ---- phase 1 --------------------------------------------------------------------------------

    def fault_phase(self) -> FaultResult:
        cluster = SimCluster(self.workdir / "faults", self._cluster_cfg())
        self._cluster = cluster
        writer: Writer | None = None
        sampler: Sampler | None = None
        episodes: list[Episode] = []
        errors: list[str] = []
        rolling_s: float | None = None
        evidence: RunEvidence | None = None
        steady: SteadyState | None = None
        try:
            self.say("fault phase: 3 pods with the sim timings (lease 4 s, retry 0.5 s, failoverAfter 2 s)")
            cluster.start(wait_ready_s=90)
            cluster.wait_for(cluster.healthy, 60, "cluster healthy")
            timeline = Timeline(pods=cluster.pod_names())
            sampler = runs.sampler(cluster, timeline, 0.25).start()
            writer = w = runs.writer(cluster, rate_hz=self.o.writer_hz, reconnect_on_read_only=True).start()
            w.wait_acks(20, timeout_s=20)
            steady = steady_state(cluster, min(10.0, self.o.window_s), settle_s=1.0)
            self.say(f"  sim-timing API requests/min per agent: {steady.requests_per_min}")
            rolling_s = self._episodes(cluster, w, timeline, episodes, errors)
            timeline.fault_stop_t = time.monotonic()
            time.sleep(1.0)
            evidence = finish(cluster, writer, sampler, timeline, self.workdir / "reports", "bench-faults")
            writer = sampler = None
            for r in evidence.timeline.prestops:
                self.prestops[(r.path, r.start_wall)] = r
            self.say(f"  lost acked writes {evidence.lost_acked_writes}; invariants "
                     + ", ".join(f"{r.name} {'ok' if r.ok else 'FAIL'}" for r in evidence.report.results))
        finally:
            for s in (writer, sampler):
                if s is not None:
                    with contextlib.suppress(Exception):
                        s.stop()
            self.memory.sample_once()
            self._cluster = None
            cluster.stop()
        return FaultResult(episodes, rolling_s, evidence, steady, errors)

    def _episodes(self, cluster: SimCluster, w: Writer, timeline: Timeline, episodes: list[Episode],
                  errors: list[str]) -> float | None:
        """Switchovers, one rolling restart, failovers, node losses; returns the rolling restart's time."""
        o = self.o
        plan: list[tuple[str, Callable[[], Episode]]] = []
        plan += [("switchover", lambda: switchover(cluster, w))] * o.iterations
        plan += [("rolling", lambda: Episode("rolling", "", "", None, None, self._roll(cluster, w)))]
        plan += [("failover", lambda: failover(cluster, w, timeline))] * o.iterations
        plan += [("node_loss", lambda: failover(cluster, w, timeline, node_loss=True))] * o.node_loss
        plan += [("agent_crash", lambda: agent_crash(cluster, w))] * o.agent_kills
        rolling_s: float | None = None
        for i, (kind, run) in enumerate(plan, 1):
            try:
                ep = run()
            except Exception as exc:
                errors.append(f"{kind} #{i}: {type(exc).__name__}: {exc}")
                self.say(f"  {kind} #{i} FAILED: {exc}")
                try:
                    settle(cluster, 90, "a failed episode")
                except Exception as again:
                    errors.append(f"stopped after {kind} #{i}: {type(again).__name__}: {again}")
                    self.say(f"  the cluster did not recover ({again}): no further episodes")
                    break
                continue
            self._harvest_prestops(cluster)
            if kind == "rolling":
                rolling_s = ep.recovered_s
                continue
            episodes.append(ep)
            self.say(f"  [{i}/{len(plan)}] {kind:<10} {ep.old_main} -> {ep.new_main}: "
                     f"pause {_fmt(ep.pause_s)}, fault->first ack {_fmt(ep.to_first_ack_s)}, "
                     f"healthy again after {ep.recovered_s:.1f}s"
                     + (" (leader was on the lost pod)" if ep.leader_lost else "")
                     + (f"; DIVERGED, re-seeded: {', '.join(ep.reseeded)}" if ep.reseeded else "")
                     + (f"; DIVERGED, repaired BY HAND: {', '.join(ep.manual)}" if ep.manual else ""))
            if ep.settle_error:
                errors.append(f"{kind} #{i} (measured): {ep.settle_error}")
                try:
                    settle(cluster, 90, f"{kind} #{i}")
                except Exception as again:
                    errors.append(f"stopped after {kind} #{i}: {type(again).__name__}: {again}")
                    self.say(f"  the cluster did not recover ({again}): no further episodes")
                    break
        return rolling_s

    def _harvest_prestops(self, cluster: SimCluster) -> None:
        """Keep every preStop record now on the log volumes (the agent prunes old record files)."""
        for pod in cluster.pod_names():
            log_dir = cluster.workdir / "pvc" / pod / "log"
            for r in read_prestop_logs(log_dir, pod=pod, budget_s=cluster.cfg.template.prestop_budget_s):
                self.prestops[(r.path, r.start_wall)] = r

    def _roll(self, cluster: SimCluster, writer: Writer) -> float:
        start = time.monotonic()
        rolling_restart(cluster, writer, progress=lambda line: self.say("    " + line.strip()))
        return time.monotonic() - start

    # ---- phase 2 --------------------------------------------------------------------------------

    def steady_phase(self) -> tuple[SteadyState, RunEvidence]:
        cluster = SimCluster(self.workdir / "steady", self._cluster_cfg(**PRODUCT_TIMINGS))
        self._cluster = cluster
        writer: Writer | None = None
        sampler: Sampler | None = None
        try:
            self.say("steady phase: 3 pods with the product default timings (15/10/2 s, reconcile 2 s)")
            cluster.start(wait_ready_s=120)
            cluster.wait_for(cluster.healthy, 120, "cluster healthy")
            timeline = Timeline(pods=cluster.pod_names())
            sampler = runs.sampler(cluster, timeline, 0.5).start()
            writer = runs.writer(cluster, rate_hz=self.o.writer_hz / 2).start()
            writer.wait_acks(10, timeout_s=20)
            steady = steady_state(cluster, self.o.window_s, settle_s=4.0)
            self.say(f"  API requests/min per agent over {steady.window_s:.0f}s: {steady.requests_per_min}; "
                     f"leader {steady.leader} Bolt queries per cycle: {sorted(set(steady.bolt_queries))}")
            timeline.fault_stop_t = time.monotonic()
            time.sleep(1.0)
            evidence = finish(cluster, writer, sampler, timeline, self.workdir / "reports", "bench-steady")
            writer = sampler = None
            return steady, evidence
        finally:
            for s in (writer, sampler):
                if s is not None:
                    with contextlib.suppress(Exception):
                        s.stop()
            self.memory.sample_once()
            self._cluster = None
            cluster.stop()


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}s"


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def summarize(opts: Options, faults: FaultResult, steady: SteadyState, steady_ev: RunEvidence,
              memory: MemorySampler, prestop_records: list[PrestopRecord], wall_s: float) -> dict[str, Any]:
    """The figures, the targets and the details, as one JSON-able dict."""
    sw = [e for e in faults.episodes if e.kind == "switchover"]
    fo = [e for e in faults.episodes if e.kind == "failover"]
    nl = [e for e in faults.episodes if e.kind == "node_loss"]
    ac = [e.pause_s for e in faults.episodes if e.kind == "agent_crash" and e.pause_s is not None]
    windows = [e.old_main_window_s for e in fo if e.old_main_window_s is not None]
    thawed = [e.old_main_window_s for e in nl if e.old_main_window_s is not None]
    sw_pauses = [e.pause_s for e in sw if e.pause_s is not None]
    fo_times = [e.to_first_ack_s for e in fo if e.to_first_ack_s is not None]
    nl_times = [e.to_first_ack_s for e in nl if e.to_first_ack_s is not None]
    ev = faults.evidence
    prestops = [r.duration_s for r in prestop_records if r.duration_s is not None]
    rates = steady.requests_per_min
    queries = sorted(steady.bolt_queries)
    lost = (ev.lost_acked_writes if ev else 0) + steady_ev.lost_acked_writes
    fo_after = ClusterConfig().failover_after_s
    out: dict[str, Any] = {
        "switchover_pause_p50_s": _r(percentile(sw_pauses, 50)),
        "switchover_pause_p99_s": _r(percentile(sw_pauses, 99)),
        "prestop_p50_s": _r(percentile(prestops, 50)),
        "prestop_p99_s": _r(percentile(prestops, 99)),
        "failover_p50_s": _r(percentile(fo_times, 50)),
        "failover_p99_s": _r(percentile(fo_times, 99)),
        "rolling_restart_3_pods_s": _r(faults.rolling_s),
        "agent_rss_mb_max": round(memory.rss_max_mb, 1) if memory.samples else None,
        "api_requests_per_min_per_agent": max(rates.values()) if rates else None,
        "bolt_queries_per_reconcile": _r(percentile(queries, 50)),
        "lost_acked_writes": lost if ev is not None else None,
        "switchovers": len(sw),
        "failovers": len(fo) + len(nl),
        "wall_time_s": round(wall_s, 1),
        "agent_crash_on_main_write_pause_p99_s": _r(percentile(ac, 99)),
        "restarted_main_window_p99_s": _r(percentile(windows, 99)),
        # issue 17: diverged pods heal with no operator; from the divergence first seen to full redundancy
        "diverged_pods_reseeded": sum(len(e.reseeded) for e in faults.episodes),
        "manual_repairs": sum(len(e.manual) for e in faults.episodes),
        "redundancy_restored_p99_s": _r(percentile([s for e in faults.episodes for s in e.redundancy_s], 99)),
    }
    targets = {
        "switchover_pause_p99_s <= 1.0": _ok(out["switchover_pause_p99_s"], 1.0),
        f"failover_p99_s <= failoverAfter + 2 = {fo_after + 2:.1f}": _ok(out["failover_p99_s"], fo_after + 2),
        "lost_acked_writes == 0": _ok(out["lost_acked_writes"], 0),
        "agent_crash_on_main_write_pause_p99_s <= 1.0":
            _ok(out["agent_crash_on_main_write_pause_p99_s"], 1.0),
        "manual_repairs == 0": _ok(out["manual_repairs"], 0),
        "agent_rss_mb_max <= 128": _ok(out["agent_rss_mb_max"], 128.0),
        "api_requests_per_min_per_agent <= 60": _ok(out["api_requests_per_min_per_agent"], 60.0),
    }
    out["targets_missed"] = [name for name, ok in targets.items() if not ok]
    out["details"] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {_cpus()} cores, Python {platform.python_version()}",
        "options": vars(opts),
        "failover_after_s_fault_phase": fo_after,
        "switchover_pause_s": stats(sw_pauses),
        "switchover_delete_to_first_ack_s": stats([e.to_first_ack_s for e in sw if e.to_first_ack_s]),
        "switchover_delete_to_healthy_s": stats([e.recovered_s for e in sw]),
        "failover_kill_to_first_ack_s": stats(fo_times),
        "failover_write_pause_s": stats([e.pause_s for e in fo if e.pause_s is not None]),
        "node_loss_freeze_to_first_ack_s": stats(nl_times),
        "agent_crash_on_main_write_pause_s": stats(ac),
        "restarted_main_window_s": stats(windows),
        "thawed_main_window_s": stats(thawed),
        "restarted_main_windows_measured": f"{len(windows)} of {len(fo)}",
        "node_loss_freeze_to_first_ack_s_leader_on_lost_pod": stats(
            [e.to_first_ack_s for e in nl if e.to_first_ack_s is not None and e.leader_lost]),
        "failover_kill_to_first_ack_s_leader_on_lost_pod": stats(
            [e.to_first_ack_s for e in fo if e.to_first_ack_s is not None and e.leader_lost]),
        "prestop_all_hook_runs_s": stats(prestops),
        "agent_pss_mb_max": round(memory.pss_max_mb, 1),
        "agent_processes_max": memory.procs_max,
        "api_requests_per_min_by_agent": rates,
        "api_requests_by_agent_and_verb": steady.requests_by_verb,
        "api_window_s": round(steady.window_s, 1),
        "api_requests_per_min_by_agent_sim_timings": faults.steady_sim.requests_per_min
        if faults.steady_sim else {},
        "bolt_queries_per_reconcile_samples": {str(q): queries.count(q) for q in sorted(set(queries))},
        "invariants_fault_phase": {r.name: r.ok for r in ev.report.results} if ev else {},
        "invariants_steady_phase": {r.name: r.ok for r in steady_ev.report.results},
        "episode_errors": faults.errors,
        "diverged_pods_reseeded": [f"{e.kind} {e.old_main}->{e.new_main}: {p}" for e in faults.episodes
                                   for p in e.reseeded],
        "diverged_pods_repaired_by_hand": [f"{e.kind} {e.old_main}->{e.new_main}: {p}"
                                           for e in faults.episodes for p in e.manual],
        "redundancy_restored_s": stats([s for e in faults.episodes for s in e.redundancy_s]),
    }
    return out


def _ok(value: Any, bound: float) -> bool:
    return isinstance(value, int | float) and value <= bound


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def run(opts: Options, workdir: Path, say: Callable[[str], None]) -> tuple[int, dict[str, Any]]:
    t0 = time.monotonic()
    bench = Bench(opts, workdir, say)
    bench.memory.start()
    try:
        faults = bench.fault_phase()
        steady, steady_ev = bench.steady_phase()
        pauses = opts.late_ack_pauses
        late = bench_late_ack.run(pauses, opts.seed, workdir, say) if pauses else {}
    finally:
        bench.memory.stop()
    out = summarize(opts, faults, steady, steady_ev, bench.memory, list(bench.prestops.values()),
                    time.monotonic() - t0)
    out.update({k: v for k, v in late.items() if not k.endswith("_episodes")}, late_ack=late)
    complete = all(isinstance(out[k], int | float) for k in REQUIRED)
    # I4 is reported but does not fail the run when the bench had to repair a pod by hand (its volume
    # wiped: the diverged history deleted by the bench, not by the product); re-seeds keep it in archives
    repaired = bool(out["details"]["diverged_pods_repaired_by_hand"])
    invariants = {**out["details"]["invariants_fault_phase"]}
    if repaired:
        invariants.pop("I4", None)
    invariants_ok = all(invariants.values()) and all(out["details"]["invariants_steady_phase"].values())
    code = 0 if complete and out["lost_acked_writes"] == 0 and invariants_ok else 1
    return code, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 switchovers/failovers, 1 node loss, 15 s window")
    ap.add_argument("--iterations", type=int, default=None, help="switchovers, failovers (20 each)")
    ap.add_argument("--node-loss", type=int, default=None, help="node-loss failovers (default 3, quick 1)")
    ap.add_argument("--agent-kills", type=int, default=None,
                    help="kills of the MAIN's agent (default: as many as --iterations, 20)")
    ap.add_argument("--window", type=float, default=None, help="steady-state window in s (default 60)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs, PVCs, reports)")
    args = ap.parse_args(argv)
    opts = Options(seed=args.seed, keep=args.keep)
    if args.quick:
        opts.iterations, opts.node_loss, opts.window_s, opts.late_ack_pauses = 2, 1, 15.0, 1
    if args.iterations is not None:
        opts.iterations = max(1, args.iterations)
    opts.agent_kills = opts.iterations if args.agent_kills is None else max(0, args.agent_kills)
    if args.node_loss is not None:
        opts.node_loss = max(0, args.node_loss)
    if args.window is not None:
        opts.window_s = max(4.0, args.window)
    t0 = time.monotonic()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)  # the writer's dropped connections: expected

    def say(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {text}", file=sys.stderr, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="memgraph-ha-bench-"))
    try:
        code, out = run(opts, workdir, say)
    finally:
        if opts.keep:
            say(f"run directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(out, sort_keys=True), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
