"""After a bench episode: the cluster healthy again, and how long a returning old MAIN reported MAIN.

Role: `settle` waits (bounded) for full redundancy after an episode, noting pods the product re-seeded
and, as the last resort the bench counts as manual repairs, repairing a pod still diverged by hand;
`settle_noting` records a timeout on the episode instead of raising it; `writes_steady` waits until the
writer's recent writes all succeed; `OldMainWatch` measures a returning old MAIN's window as MAIN
(issue 16 item 9). Used by `sim.bench_phases`, `sim.bench` and `sim.bench_late_ack`.

Must never: wait without a bound, or repair anything but a pod still diverged after `repair_after_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sim import faults
from sim.cluster import SimCluster
from sim.workload import Writer

SLACK_S = 30.0  # real seconds on top of the timings: process starts and 2 shared cores


# ---- healthy again -------------------------------------------------------------------------------

Settled = tuple[list[str], list[str], list[float]]  # (re-seeded by HA, repaired by hand, redundancy s)


def settle_noting(cluster: SimCluster, timeout_s: float, after: str) -> tuple[Settled, str]:
    """`settle`, but a timeout is noted on the episode (its figures were measured) instead of raised."""
    try:
        return settle(cluster, timeout_s, after), ""
    except TimeoutError as exc:
        return ([], list(_diverged(cluster)), []), str(exc)


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
            faults.wait_pod_gone(cluster, pod, uid, cluster.timings.grace_s + SLACK_S)
            cluster.wipe_pvc(pod)
        finally:
            faults.release(cluster, pod)
        repaired.append(pod)
    if repaired:
        cluster.wait_for(cluster.healthy, timeout_s, f"cluster healthy after repairing {repaired}")
    return repaired


def writes_steady(writer: Writer, quiet_s: float, timeout_s: float) -> bool:
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
    demotes it (issue 16 item 9): the time it answered MAIN, counted from each poll that said MAIN to the
    next poll (an upper bound). Time it did not answer at all is not counted: a thawed MAIN that a late
    fence kills and the kubelet restarts says MAIN again only after the restart. The admin channel
    answers once the process restored its state, at the latest when Bolt does, so this bounds what a
    client connecting by pod address can see. 0.0 when it never reports MAIN, None when it never came
    back within the bound."""

    POLL_S = 0.02

    def __init__(self, cluster: SimCluster, pod: str, bound_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cluster, self.pod, self.bound_s = cluster, pod, bound_s
        self.clock, self.sleep = clock, sleep
        self.window_s: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"old-main-watch-{pod}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def result(self) -> float | None:
        if self._thread.ident is None:
            return None
        self._thread.join(self.bound_s + 5.0)
        return self.window_s

    def _role(self) -> str | None:
        try:
            rt = self.cluster.runtime(self.pod)
            if not rt.memgraph.alive or rt.frozen or "memgraph" in rt.hung:
                return None
            return str(rt.memgraph.admin("state", timeout_s=0.5).get("role"))
        except Exception:
            return None

    def _run(self) -> None:
        deadline = self.clock() + self.bound_s
        answered_main_s, prev_role, prev_t = 0.0, None, self.clock()
        while self.clock() < deadline:
            role = self._role()
            now = self.clock()
            if prev_role == "main":  # it said MAIN at the last poll: count until this one (an upper bound)
                answered_main_s += now - prev_t
            if role == "replica":
                self.window_s = answered_main_s
                return
            prev_role, prev_t = role, now
            self.sleep(self.POLL_S)
