"""Leader-election safety run: N electors on one Kubernetes API emulator, under chaos, for a bounded time.

Role: start the in-process emulator (`sim.kube.server.KubeEmulator`), run N
`coordinator.edge.election.LeaderElector` threads with the real kubernetes client, and inject one fault
episode at a time -- kill the leader (stop without release), release it (clean stop), restart dead electors,
API outages (refuse / 503 / hang) and injected 409/403 answers to Lease updates. A single observer thread
samples every elector's `is_leader()` every `sample_s` on one monotonic clock; the callbacks are timestamped
on the same clock. The report (JSON on stdout) checks: no two leadership intervals overlap; a leader exists
again within leaseDuration + retryPeriod (+ tolerance) of a crash and within 2 * retryPeriod of a release; a
leader cut off from the API steps down at its renew deadline; steady-state requests per minute per elector.

Usage: python -m sim.bench_election [--seconds 60] [--electors 5] [--seed N]
Exit code 0 when every check holds, 1 otherwise.

Must never: bind outside 127.0.0.0/8, run longer than `seconds` plus bounded recovery waits, or leave a
thread or server running when `run()` returns (also on failure).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coordinator.core.lease_rules import ElectionConfig
from coordinator.edge.election import LeaderElector
from coordinator.edge.lease_store import KubeLeaseStore

log = logging.getLogger("sim.bench_election")

NAMESPACE = "default"
LEASE = "memgraph-ha"


@dataclass
class Instance:
    """One incarnation of an elector: pod identity + restart count."""

    identity: str
    incarnation: int
    elector: LeaderElector
    store: KubeLeaseStore
    stopped: bool = False
    sampled_since: float | None = None  # start of the current is_leader()==True run
    intervals: list[tuple[float, float]] = field(default_factory=list)
    cb_started: float | None = None
    cb_intervals: list[tuple[float, float]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.identity}#{self.incarnation}"


class Observer(threading.Thread):
    """Samples every live instance's is_leader() on one clock and closes intervals on false samples."""

    def __init__(self, instances: Callable[[], list[Instance]], sample_s: float) -> None:
        super().__init__(name="bench-observer", daemon=True)
        self._instances = instances
        self._sample_s = sample_s
        self._halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self._sample_s)
        self.sample()

    def sample(self) -> None:
        with self.lock:
            for inst in self._instances():
                now = time.monotonic()
                leading = inst.elector.is_leader()
                if leading and inst.sampled_since is None:
                    inst.sampled_since = now
                elif not leading and inst.sampled_since is not None:
                    inst.intervals.append((inst.sampled_since, now))
                    inst.sampled_since = None

    def leaders(self) -> list[Instance]:
        with self.lock:
            return [i for i in self._instances() if i.sampled_since is not None]

    def halt(self) -> None:
        self._halt.set()
        self.join(5.0)


@dataclass
class Bench:
    emulator: Any
    config: ElectionConfig
    n: int
    rng: random.Random
    request_timeout: float
    instances: list[Instance] = field(default_factory=list)
    slots: dict[str, Instance | None] = field(default_factory=dict)
    episodes: dict[str, int] = field(default_factory=dict)
    crash_gaps: list[float] = field(default_factory=list)
    release_gaps: list[float] = field(default_factory=list)
    stepdowns: list[float] = field(default_factory=list)
    short_outages: list[bool] = field(default_factory=list)  # did the leader keep leading through it
    violations: list[str] = field(default_factory=list)

    def spawn(self, identity: str) -> Instance:
        prev = [i for i in self.instances if i.identity == identity]
        client = self.emulator.api_client(user_agent=f"bench/{identity}")
        store = KubeLeaseStore(client, NAMESPACE, LEASE, self.request_timeout)
        holder: list[Instance] = []
        elector = LeaderElector(
            store, identity, self.config,
            on_started_leading=lambda: self._cb(holder[0], True),
            on_stopped_leading=lambda: self._cb(holder[0], False))
        inst = Instance(identity, len(prev), elector, store)
        holder.append(inst)
        self.instances.append(inst)
        self.slots[identity] = inst
        elector.start()
        return inst

    def _cb(self, inst: Instance, started: bool) -> None:
        now = time.monotonic()
        if started:
            inst.cb_started = now
        elif inst.cb_started is not None:
            inst.cb_intervals.append((inst.cb_started, now))
            inst.cb_started = None

    def stop(self, inst: Instance, release: bool) -> None:
        inst.stopped = True
        inst.elector.stop(release=release)
        inst.store.close()
        self.slots[inst.identity] = None

    def live(self) -> list[Instance]:
        return [i for i in self.slots.values() if i is not None]

    def wait_leader(self, observer: Observer, timeout_s: float,
                    exclude: Instance | None = None) -> float | None:
        """Monotonic time of the first sample showing a leader (other than `exclude`), or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [i for i in observer.leaders() if i is not exclude]
            if found:
                return min(i.sampled_since or 0.0 for i in found)
            time.sleep(0.005)
        return None


def _episode(bench: Bench, observer: Observer, tolerance: float) -> None:
    cfg = bench.config
    dead = [k for k, v in bench.slots.items() if v is None]
    leaders = observer.leaders()
    choices = ["kill_leader", "release_leader", "outage", "inject_409", "inject_403", "kill_follower"]
    if dead:
        choices += ["restart"] * 2
    if len(bench.live()) <= 2:
        choices = [c for c in choices if not c.startswith("kill")] + ["restart"]
    kind = bench.rng.choice(choices)
    if kind in ("kill_leader", "release_leader", "outage") and not leaders:
        kind = "restart" if dead else "inject_409"
    bench.episodes[kind] = bench.episodes.get(kind, 0) + 1
    crash_bound = cfg.written_duration_s + cfg.retry_period_s + tolerance
    if kind in ("kill_leader", "release_leader"):
        old = leaders[0]
        t0 = time.monotonic()
        bench.stop(old, release=kind == "release_leader")
        bound = 2 * cfg.retry_period_s if kind == "release_leader" else crash_bound
        t1 = bench.wait_leader(observer, bound + 5.0, exclude=old)
        gap = (t1 - t0) if t1 is not None else float("inf")
        (bench.release_gaps if kind == "release_leader" else bench.crash_gaps).append(gap)
        if gap > bound:
            bench.violations.append(f"{kind}: no leader for {gap:.3f}s after {old.key} (bound {bound:.3f}s)")
    elif kind == "kill_follower":
        followers = [i for i in bench.live() if i not in leaders]
        if followers:
            bench.stop(bench.rng.choice(followers), release=bench.rng.random() < 0.5)
    elif kind == "restart":
        bench.spawn(bench.rng.choice(dead))
    elif kind == "outage":
        _outage(bench, observer, leaders[0], tolerance)
    else:
        code = 409 if kind == "inject_409" else 403
        count = bench.rng.randint(1, 3)
        bench.emulator.inject(code, verb="update", path_regex="/leases/", count=count)
    time.sleep(bench.rng.uniform(0.2, 1.0))


def _outage(bench: Bench, observer: Observer, leader: Instance, tolerance: float) -> None:
    cfg = bench.config
    mode = bench.rng.choice(["refuse", "503", "hang"])
    long = bench.rng.random() < 0.6
    seconds = cfg.renew_deadline_s + bench.rng.uniform(0.3, 1.5) if long else cfg.renew_deadline_s * 0.5
    t0 = time.monotonic()
    bench.emulator.outage(mode, seconds)
    try:
        limit = t0 + cfg.renew_deadline_s + tolerance
        while time.monotonic() < t0 + seconds and leader.elector.is_leader():
            time.sleep(0.002)
        if long:
            down = time.monotonic() - t0
            bench.stepdowns.append(down)
            if time.monotonic() > limit:
                bench.violations.append(f"outage {mode}: {leader.key} led {down:.3f}s into an outage "
                                        f"(deadline {cfg.renew_deadline_s}s)")
        else:
            bench.short_outages.append(leader.elector.is_leader())
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))
    finally:
        bench.emulator.clear_outage()
    bench.wait_leader(observer, cfg.written_duration_s + 2 * cfg.retry_period_s + 2.0)


def _overlaps(intervals: list[tuple[str, float, float]]) -> list[str]:
    out = []
    ordered = sorted(intervals, key=lambda x: x[1])
    for idx, (k1, s1, e1) in enumerate(ordered):
        for k2, s2, e2 in ordered[idx + 1:]:
            if s2 >= e1:
                break
            if k1 != k2:
                out.append(f"{k1} [{s1:.3f},{e1:.3f}] overlaps {k2} [{s2:.3f},{e2:.3f}]")
    return out


def _stats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "max": round(max(values), 3), "mean": round(statistics.fmean(values), 3),
            "min": round(min(values), 3)}


def _steady(bench: Bench, observer: Observer, seconds: float) -> dict[str, int]:
    """Requests each elector sent in a quiet window of `seconds` after a leader was elected."""
    bench.wait_leader(observer, bench.config.written_duration_s + 3 * bench.config.retry_period_s + 2.0)
    time.sleep(2 * bench.config.retry_period_s)  # let the election round settle
    for inst in bench.live():
        inst.store.calls.clear()
    time.sleep(seconds)
    return {i.identity: sum(i.store.calls.values()) for i in bench.live()}


def run(seconds: float = 60.0, electors: int = 5, seed: int | None = None,
        config: ElectionConfig | None = None, request_timeout: float = 0.2, sample_s: float = 0.005,
        tolerance_s: float = 0.3, steady_s: float = 10.0) -> dict[str, Any]:
    """Run the safety bench; returns the report (its `ok` says whether every check held)."""
    from sim.kube.server import KubeEmulator

    config = config or ElectionConfig(2.0, 1.0, 0.25)
    seed = seed if seed is not None else random.randrange(1 << 30)
    emulator = KubeEmulator(host="127.0.0.1", port=0, token=None)
    emulator.start()
    bench = Bench(emulator, config, electors, random.Random(seed), request_timeout)
    observer = Observer(lambda: list(bench.instances), sample_s)
    try:
        observer.start()
        for k in range(electors):
            bench.spawn(f"memgraph-{k}")
        steady = _steady(bench, observer, steady_s)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            _episode(bench, observer, tolerance_s)
    finally:
        for inst in bench.live():
            bench.stop(inst, release=False)
        observer.halt()
        lease = _final_lease(emulator)
        emulator.stop()
    return _report(bench, steady, lease, seed, seconds, tolerance_s, steady_s)


def _final_lease(emulator: Any) -> dict[str, Any]:
    try:
        store = KubeLeaseStore(emulator.api_client(), NAMESPACE, LEASE, 1.0)
        rec = store.get()
        store.close()
        return {"holder": rec.holder, "transitions": rec.transitions}
    except Exception as e:  # the report still matters when this last read fails
        log.warning("final lease read failed: %s", e)
        return {}


def _report(bench: Bench, steady: dict[str, int], lease: dict[str, Any], seed: int, seconds: float,
            tolerance: float, steady_s: float) -> dict[str, Any]:
    cfg = bench.config
    sampled = [(i.key, s, e) for i in bench.instances for s, e in i.intervals]
    callbacks = [(i.key, s, e) for i in bench.instances for s, e in i.cb_intervals]
    overlaps, cb_overlaps = _overlaps(sampled), _overlaps(callbacks)
    allowed = math.floor(steady_s / cfg.retry_period_s) + 1  # window edges may catch one more round
    heavy = {k: v for k, v in steady.items() if v > allowed}
    violations = bench.violations + overlaps + cb_overlaps + [
        f"steady state {k}: {v} requests in {steady_s}s > {allowed}" for k, v in heavy.items()]
    return {
        "ok": not violations,
        "seed": seed, "seconds": seconds, "electors": bench.n,
        "timings_s": {"lease_duration": cfg.lease_duration_s,
                      "written_lease_duration": cfg.written_duration_s,
                      "renew_deadline": cfg.renew_deadline_s, "retry_period": cfg.retry_period_s,
                      "request_timeout": bench.request_timeout, "tolerance": tolerance},
        "episodes": dict(sorted(bench.episodes.items())),
        "leadership_intervals": len(sampled), "callback_intervals": len(callbacks),
        "overlaps": len(overlaps), "callback_overlaps": len(cb_overlaps),
        "gap_after_crash_s": _stats(bench.crash_gaps),
        "gap_after_crash_bound_s": round(cfg.written_duration_s + cfg.retry_period_s + tolerance, 3),
        "gap_after_release_s": _stats(bench.release_gaps),
        "gap_after_release_bound_s": round(2 * cfg.retry_period_s, 3),
        "stepdown_after_outage_start_s": _stats(bench.stepdowns),
        "stepdown_bound_s": round(cfg.renew_deadline_s + tolerance, 3),
        "short_outages_led_through": f"{sum(bench.short_outages)}/{len(bench.short_outages)}",
        "lease_transitions": lease.get("transitions"),
        "steady_requests_per_min": {k: round(v * 60.0 / steady_s, 1) for k, v in steady.items()},
        "steady_bound_per_min": round(60.0 / cfg.retry_period_s, 1),
        "violations": violations[:20],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--electors", type=int, default=5)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--lease-duration", type=float, default=2.0)
    p.add_argument("--renew-deadline", type=float, default=1.0)
    p.add_argument("--retry-period", type=float, default=0.25)
    p.add_argument("--log-level", default="ERROR")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = ElectionConfig(a.lease_duration, a.renew_deadline, a.retry_period)
    report = run(a.seconds, a.electors, a.seed, config)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
