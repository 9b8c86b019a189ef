"""What `make bench` measures: its phases, the figures they give, and the targets the figures meet.

Role: the bench's plan as data, so a later issue adds a phase or a figure here instead of rewriting the
bench (`sim.bench` runs `PHASES` in order on one cluster and computes `FIGURES` from their samples):
- a `Phase` is a named episode (`sim.bench_phases.EPISODES`) and how many samples of it a full run and a
  `--quick` run take; every sample's raw record goes to `details.samples[<phase>]`;
- a `Figure` is a name of the bench's JSON, the phases whose samples it is computed from, the statistic
  (p50, p99, max) of the samples' `outage_s`, and optionally its target (a bound on the cluster's time
  scale, from its timings).
Percentiles are nearest-rank: the p-th percentile of n samples is the ceil(p/100 x n)-th smallest, so the
p99 of fewer than 100 samples is their maximum.

Must never: name a figure twice, or judge a figure that was not measured as met.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim.bench_phases import EPISODES, Episode, Run
from sim.clusterconfig import ClusterTimings


@dataclass(frozen=True)
class Phase:
    name: str  # a key of sim.bench_phases.EPISODES
    samples: int  # full run
    quick: int  # --quick

    @property
    def run(self) -> Callable[[Run], Episode]:
        return EPISODES[self.name]


# Order matters: CrashLoopBackOff remembers a container's exits for 10 minutes (per pod incarnation), so
# the agent-crash and crash-restart phases run on the fresh incarnations the switchovers leave.
# Sized for <= 25 min at scale 1.0 on 2 cores (a run of 10/4/6/8/3/1/3/1 took 1540 s): a held kill's
# recovery waits for the killed container's growing back-off (10 s, 20 s, 40 s, ...), a node loss or a
# hang holds its fault for the node grace or failoverAfter and the lease.
PHASES: list[Phase] = [
    Phase("switchover", 8, 1),
    Phase("switchover_hook_only", 3, 0),  # needs per-pod source addresses (the namespaced bed)
    Phase("agent_crash_on_main", 4, 1),
    Phase("failover_crash_restart", 4, 1),
    Phase("failover_kill", 6, 1),
    Phase("failover_node_loss_freeze", 3, 1),
    Phase("failover_node_loss_partition", 1, 0),
    Phase("main_hang", 2, 1),
    Phase("partition_main_pod", 1, 1),
]

Target = Callable[[ClusterTimings], float]


@dataclass(frozen=True)
class Figure:
    name: str
    phases: tuple[str, ...]
    stat: str  # p50 | p99 | max
    target: Target | None = None
    target_text: str = ""
    needs_partitions: tuple[str, ...] = ()  # phases left out on a bed that cannot partition (loopback)


FIGURES: list[Figure] = [
    Figure("switchover_pause_p50_s", ("switchover",), "p50"),
    Figure("switchover_pause_p99_s", ("switchover",), "p99", lambda t: t.scale * 1.0, "<= 1 s"),
    Figure("switchover_hook_only_pause_p99_s", ("switchover_hook_only",), "p99", lambda t: t.scale * 1.0,
           "<= 1 s", needs_partitions=("switchover_hook_only",)),
    Figure("failover_kill_p50_s", ("failover_kill",), "p50"),
    Figure("failover_kill_p99_s", ("failover_kill",), "p99", lambda t: t.failover_after_s + t.scale * 4.0,
           "<= failoverAfter + 4 s"),
    Figure("failover_p50_s", ("failover_kill",), "p50"),  # the earlier name of failover_kill_p50_s
    Figure("failover_p99_s", ("failover_kill",), "p99"),
    Figure("failover_crash_restart_p99_s", ("failover_crash_restart",), "p99"),
    Figure("failover_node_loss_p99_s", ("failover_node_loss_freeze", "failover_node_loss_partition"), "p99",
           lambda t: t.scale * 60.0, "<= 60 s", needs_partitions=("failover_node_loss_partition",)),
    Figure("main_hang_write_outage_p99_s", ("main_hang",), "p99"),
    Figure("partition_main_write_outage_s", ("partition_main_pod", "failover_node_loss_partition"), "max"),
    Figure("agent_crash_on_main_write_pause_p99_s", ("agent_crash_on_main",), "p99",
           lambda t: t.scale * 1.0, "<= 1 s"),
]


def nearest_rank(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile by nearest rank (None when empty); p99 of < 100 values is the maximum."""
    if not values:
        return None
    xs = sorted(values)
    return float(xs[max(1, math.ceil(p / 100.0 * len(xs))) - 1])


def statistic(values: Sequence[float], stat: str) -> float | None:
    if stat == "max":
        return max(values) if values else None
    return nearest_rank(values, float(stat.lstrip("p")))


def unmeasured(samples: dict[str, list[Episode]], figures: dict[str, float | None],
               partitions: bool = True) -> dict[str, str]:
    """Why each figure that is None was not measured: no sample, or samples whose writes through the
    Service had not resumed by the end of their episode (the outage is at least that window)."""
    out: dict[str, str] = {}
    for f in FIGURES:
        if figures.get(f.name) is not None:
            continue
        phases = [ph for ph in f.phases if partitions or ph not in f.needs_partitions]
        eps = [e for ph in phases for e in samples.get(ph, [])]
        stuck = [e for e in eps if e.outage_s is None]
        if not phases:
            out[f.name] = "needs the namespaced bed (per-pod addresses, real partitions)"
        elif not eps:
            out[f.name] = "no sample"
        else:
            windows = ", ".join(f"{e.notes.get('window_s', '?')} s" for e in stuck)
            out[f.name] = (f"{len(stuck)} of {len(eps)} samples: no write acknowledged through the Service "
                           f"from the fault to the end of the episode (windows {windows})")
    return out


def compute(samples: dict[str, list[Episode]], timings: ClusterTimings, partitions: bool = True,
            ) -> tuple[dict[str, float | None], dict[str, bool]]:
    """Every figure of FIGURES from the phases' samples, and {target text: met} for those with a target.
    A sample whose writes never came back within its window has no outage: the figure is then None.
    Without real partitions (the loopback bed: established connections survive a cut) a figure leaves out
    the partition phases it only borrows (`needs_partitions`); their samples stay in the details."""
    figures: dict[str, float | None] = {}
    judged: dict[str, bool] = {}
    for f in FIGURES:
        phases = [ph for ph in f.phases if partitions or ph not in f.needs_partitions]
        if not phases:  # every phase it rests on needs the namespaced bed: neither measured nor judged
            figures[f.name] = None
            continue
        eps = [e for ph in phases for e in samples.get(ph, [])]
        values = [e.outage_s for e in eps if e.outage_s is not None]
        complete = bool(eps) and len(values) == len(eps)
        value = statistic(values, f.stat) if complete else None
        figures[f.name] = None if value is None else round(value, 3)
        if f.target is not None:
            bound = f.target(timings)
            judged[f"{f.name} {f.target_text} (= {bound:.3g} s here)"] = value is not None and value <= bound
    return figures, judged
