"""The measured episodes of `make bench`, each on a running emulated cluster with a writer.

Role: one function per kind of episode -- a switchover (delete the MAIN pod: the preStop path), an
unplanned failover (kill -9 of the MAIN's Memgraph, held down as in CrashLoopBackOff, or the whole
pod frozen as on node loss), and a steady-state window (API requests per agent, the leader's Bolt
queries per reconcile cycle). Each returns what it measured and leaves the cluster healthy again, or
raises TimeoutError when it cannot.

Faults are the scenario suite's (`sim.faults`): `kill_memgraph(hold=True)` / `release`, `node_loss`.

Must never: wait without a bound, touch a product module, or report a figure it did not measure.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sim import faults
from sim.bench_measure import (
    agent_request_rates,
    agent_requests_by_verb,
    first_ack_on,
    pause_across,
    sample_leader_queries,
)
from sim.cluster import SimCluster
from sim.timeline import FailoverMark, Timeline
from sim.workload import Writer

Say = Callable[[str], None]


@dataclass
class Episode:
    kind: str  # switchover | failover | node_loss
    old_main: str
    new_main: str
    pause_s: float | None  # last ack on the old MAIN -> first ack on the new one
    to_first_ack_s: float | None  # fault (delete / kill / freeze) -> first ack on the new MAIN
    recovered_s: float  # fault -> cluster healthy again
    leader_lost: bool = False  # the lost pod's agent was the leader
    reseeded: list[str] = field(default_factory=list)  # pods found diverged afterwards, re-seeded by HA
    manual: list[str] = field(default_factory=list)  # pods the bench had to repair by hand (must be none)
    redundancy_s: list[float] = field(default_factory=list)  # divergence first seen -> full redundancy
    settle_error: str = ""  # the cluster was not healthy again within the bound (measured all the same)
    old_main_window_s: float | None = None  # the old MAIN, back, reported MAIN this long (issue 16 item 9)


@dataclass
class SteadyState:
    window_s: float
    requests_per_min: dict[str, float] = field(default_factory=dict)
    requests_by_verb: dict[str, dict[str, int]] = field(default_factory=dict)
    bolt_queries: list[int] = field(default_factory=list)
    leader: str = ""


def _addr(cluster: SimCluster, pod: str) -> str:
    """How the writer's records name the pod its connection reached (`WriteAttempt.backend`)."""
    return f"{pod}/{cluster.runtime(pod).uid}"


def _main_now(cluster: SimCluster, timeout_s: float) -> str:
    main = cluster.main()
    if main is None:
        cluster.wait_for(lambda: cluster.main() is not None, timeout_s, "a designated MAIN")
        main = cluster.main()
    assert main is not None
    return main


def _new_main(cluster: SimCluster, old: str, timeout_s: float) -> str:
    box: list[str] = []

    def moved() -> bool:
        m = cluster.main()
        if m is not None and m != old:
            box.append(m)
            return True
        return False

    cluster.wait_for(moved, timeout_s, f"a MAIN other than {old}")
    return box[-1]


def _first_ack(writer: Writer, address: str, after: float, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ack = first_ack_on(writer.attempts, address, after)
        if ack is not None:
            return ack.t_end
        time.sleep(0.05)
    return None


def switchover(cluster: SimCluster, writer: Writer, timeout_s: float = 60.0) -> Episode:
    """Delete the MAIN's pod (as `kubectl delete pod`): its preStop hands the role over."""
    old = _main_now(cluster, timeout_s)
    old_addr, uid = _addr(cluster, old), cluster.pod_uid(old)
    t0 = time.monotonic()
    cluster.delete_pod(old)
    new = _new_main(cluster, old, timeout_s)
    new_addr = _addr(cluster, new)
    first = _first_ack(writer, new_addr, t0, timeout_s)
    pause = pause_across(writer.attempts, old_addr, new_addr, t0 - 2.0)
    cluster.wait_for(lambda: cluster.pod_uid(old) not in (None, uid) and cluster.pod_ready(old),
                     cluster.cfg.template.grace_s + timeout_s, f"{old} recreated and Ready")
    settled, error = _settle_noting(cluster, timeout_s, f"deleting {old}")
    return Episode("switchover", old, new, pause.seconds if pause else None,
                   None if first is None else first - t0, time.monotonic() - t0, False, *settled, error)


def agent_crash(cluster: SimCluster, writer: Writer, timeout_s: float = 60.0) -> Episode:
    """kill -9 of the MAIN's agent, restarted by the kubelet as after a crash or an OOM kill (issue 16
    item 1): the pod is NotReady meanwhile (a container not running), the MAIN must stay and keep taking
    writes. `pause_s` is the longest gap between acknowledged writes from the last one before the kill to
    the first one after the agent answers again."""
    main = _main_now(cluster, timeout_s)
    rt = cluster.runtime(main)
    _writes_steady(writer, 1.0, timeout_s)  # the pause measured is this fault's, not a previous one's tail
    t0 = time.monotonic()
    faults.kill_agent(cluster, main)
    cluster.wait_for(lambda: rt.agent is not None and rt.agent.poll() is None and rt.http_ok("/health", 0.5),
                     timeout_s, f"{main}'s agent restarted")
    end = _first_ack(writer, _addr(cluster, main), time.monotonic(), timeout_s)  # the MAIN must stay
    acks = sorted(a.t_end for a in writer.attempts if a.acked and t0 - 5.0 <= a.t_end <= (end or t0))
    before = [t for t in acks if t <= t0]
    seq = ([before[-1]] if before else []) + [t for t in acks if t > t0]
    pause = max((b - a for a, b in itertools.pairwise(seq)), default=None)
    now_main = cluster.main() or ""
    settled, error = _settle_noting(cluster, timeout_s, f"killing {main}'s agent")
    if now_main != main:
        error = error or f"the MAIN moved from {main} to {now_main or 'nobody'} on an agent crash"
    return Episode("agent_crash", main, now_main, pause if end is not None else None, None,
                   time.monotonic() - t0, False, *settled, error)


def _writes_steady(writer: Writer, quiet_s: float, timeout_s: float) -> bool:
    """Wait (bounded) until the last `quiet_s` seconds hold acknowledged writes and no failed one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        since = time.monotonic() - quiet_s
        recent = [a for a in writer.attempts if a.t_end >= since]
        if recent and all(a.acked for a in recent) and not any(
                ln.inflight is not None and ln.inflight[1] < since for ln in writer.lanes_now()):
            return True
        time.sleep(0.05)
    return False


class OldMainWatch:
    """Started just before a lost MAIN comes back (restarted or thawed): polls its Memgraph's role every
    20 ms through the emulator's admin channel and measures how long it reports MAIN before its guard
    demotes it (issue 16 item 9). The admin channel answers once the process restored its state, at the
    latest when Bolt does, so this bounds what a client connecting by pod address can see. 0.0 when it
    never reports MAIN, None when it never came back within the bound."""

    POLL_S = 0.02

    def __init__(self, cluster: SimCluster, pod: str, bound_s: float = 30.0) -> None:
        self.cluster, self.pod, self.bound_s = cluster, pod, bound_s
        self.window_s: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"old-main-watch-{pod}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def result(self) -> float | None:
        self._thread.join(self.bound_s + 5.0)
        return self.window_s

    def _role(self) -> str | None:
        try:
            rt = self.cluster.runtime(self.pod)
            if not rt.memgraph.alive or rt.frozen:
                return None
            return str(rt.memgraph.admin("state", timeout_s=0.5).get("role"))
        except Exception:
            return None

    def _run(self) -> None:
        deadline = time.monotonic() + self.bound_s
        first_main: float | None = None
        while time.monotonic() < deadline:
            role = self._role()
            now = time.monotonic()
            if role == "main" and first_main is None:
                first_main = now
            elif role == "replica":
                self.window_s = 0.0 if first_main is None else now - first_main
                return
            time.sleep(self.POLL_S)


def failover(cluster: SimCluster, writer: Writer, timeline: Timeline, node_loss: bool = False,
             not_ready_after_s: float = 2.0, timeout_s: float = 60.0) -> Episode:
    """An unplanned loss of the MAIN, held until a new MAIN took writes, then undone.

    node_loss=False: kill -9 of the MAIN's Memgraph, and the kubelet does not restart it (CrashLoopBackOff)
    -- its readiness probe fails, the pod turns NotReady, its agent keeps running. node_loss=True: every
    process of the pod is SIGSTOPped (memgraph and agent; a leader there loses its Lease only when it
    expires) and the pod turns NotReady after `not_ready_after_s` (the node controller's grace).
    """
    old = _main_now(cluster, timeout_s)
    leader_lost = cluster.status().get("cluster", {}).get("leader") == old
    old_addr = _addr(cluster, old)
    with contextlib.ExitStack() as undo:
        t0 = time.monotonic()
        watch = OldMainWatch(cluster, old)
        if node_loss:
            undo.enter_context(faults.node_loss(cluster, old, not_ready_after_s=not_ready_after_s))
        else:
            faults.kill_memgraph(cluster, old, hold=True)
            undo.callback(faults.release, cluster, old)
        undo.callback(watch.start)  # callbacks run last-in first-out: the watch starts just before the undo
        new = _new_main(cluster, old, timeout_s)
        new_addr = _addr(cluster, new)
        timeline.failovers.append(FailoverMark(time.monotonic(), old, new, planned=False))
        first = _first_ack(writer, new_addr, t0, timeout_s)
        pause = pause_across(writer.attempts, old_addr, new_addr, t0 - 2.0)
    window = watch.result()
    settled, error = _settle_noting(cluster, timeout_s, f"the loss of {old}")
    return Episode("node_loss" if node_loss else "failover", old, new, pause.seconds if pause else None,
                   None if first is None else first - t0, time.monotonic() - t0, leader_lost, *settled, error,
                   old_main_window_s=window)


Settled = tuple[list[str], list[str], list[float]]  # (re-seeded by HA, repaired by hand, redundancy s)


def _settle_noting(cluster: SimCluster, timeout_s: float, after: str) -> tuple[Settled, str]:
    """`settle`, but a timeout is noted on the episode (its figures were measured) instead of raised."""
    try:
        return settle(cluster, timeout_s, after), ""
    except TimeoutError as exc:
        return ([], [p for p in _diverged(cluster)], []), str(exc)


def _diverged(cluster: SimCluster) -> list[str]:
    try:
        return list(cluster.status().get("cluster", {}).get("diverged") or [])
    except Exception:
        return []


def settle(cluster: SimCluster, timeout_s: float, after: str, repair_after_s: float = 180.0) -> Settled:
    """Wait until the cluster is healthy again with full redundancy (healthy: every other pod a ready
    replica, no divergence). A pod reported diverged meanwhile is re-seeded by the product; the bench
    repairs nothing by itself, except, as the last resort that `manual_repairs` counts, a pod still
    diverged after `repair_after_s` (deleted, its volume wiped). Returns (re-seeded, repaired by hand,
    seconds from each divergence first seen to full redundancy)."""
    seen: dict[str, float] = {}

    def healthy_noting() -> bool:
        now = time.monotonic()
        for pod in _diverged(cluster):
            seen.setdefault(pod, now)
        return cluster.healthy()

    try:
        cluster.wait_for(healthy_noting, max(timeout_s, repair_after_s), f"full redundancy after {after}")
    except TimeoutError:
        if not _diverged(cluster):
            raise
        return [], _repair_by_hand(cluster, timeout_s), []
    done = time.monotonic()
    return sorted(seen), [], [done - t for t in seen.values()]


def _repair_by_hand(cluster: SimCluster, timeout_s: float) -> list[str]:
    """The last resort (counted as manual repairs): delete a diverged pod, wipe its volume."""
    repaired: list[str] = []
    for pod in _diverged(cluster):
        uid = cluster.pod_uid(pod)
        faults.delete_pod(cluster, pod, hold=True)
        try:
            faults.wait_pod_gone(cluster, pod, uid, cluster.cfg.template.grace_s + 10)
            cluster.wipe_pvc(pod)
        finally:
            faults.release(cluster, pod)
        repaired.append(pod)
    if repaired:
        cluster.wait_for(cluster.healthy, timeout_s, f"cluster healthy after repairing {repaired}")
    return repaired


def steady_state(cluster: SimCluster, window_s: float, settle_s: float) -> SteadyState:
    """Reset the emulator's counters after `settle_s`, count every agent's requests for `window_s`,
    and meanwhile read the leader's Bolt queries per cycle from its status document."""
    time.sleep(settle_s)
    leader = str(cluster.status().get("cluster", {}).get("leader") or "")
    url = cluster.runtime(leader).agent_url if leader else ""
    cluster.kube.reset_counters()
    t0 = time.monotonic()
    period = max(0.1, min(cluster.cfg.reconcile_interval_s / 2, 1.0))
    queries = sample_leader_queries(url, window_s, period) if url else []
    left = window_s - (time.monotonic() - t0)
    if left > 0:
        time.sleep(left)
    counters = cluster.kube.counters()
    window = time.monotonic() - t0
    return SteadyState(window, agent_request_rates(counters, window), agent_requests_by_verb(counters),
                       queries, leader)
