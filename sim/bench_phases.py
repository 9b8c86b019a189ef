"""The measured episodes of `make bench`, each on a running emulated cluster with a writer.

Role: one function per kind of episode, each injecting one fault on the MAIN (`sim.faults`), measuring
from the fault, undoing it and leaving the cluster healthy again (or noting that it did not become so):
- `switchover`: the MAIN's pod deleted (`kubectl delete pod`): its preStop hook hands the MAIN over;
- `kill_held`: Memgraph killed (-9) and held down (the container does not come back);
- `crash_restart`: Memgraph killed (-9); the kubelet restarts it (CrashLoopBackOff: at once the first
  time, then after 10 s, 20 s, ... for the same container);
- `node_loss`: the MAIN's node lost, `freeze` (everything on it stops) or `partition` (it runs on, cut
  off; its kubelet reports nothing); healed once a new MAIN took writes;
- `main_hang`: Memgraph stopped (SIGSTOP) on the MAIN, its port still open; resumed afterwards;
- `pod_partition`: the MAIN's pod cut from everything while its node and kubelet are fine;
- `agent_crash`: the MAIN's agent killed (-9); the kubelet restarts it.
Every figure counts from the fault: `outage_s` is the longest span without an acknowledged write through
the Service from the fault to the end of the episode's window (the first span is fault -> first ack);
`first_ack_s` is fault -> the first acknowledgement of a write sent after the fault.
Waits are bounded by the cluster's own timings (`SimCluster.timings`, on its time scale) plus slack.

Must never: wait without a bound, touch a product module, or report a figure it did not measure.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim import faults
from sim.bench_measure import first_ack_after, first_ack_on, outage_after, pause_across
from sim.cluster import SimCluster
from sim.timeline import FailoverMark, Timeline
from sim.workload import Writer

SLACK_S = 30.0  # real seconds on top of the timings: process starts and 2 shared cores
ACKS_ON_NEW_MAIN = 5


@dataclass
class Episode:
    kind: str
    old_main: str
    new_main: str
    outage_s: float | None  # longest span without an ack from the fault to the end of the window
    first_ack_s: float | None  # fault -> first ack of a write sent after it
    recovered_s: float  # fault -> cluster healthy again
    pause_s: float | None = None  # last ack on the old MAIN -> first ack on the new one (MAIN moved)
    leader_lost: bool = False  # the faulty pod's agent was the leader
    notes: dict[str, Any] = field(default_factory=dict)
    repaired: list[str] = field(default_factory=list)  # pods found diverged afterwards and repaired
    settle_error: str = ""  # not healthy again within the bound (measured all the same)


@dataclass
class Run:
    """What an episode needs: the cluster, the writer, the timeline of the run."""

    cluster: SimCluster
    writer: Writer
    timeline: Timeline

    def addr(self, pod: str) -> str:
        """How the writer's records name the pod its connection reached (`WriteAttempt.backend`)."""
        return f"{pod}/{self.cluster.runtime(pod).uid}"

    def bound(self, *timings: float) -> float:
        return sum(timings) + SLACK_S


def _main_now(c: SimCluster, timeout_s: float) -> str:
    box: list[str] = []

    def found() -> bool:
        m = c.main()
        if m:
            box.append(m)
        return bool(m)

    c.wait_for(found, timeout_s, "a designated MAIN")
    return box[-1]


def _moved(c: SimCluster, old: str, timeout_s: float) -> str | None:
    """The new MAIN once the record names another pod (None: not within `timeout_s`)."""
    box: list[str] = []

    def moved() -> bool:
        m = c.main()
        if m is not None and m != old:
            box.append(m)
            return True
        return False

    try:
        c.wait_for(moved, timeout_s, f"a MAIN other than {old}")
    except TimeoutError:
        return None
    return box[-1]


def _acks_after(r: Run, t: float, count: int, timeout_s: float, backend: str | None = None) -> bool:
    def enough() -> bool:
        acks = [a for a in r.writer.attempts if a.acked and a.t_start >= t
                and (backend is None or a.backend == backend)]
        return len(acks) >= count

    try:
        r.cluster.wait_for(enough, timeout_s, f"{count} acks after the fault")
    except TimeoutError:
        return False
    return True


def _leader(c: SimCluster) -> str | None:
    with contextlib.suppress(Exception):
        return str(c.status().get("cluster", {}).get("leader") or "") or None
    return None


def _measure(r: Run, kind: str, old: str, t0: float, end: float, new: str | None,
             leader_lost: bool, notes: dict[str, Any]) -> Episode:
    attempts = r.writer.attempts
    pause = pause_across(attempts, r.addr(old), r.addr(new), t0 - 2.0) if new and new != old else None
    if new and new != old:
        r.timeline.failovers.append(FailoverMark(time.monotonic(), old, new, planned=kind == "switchover"))
    return Episode(kind, old, new or old, outage_after(attempts, t0, end), first_ack_after(attempts, t0),
                   0.0, pause.seconds if pause else None, leader_lost, notes)


def _begin(r: Run) -> tuple[str, bool]:
    """The MAIN the fault will hit, and whether its agent leads."""
    old = _main_now(r.cluster, 60)
    return old, _leader(r.cluster) == old


def _finish(r: Run, ep: Episode, t0: float, timeout_s: float) -> Episode:
    ep.repaired, ep.settle_error = _settle_noting(r.cluster, timeout_s, f"{ep.kind} of {ep.old_main}")
    ep.recovered_s = time.monotonic() - t0
    return ep


# ---- the episodes ---------------------------------------------------------------------------------


def switchover(r: Run) -> Episode:
    c, t = r.cluster, r.cluster.timings
    old, leader_lost = _begin(r)
    uid = c.pod_uid(old)
    t0 = time.monotonic()
    c.delete_pod(old)
    new = _moved(c, old, r.bound(t.prestop_budget_s))
    if new:
        _acks_after(r, t0, ACKS_ON_NEW_MAIN, SLACK_S, r.addr(new))
    c.wait_for(lambda: c.pod_uid(old) not in (None, uid) and c.pod_ready(old), r.bound(t.grace_s),
               f"{old} recreated and Ready")
    ep = _measure(r, "switchover", old, t0, time.monotonic(), new, leader_lost, {})
    first = first_ack_on(r.writer.attempts, r.addr(new), t0) if new else None
    ep.notes["delete_to_first_ack_on_new_main_s"] = None if first is None else first.t_end - t0
    return _finish(r, ep, t0, r.bound(t.grace_s))


def kill_held(r: Run) -> Episode:
    c, t = r.cluster, r.cluster.timings
    old, leader_lost = _begin(r)
    t0 = time.monotonic()
    faults.kill_memgraph(c, old, hold=True)
    try:
        new = _moved(c, old, r.bound(t.lease_duration_s, t.failover_after_s))
        if new:
            _acks_after(r, t0, ACKS_ON_NEW_MAIN, SLACK_S, r.addr(new))
        ep = _measure(r, "failover_kill", old, t0, time.monotonic(), new, leader_lost, {})
    finally:
        faults.release(c, old)
    return _finish(r, ep, t0, r.bound(t.lease_duration_s))


def crash_restart(r: Run) -> Episode:
    c, t = r.cluster, r.cluster.timings
    old, leader_lost = _begin(r)
    worker = next(i.worker for i in c.incarnations() if i.runtime.name == old)
    backoff = worker.containers["memgraph"].backoff.current_s()
    t0 = time.monotonic()
    faults.kill_memgraph(c, old)
    _acks_after(r, t0, ACKS_ON_NEW_MAIN, r.bound(t.backoff_max_s, t.failover_after_s))
    new = c.main()
    ep = _measure(r, "failover_crash_restart", old, t0, time.monotonic(), new, leader_lost,
                  {"back_off_before_s": backoff, "main_moved": bool(new and new != old)})
    return _finish(r, ep, t0, r.bound(t.backoff_max_s))


def _held_fault(r: Run, kind: str, fault: contextlib.AbstractContextManager[Any], old: str,
                leader_lost: bool, bound: float, notes: dict[str, Any]) -> Episode:
    """A fault held until a new MAIN took writes (or `bound` passed), then undone; measured from its start."""
    t0 = time.monotonic()
    with fault:
        new = _moved(r.cluster, old, bound)
        if new:
            _acks_after(r, t0, ACKS_ON_NEW_MAIN, SLACK_S, r.addr(new))
        notes = {**notes, "main_moved": bool(new)}
        ep = _measure(r, kind, old, t0, time.monotonic(), new, leader_lost, notes)
    return _finish(r, ep, t0, r.bound(r.cluster.timings.lease_duration_s))


def node_loss(r: Run, variant: str) -> Episode:
    t = r.cluster.timings
    old, leader_lost = _begin(r)
    bound = r.bound(t.node_grace_s, t.node_monitor_period_s, t.lease_duration_s, t.failover_after_s)
    return _held_fault(r, "failover_node_loss", faults.node_loss(r.cluster, old, variant), old, leader_lost,
                       bound, {"variant": variant, "node": r.cluster.node_of(old)})


def main_hang(r: Run) -> Episode:
    """Memgraph stopped on the MAIN: its tcpSocket probes may pass, the agent's readiness may not."""
    t = r.cluster.timings
    old, leader_lost = _begin(r)
    bound = r.bound(t.node_grace_s, t.lease_duration_s, t.failover_after_s)
    return _held_fault(r, "main_hang", faults.hang(r.cluster, old, "memgraph"), old, leader_lost, bound, {})


def pod_partition(r: Run) -> Episode:
    t = r.cluster.timings
    old, leader_lost = _begin(r)
    bound = r.bound(t.node_grace_s, t.lease_duration_s, t.failover_after_s)
    return _held_fault(r, "partition_main", faults.cut_off(r.cluster, old), old, leader_lost, bound,
                       {"variant": "pod"})


def agent_crash(r: Run) -> Episode:
    c, t = r.cluster, r.cluster.timings
    old, leader_lost = _begin(r)
    worker = next(i.worker for i in c.incarnations() if i.runtime.name == old)
    backoff = worker.containers["agent"].backoff.current_s()
    before = worker.restarts()["agent"]
    t0 = time.monotonic()
    faults.kill_agent(c, old)
    # the kubelet restarted the agent and the pod is Ready again (or the MAIN moved), and writes flow
    c.wait_for(lambda: (worker.restarts()["agent"] > before and c.pod_ready(old))
               or c.main() not in (None, old), r.bound(t.backoff_max_s, t.lease_duration_s),
               f"agent of {old} back")
    _acks_after(r, time.monotonic(), ACKS_ON_NEW_MAIN, SLACK_S)
    new = c.main()
    ep = _measure(r, "agent_crash_on_main", old, t0, time.monotonic(), new, leader_lost,
                  {"back_off_before_s": backoff, "main_moved": bool(new and new != old)})
    return _finish(r, ep, t0, r.bound(t.backoff_max_s))


EPISODES: dict[str, Callable[[Run], Episode]] = {
    "switchover": switchover,
    "failover_kill": kill_held,
    "failover_crash_restart": crash_restart,
    "failover_node_loss_freeze": lambda r: node_loss(r, "freeze"),
    "failover_node_loss_partition": lambda r: node_loss(r, "partition"),
    "main_hang": main_hang,
    "partition_main_pod": pod_partition,
    "agent_crash_on_main": agent_crash,
}


# ---- healthy again -------------------------------------------------------------------------------


def _settle_noting(cluster: SimCluster, timeout_s: float, after: str) -> tuple[list[str], str]:
    """`settle`, but a timeout is noted on the episode (its figures were measured) instead of raised."""
    try:
        return settle(cluster, timeout_s, after), ""
    except TimeoutError as exc:
        return list(_diverged(cluster)), str(exc)


def _diverged(cluster: SimCluster) -> list[str]:
    try:
        return list(cluster.status().get("cluster", {}).get("diverged") or [])
    except Exception:
        return []


def settle(cluster: SimCluster, timeout_s: float, after: str) -> list[str]:
    """Wait until the cluster is healthy; a pod reported diverged meanwhile is repaired the way
    docs/operations.md tells an operator to (its data moved away: here the pod is deleted, its volume
    wiped, and it comes back empty). Returns the pods repaired."""
    cluster.wait_for(lambda: cluster.healthy() or bool(_diverged(cluster)), timeout_s,
                     f"cluster healthy (or a pod diverged) after {after}")
    repaired: list[str] = []
    for pod in _diverged(cluster):
        uid = cluster.pod_uid(pod)
        faults.delete_pod(cluster, pod, hold=True)
        try:
            faults.wait_pod_gone(cluster, pod, uid, cluster.timings.grace_s + SLACK_S)
            cluster.wipe_pvc(pod)
        finally:
            faults.release(cluster, pod)
        repaired.append(pod)
    if repaired:
        cluster.wait_for(cluster.healthy, timeout_s, f"cluster healthy after repairing {repaired}")
    return repaired
