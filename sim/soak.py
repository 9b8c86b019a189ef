"""`make soak DURATION=N`: randomized fault schedules on the emulated cluster, judged by I1-I7.

Role: for the given duration, run one schedule after another. Each schedule has its own seed (drawn from
the master seed, printed, replayable with `--seed S --runs 1`): a fresh 3-pod cluster, a writer through
the client Service, the invariant sampler, then `--faults` faults drawn from the menu below with random
targets and durations (one at a time, each followed by a bounded wait until the cluster has been converged
for a stable window, sim/converge.py), then the final check. The sampler also reads divergence from the
status document, and every change of MAIN it saw is marked for the checker: a switchover inside a
`delete-main` fault, an unplanned failover otherwise. Prints one line per schedule (PASS/FAIL, seed,
faults, acked writes, failed invariants) and a summary; exit 1 when any schedule failed. Reports and
timelines of failed runs are kept under
`--keep-dir` (default: a temp dir, printed).

The menu (sim/faults.py): kill -9 of a Memgraph or an agent (MAIN's or a replica's), pod delete with and
without preStop, API outage (5-60 s: the 60 s steady-state outage of the issue lives here), API latency,
a pod cut off, a slow replica, a node loss, a switchover by deleting the MAIN's pod.

Must never: leave a process behind (every cluster is stopped in `finally`), run past its duration by more
than one schedule, or report a schedule it did not check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sim import faults, runs
from sim.check import Sampler
from sim.cluster import ClusterConfig, SimCluster
from sim.converge import STABLE_S, converged, wait_stable
from sim.faults import FaultLog
from sim.runs import StatusDivergence, finish
from sim.timeline import Timeline
from sim.timescale import TimeScale
from sim.workload import Writer

FAULTS = (
    "kill-main-memgraph", "kill-replica-memgraph", "kill-agent", "delete-main", "delete-replica-no-hook",
    "api-outage", "api-latency", "cut-off-replica", "slow-replica", "node-loss-replica",
)


@dataclass
class Outcome:
    seed: int
    ok: bool
    faults: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    acked: int = 0
    lost: int = 0
    error: str = ""
    seconds: float = 0.0


def _roles_main(cluster: SimCluster) -> str | None:
    mains = [p for p, v in cluster.roles().items() if v.role == "main" and v.label == "main" and v.ready]
    return mains[0] if len(mains) == 1 else None


def wait_converged(cluster: SimCluster, timeout_s: float, what: str, stable_s: float = STABLE_S,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> float:
    """Until 1 MAIN + ready replicas held for `stable_s` without a break (a fault's effect, such as a killed
    agent's pod turning NotReady, is often seen only after the fault returned: sim/converge.py)."""
    return wait_stable(lambda: converged(cluster.roles(), cluster.pod_names()), timeout_s, what,
                       stable_s=stable_s, clock=clock, sleep=sleep)


def inject(name: str, rng: random.Random, cluster: SimCluster, timeline: Timeline, flog: FaultLog) -> None:
    """Run one fault of the menu to its end (bounded)."""
    main = _roles_main(cluster) or cluster.pod_names()[0]
    replicas = [p for p in cluster.pod_names() if p != main]
    replica = rng.choice(replicas)
    hold_s = cluster.scale.s(rng.uniform(4.0, 24.0))  # fault durations in real seconds, on the time scale
    if name == "kill-main-memgraph":
        faults.kill_memgraph(cluster, main, hold=True, flog=flog)
        time.sleep(hold_s + cluster.timings.failover_after_s)
        faults.release(cluster, main, flog=flog)
    elif name == "kill-replica-memgraph":
        faults.kill_memgraph(cluster, replica, flog=flog)
    elif name == "kill-agent":
        faults.kill_agent(cluster, rng.choice(cluster.pod_names()), flog=flog)
    elif name == "delete-main":
        faults.delete_pod(cluster, main, flog=flog)
    elif name == "delete-replica-no-hook":
        faults.delete_pod(cluster, replica, run_hook=False, flog=flog)
    elif name == "api-outage":
        with faults.api_outage(cluster, timeline, mode=rng.choice(["refuse", "503", "hang"]), flog=flog):
            time.sleep(cluster.scale.s(rng.uniform(20.0, 240.0)))
    elif name == "api-latency":
        with faults.api_latency(cluster, rng.choice([100, 300, 800]), flog=flog):
            time.sleep(hold_s)
    elif name == "cut-off-replica":
        with faults.cut_off(cluster, replica, flog=flog):
            time.sleep(hold_s)
    elif name == "slow-replica":
        with faults.slow_replication(cluster, main, rng.choice([20, 100, 300]), flog=flog):
            time.sleep(hold_s)
    elif name == "node-loss-replica":
        with faults.node_loss(cluster, replica, rng.choice(["freeze", "partition"]), flog=flog):
            time.sleep(hold_s)
    else:
        raise ValueError(f"unknown fault {name!r}")


def run_schedule(seed: int, n_faults: int, workdir: Path, say: Callable[[str], None],
                 scale: TimeScale | None = None) -> Outcome:
    """One randomized schedule on a fresh cluster; the evidence goes to `workdir/reports`."""
    rng = random.Random(seed)
    started = time.monotonic()
    out = Outcome(seed, False)
    cfg = ClusterConfig(seed=seed, pod_management="Parallel", time_scale=scale or TimeScale(0.25))
    cluster = SimCluster(workdir, cfg)
    writer: Writer | None = None
    sampler: Sampler | None = None
    flog = FaultLog()
    try:
        cluster.start(wait_ready_s=90)
        cluster.wait_for(cluster.healthy, 60, "cluster healthy at start")
        timeline = Timeline(pods=cluster.pod_names())
        sampler = runs.sampler(cluster, timeline, 0.2, StatusDivergence(cluster)).start()
        writer = runs.writer(cluster, rate_hz=20.0, threads=2, reconnect_on_read_only=True).start()
        writer.wait_acks(20, timeout_s=20)
        planned: list[tuple[float, float]] = []  # windows in which a change of MAIN is a switchover
        for _ in range(n_faults):
            name = rng.choice(FAULTS)
            out.faults.append(name)
            t_fault = time.monotonic()
            inject(name, rng, cluster, timeline, flog)
            with contextlib.suppress(TimeoutError):
                wait_converged(cluster, 90, "converged between faults")
            if name == "delete-main":
                planned.append((t_fault, time.monotonic()))
        timeline.fault_stop_t = time.monotonic()
        wait_converged(cluster, 90, "converged after the last fault")
        # every other change of MAIN the samples show is an unplanned failover (finish marks it), so a
        # crashed MAIN's unacknowledged in-flight commit is judged as such by I4 (seed 278480)
        ev = finish(cluster, writer, sampler, timeline, workdir / "reports", f"soak-{seed}", planned=planned)
        writer = sampler = None
        out.ok = ev.report.ok and ev.lost_acked_writes == 0
        out.failed = [r.name for r in ev.report.results if not r.ok]
        out.acked = sum(1 for a in ev.timeline.attempts if a.acked)
        out.lost = ev.lost_acked_writes
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        for stoppable in (writer, sampler):
            if stoppable is not None:
                with contextlib.suppress(Exception):
                    stoppable.stop()
        cluster.stop()
        (workdir / "faults.log").write_text("\n".join(flog.render(started)) + "\n")
        out.seconds = time.monotonic() - started
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.soak", description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=300.0, help="seconds to keep starting schedules")
    ap.add_argument("--seed", type=int, default=None, help="master seed (or the seed of one schedule)")
    ap.add_argument("--runs", type=int, default=0, help="stop after this many schedules (0: duration only)")
    ap.add_argument("--faults", type=int, default=4, help="faults per schedule")
    ap.add_argument("--keep-dir", type=Path, default=None, help="where to keep failed runs")
    ap.add_argument("--time-scale", type=float, default=None,
                    help="the time scale (default: MGHA_TIME_SCALE, else 0.25; 1.0 = the chart's timings)")
    args = ap.parse_args(argv)
    scale = (TimeScale(args.time_scale) if args.time_scale is not None
             else TimeScale.from_env() if os.environ.get("MGHA_TIME_SCALE") else TimeScale(0.25))
    master = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    keep = args.keep_dir or Path(tempfile.mkdtemp(prefix="memgraph-ha-soak-"))
    keep.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f}s] {text}", flush=True)

    say(f"soak: duration {args.duration:g}s, time scale {scale.factor:g}, master seed {master}, "
        f"{args.faults} faults per schedule, "
        f"failed runs kept in {keep}")
    # the first schedule uses the master seed itself, so `--seed S --runs 1` replays a printed seed
    rng = random.Random(master)
    outcomes: list[Outcome] = []
    seed = master
    while True:
        workdir = keep / f"seed-{seed}"
        res = run_schedule(seed, args.faults, workdir, say, scale)
        outcomes.append(res)
        verdict = "PASS" if res.ok else "FAIL"
        detail = res.error or (f"failed {','.join(res.failed)}" if res.failed else "all invariants hold")
        say(f"{verdict} seed={seed} {res.seconds:.0f}s faults={','.join(res.faults)} acked={res.acked} "
            f"lost={res.lost}: {detail}")
        if res.ok:
            shutil.rmtree(workdir, ignore_errors=True)
        if args.runs and len(outcomes) >= args.runs:
            break
        if time.monotonic() - t0 >= args.duration:
            break
        seed = rng.randrange(1, 10**6)
    failed = [o for o in outcomes if not o.ok]
    if not failed and args.keep_dir is None:
        shutil.rmtree(keep, ignore_errors=True)  # our own temporary directory, with nothing to keep
    say(f"soak done: {len(outcomes) - len(failed)} passed, {len(failed)} failed")
    for o in failed:
        say(f"  replay: python -m sim.soak --seed {o.seed} --runs 1 --faults {args.faults}")
    print("RESULT " + json.dumps({"passed": len(outcomes) - len(failed), "failed": len(failed),
                                  "failed_seeds": [o.seed for o in failed], "master_seed": master}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
