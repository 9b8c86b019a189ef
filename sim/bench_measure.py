"""Measurement helpers of `make bench`: percentiles, write pauses around a MAIN change, agent memory
from /proc, API request rates from the Kubernetes emulator's counters, and the leader's Bolt queries.

Role: small, separately testable pieces `sim.bench` composes. Pure functions over the writer's records
(`outage_after`, `first_ack_after`, `pause_across`, `first_ack_on`), and samplers that only read
(`/proc`, the emulator's counters, the leader's status document; `steady_state` resets the counters).

Must never: change the cluster, wait without a bound, or invent a figure: a measurement that found no
data returns None and the caller reports it as missing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.timeline import WriteAttempt

if TYPE_CHECKING:
    from sim.cluster import SimCluster

AGENT_UA_PREFIX = "memgraph-ha-agent/"


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) with linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (k - lo))


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p99, max, mean of `values` (rounded to ms)."""
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {
        "count": len(values),
        "p50": r(percentile(values, 50)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values) if values else None),
        "mean": r(sum(values) / len(values) if values else None),
    }


# ---- the writer's records -----------------------------------------------------------------------


FLOWING_S = 1.0  # writes flow when one was acknowledged this recently (the bench writes 50 per second)


def _acks(attempts: Iterable[WriteAttempt], since: float) -> list[WriteAttempt]:
    return sorted((a for a in attempts if a.acked and a.t_end >= since), key=lambda a: a.t_end)


def first_ack_on(attempts: Iterable[WriteAttempt], backend: str, after: float) -> WriteAttempt | None:
    """The first write acknowledged by `backend` (the pod, "name/uid", its connection reached through
    the write Service) that ended after `after`."""
    for a in _acks(attempts, after):
        if a.backend == backend:
            return a
    return None


@dataclass(frozen=True)
class Pause:
    last_old: WriteAttempt
    first_new: WriteAttempt

    @property
    def seconds(self) -> float:
        return self.first_new.t_end - self.last_old.t_end


def outage_after(attempts: Iterable[WriteAttempt], fault: float, end: float,
                 flowing_s: float = FLOWING_S) -> float | None:
    """How long writes through the Service stopped because of a fault at `fault`: the longest span
    without an acknowledgement in [fault, end], the first counted from the fault itself (fault -> first
    ack after it) and the last up to `end`. None when writes were not flowing again at `end` (no ack in
    its last `flowing_s`, or no ack at all of a write SENT after the fault: a write in flight at the fault
    and acknowledged just after it does not show that writes resumed)."""
    acks = [a for a in _acks(attempts, fault) if a.t_end <= end]
    if not acks or end - acks[-1].t_end > flowing_s or not any(a.t_start >= fault for a in acks):
        return None
    worst, prev = 0.0, fault
    for a in acks:
        worst, prev = max(worst, a.t_end - prev), a.t_end
    return max(worst, end - prev)


def first_ack_after(attempts: Iterable[WriteAttempt], fault: float) -> float | None:
    """Seconds from `fault` to the first acknowledgement of a write sent at or after it (None: none)."""
    ends = [a.t_end for a in attempts if a.acked and a.t_start >= fault]
    return min(ends) - fault if ends else None


def pause_across(attempts: Iterable[WriteAttempt], old: str, new: str, since: float) -> Pause | None:
    """Write pause of one change of MAIN: the last ack on `old` before the first ack on `new` (both
    backends "name/uid", acks ending at or after `since`) to that first ack on `new`. None when either is
    missing.
    """
    acks = _acks(attempts, since)
    last_old: WriteAttempt | None = None
    for a in acks:
        if a.backend == new and last_old is not None:
            return Pause(last_old, a)
        if a.backend == old:
            last_old = a
    return None


# ---- agent memory from /proc ----------------------------------------------------------------------


def _proc_status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def group_pids(pgid: int) -> list[int]:
    """Every live process whose process group is `pgid` (an agent container: gunicorn master + worker)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state ppid pgrp ...
                pids.append(int(entry))
    return pids


def group_memory_mb(pgid: int) -> tuple[float, float, int]:
    """(RSS summed over the group's processes, PSS summed, process count), in MiB."""
    pids = group_pids(pgid)
    rss = sum(_proc_status_kb(p, "VmRSS") for p in pids)
    pss = sum(_pss_kb(p) for p in pids)
    return rss / 1024.0, pss / 1024.0, len(pids)


class MemorySampler:
    """Samples the memory of every agent container every `period_s` on a thread; keeps the maxima."""

    def __init__(self, agent_pgids: Callable[[], dict[str, int]], period_s: float = 1.0) -> None:
        self._pgids = agent_pgids
        self._period = period_s
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self.rss_max_mb = 0.0
        self.pss_max_mb = 0.0
        self.procs_max = 0
        self.samples = 0

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(timeout=5.0)

    def sample_once(self) -> None:
        with contextlib.suppress(Exception):
            for pgid in self._pgids().values():
                rss, pss, n = group_memory_mb(pgid)
                if n:
                    self.rss_max_mb = max(self.rss_max_mb, rss)
                    self.pss_max_mb = max(self.pss_max_mb, pss)
                    self.procs_max = max(self.procs_max, n)
                    self.samples += 1

    def _run(self) -> None:
        while not self._halt.is_set():
            self.sample_once()
            self._halt.wait(self._period)


# ---- API requests and Bolt queries -------------------------------------------------------------


def agent_request_rates(counters: dict[str, dict[str, int]], window_s: float) -> dict[str, float]:
    """{pod: requests per minute} for every agent User-Agent (`memgraph-ha-agent/<pod>`) in `counters`."""
    rates = {}
    for ua, verbs in counters.items():
        if ua.startswith(AGENT_UA_PREFIX):
            rates[ua[len(AGENT_UA_PREFIX):]] = round(sum(verbs.values()) * 60.0 / window_s, 1)
    return rates


def agent_requests_by_verb(counters: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    n = len(AGENT_UA_PREFIX)
    return {ua[n:]: dict(v) for ua, v in counters.items() if ua.startswith(AGENT_UA_PREFIX)}


def leader_observe(agent_url: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The leader's `leader_observe` section of its status document (None when absent or unreachable)."""
    with contextlib.suppress(Exception):
        with urllib.request.urlopen(agent_url + "/api/v1/status", timeout=timeout_s) as resp:
            doc = json.loads(resp.read())
        section = doc.get("leader_observe")
        if isinstance(section, dict):
            return section
    return None


def sample_leader_queries(agent_url: str, seconds: float, period_s: float) -> list[int]:
    """`bolt_queries_last_cycle` read every `period_s` for `seconds` (one value per new cycle seen)."""
    values: list[int] = []
    last_cycle = -1
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        obs = leader_observe(agent_url)
        if obs is not None and obs.get("reconcile_cycles") != last_cycle:
            last_cycle = int(obs.get("reconcile_cycles", -1))
            values.append(int(obs["bolt_queries_last_cycle"]))
        time.sleep(period_s)
    return values


@dataclass
class SteadyState:
    window_s: float
    requests_per_min: dict[str, float] = field(default_factory=dict)
    requests_by_verb: dict[str, dict[str, int]] = field(default_factory=dict)
    bolt_queries: list[int] = field(default_factory=list)
    leader: str = ""


def steady_state(cluster: SimCluster, window_s: float, settle_s: float) -> SteadyState:
    """Reset the emulator's counters after `settle_s`, count every agent's requests for `window_s`,
    and meanwhile read the leader's Bolt queries per cycle from its status document."""
    time.sleep(settle_s)
    leader = str(cluster.status().get("cluster", {}).get("leader") or "")
    url = cluster.runtime(leader).agent_url if leader else ""
    cluster.kube.reset_counters()
    t0 = time.monotonic()
    period = max(0.1, min(cluster.timings.reconcile_interval_s / 2, 1.0))
    queries = sample_leader_queries(url, window_s, period) if url else []
    left = window_s - (time.monotonic() - t0)
    if left > 0:
        time.sleep(left)
    counters = cluster.kube.counters()
    window = time.monotonic() - t0
    return SteadyState(window, agent_request_rates(counters, window), agent_requests_by_verb(counters),
                       queries, leader)
