"""The measured episodes of `make bench`, each on a running emulated cluster with a writer.

Role: one function per kind of episode, each injecting one fault on the MAIN (`sim.faults`), measuring
from the fault, undoing it and leaving the cluster healthy again (or noting that it did not become so):
- `switchover`: the MAIN's pod deleted (`kubectl delete pod`): its preStop hook hands the MAIN over;
  `switchover_hook_only` the same with the leader's pod view 30 s late (only the hook's request is in time);
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
from sim.bench_recovery import SLACK_S, OldMainWatch, settle_noting, writes_steady
from sim.cluster import SimCluster
from sim.timeline import FailoverMark, Timeline
from sim.workload import Writer

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
    reseeded: list[str] = field(default_factory=list)  # pods found diverged afterwards, re-seeded by HA
    manual: list[str] = field(default_factory=list)  # pods the bench had to repair by hand (must be none)
    redundancy_s: list[float] = field(default_factory=list)  # divergence first seen -> full redundancy
    settle_error: str = ""  # not healthy again within the bound (measured all the same)
    old_main_window_s: float | None = None  # the old MAIN, back, reported MAIN this long (issue 16 item 9)


@dataclass
class Run:
    """What an episode needs: the cluster, the writer, the timeline of the run."""

    cluster: SimCluster
    writer: Writer
    timeline: Timeline
    old_addr: str = ""  # the faulted MAIN's address when the episode began (its successor gets another)

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


def _mark(r: Run, kind: str, old: str, new: str | None) -> None:
    """The change of MAIN, for the checker (a crashed MAIN's in-flight commit is excused, I4)."""
    if new and new != old:
        r.timeline.failovers.append(FailoverMark(time.monotonic(), old, new, planned=kind == "switchover"))


def _measure(r: Run, kind: str, old: str, t0: float, end: float, new: str | None,
             leader_lost: bool, notes: dict[str, Any], mark: bool = True) -> Episode:
    attempts = r.writer.attempts
    pause = pause_across(attempts, r.old_addr, r.addr(new), t0 - 2.0) if new and new != old else None
    if mark:
        _mark(r, kind, old, new)
    outage = outage_after(attempts, t0, end)
    if outage is None:  # no write acknowledged through the Service from the fault to the end: unmeasured
        notes = {**notes, "writes_resumed": False, "window_s": round(end - t0, 3)}
    return Episode(kind, old, new or old, outage, first_ack_after(attempts, t0),
                   0.0, pause.seconds if pause else None, leader_lost, notes)


def _begin(r: Run) -> tuple[str, bool]:
    """The MAIN the fault will hit, and whether its agent leads."""
    old = _main_now(r.cluster, 60)
    r.old_addr = r.addr(old)
    return old, _leader(r.cluster) == old


def _finish(r: Run, ep: Episode, t0: float, timeout_s: float) -> Episode:
    (ep.reseeded, ep.manual, ep.redundancy_s), ep.settle_error = settle_noting(
        r.cluster, timeout_s, f"{ep.kind} of {ep.old_main}")
    ep.recovered_s = time.monotonic() - t0
    return ep


# ---- the episodes ---------------------------------------------------------------------------------


def switchover(r: Run, kind: str = "switchover", leader_view_late_s: float = 0.0) -> Episode:
    """With `leader_view_late_s`, the leader's pod list and watch are that late (the API emulator's stale
    view of its address) until the MAIN moved: only the hook's request can start the hand-over in time."""
    c, t = r.cluster, r.cluster.timings
    old, leader_lost = _begin(r)
    uid = c.pod_uid(old)
    late_ip = c.runtime(_leader(c) or old).ip if leader_view_late_s else ""
    if late_ip:
        c.kube.set_stale_view(late_ip, leader_view_late_s)
    t0 = time.monotonic()
    try:
        c.delete_pod(old)
        new = _moved(c, old, r.bound(t.prestop_budget_s))
    finally:
        if late_ip:
            c.kube.clear_stale_view(late_ip)
    if new:
        _acks_after(r, t0, ACKS_ON_NEW_MAIN, SLACK_S, r.addr(new))
    c.wait_for(lambda: c.pod_uid(old) not in (None, uid) and c.pod_ready(old), r.bound(t.grace_s),
               f"{old} recreated and Ready")
    ep = _measure(r, kind, old, t0, time.monotonic(), new, leader_lost,
                  {"leader_view_late_s": leader_view_late_s} if leader_view_late_s else {})
    first = first_ack_on(r.writer.attempts, r.addr(new), t0) if new else None
    ep.notes["delete_to_first_ack_on_new_main_s"] = None if first is None else first.t_end - t0
    return _finish(r, ep, t0, r.bound(t.grace_s))


def kill_held(r: Run) -> Episode:
    c, t = r.cluster, r.cluster.timings
    old, leader_lost = _begin(r)
    t0 = time.monotonic()
    watch = OldMainWatch(c, old, r.bound(t.backoff_max_s))
    faults.kill_memgraph(c, old, hold=True)
    try:
        new = _moved(c, old, r.bound(t.lease_duration_s, t.failover_after_s))
        if new:
            _acks_after(r, t0, ACKS_ON_NEW_MAIN, SLACK_S, r.addr(new))
        ep = _measure(r, "failover_kill", old, t0, time.monotonic(), new, leader_lost, {})
    finally:
        watch.start()
        faults.release(c, old)  # its restart waits for its back-off when it crashed in the last 10 min
    ep.old_main_window_s = watch.result()
    return _finish(r, ep, t0, r.bound(t.backoff_max_s))


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
                leader_lost: bool, bound: float, notes: dict[str, Any], watch: bool = False) -> Episode:
    """A fault held until a new MAIN took writes (or `bound` passed), then undone. Measured from its
    start to the cluster healthy again: when no new MAIN took over, the writes stopped until the heal.
    With `watch`, how long the old MAIN reports MAIN once it is back (`OldMainWatch`)."""
    t0 = time.monotonic()
    watcher = OldMainWatch(r.cluster, old, r.bound(r.cluster.timings.lease_duration_s))
    with fault:
        new = _moved(r.cluster, old, bound)
        _mark(r, kind, old, new)
        if new:
            _acks_after(r, t0, ACKS_ON_NEW_MAIN, SLACK_S, r.addr(new))
        held = time.monotonic() - t0
        if watch:
            watcher.start()  # just before the heal
    window = watcher.result() if watch else None
    bound_after = r.bound(r.cluster.timings.lease_duration_s)
    ep = _finish(r, Episode(kind, old, new or old, None, None, 0.0), t0, bound_after)
    _acks_after(r, time.monotonic(), ACKS_ON_NEW_MAIN, SLACK_S)
    done = _measure(r, kind, old, t0, time.monotonic(), new, leader_lost,
                    {**notes, "main_moved": bool(new), "fault_held_s": round(held, 3)}, mark=False)
    done.recovered_s, done.settle_error = ep.recovered_s, ep.settle_error
    done.reseeded, done.manual, done.redundancy_s = ep.reseeded, ep.manual, ep.redundancy_s
    done.old_main_window_s = window
    return done


def node_loss(r: Run, variant: str) -> Episode:
    t = r.cluster.timings
    old, leader_lost = _begin(r)
    bound = r.bound(t.node_grace_s, t.node_monitor_period_s, t.lease_duration_s, t.failover_after_s)
    return _held_fault(r, "failover_node_loss", faults.node_loss(r.cluster, old, variant), old, leader_lost,
                       bound, {"variant": variant, "node": r.cluster.node_of(old)}, watch=variant == "freeze")


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
    """The MAIN's agent killed once; afterwards its pod is replaced, so that every sample is the first
    crash of its container (a second one within 10 minutes would wait 10 s, 20 s, ... of back-off: the
    crash-loop scenario shows that)."""
    c, t = r.cluster, r.cluster.timings
    old, leader_lost = _begin(r)
    worker = next(i.worker for i in c.incarnations() if i.runtime.name == old)
    backoff = worker.containers["agent"].backoff.current_s()
    before = worker.restarts()["agent"]
    writes_steady(r.writer, 1.0, SLACK_S)  # the outage measured is this fault's, not a previous one's tail
    t0 = time.monotonic()
    faults.kill_agent(c, old)
    # the kubelet restarted the agent and the pod is Ready again (or the MAIN moved), and writes flow
    c.wait_for(lambda: (worker.restarts()["agent"] > before and c.pod_ready(old))
               or c.main() not in (None, old), r.bound(t.backoff_max_s, t.lease_duration_s),
               f"agent of {old} back")
    _acks_after(r, time.monotonic(), ACKS_ON_NEW_MAIN, SLACK_S)
    new = c.main()
    ep = _finish(r, _measure(r, "agent_crash_on_main", old, t0, time.monotonic(), new, leader_lost,
                             {"back_off_before_s": backoff, "main_moved": bool(new and new != old)}),
                 t0, r.bound(t.backoff_max_s))
    c.restart_pod(old, timeout_s=r.bound(t.grace_s))  # a fresh incarnation for the next sample
    settle_noting(c, r.bound(t.lease_duration_s), f"replacing {old}")
    return ep


EPISODES: dict[str, Callable[[Run], Episode]] = {
    "switchover": switchover,
    # issue 16 item 10: the leader's pod view 30 s late (real seconds: longer than any switchover here)
    "switchover_hook_only": lambda r: switchover(r, "switchover_hook_only", 30.0),
    "failover_kill": kill_held,
    "failover_crash_restart": crash_restart,
    "failover_node_loss_freeze": lambda r: node_loss(r, "freeze"),
    "failover_node_loss_partition": lambda r: node_loss(r, "partition"),
    "main_hang": main_hang,
    "partition_main_pod": pod_partition,
    "agent_crash_on_main": agent_crash,
}
