"""Convergence of the emulated cluster as runs wait for it: the predicate and a wait that needs it to hold.

Role: `converged(roles, pods)` -- exactly one pod answers MAIN, is labelled role=main and Ready, and every
other expected pod is a Ready, unlabelled replica -- and `wait_stable(predicate, ...)`, a bounded wait
until a predicate has held without a break for a stable window.

Why a window: a fault's effect is often observed late. `kill -9` of an agent returns at once, and the pod
stays Ready until the kubelet's next probe notices; a predicate that is true right after the fault says
nothing about the state a moment later. A run that ends on such a reading races the late effect (the soak's
seed 22272: converged at once, NotReady in the last sample, I5 failed). Waiting until the predicate held
for `stable_s` without a break (several sample periods) is what I5 itself judges: convergence counts from
the last unbroken run of converged rounds.

Must never: wait without a bound, or let an exception of the predicate escape (it counts as "not yet").
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from sim.timeline import PodRole

log = logging.getLogger(__name__)

MAIN = "main"
REPLICA = "replica"
STABLE_S = 3.0  # default stable window: 15 sample periods of the soak and the scenarios (0.2 s)


def converged(roles: Mapping[str, PodRole], pods: Iterable[str]) -> bool:
    """1 MAIN (role MAIN, labelled, Ready) and every pod of `pods` else a Ready unlabelled replica."""
    need = set(pods)
    mains = [p for p, v in roles.items() if v.role == MAIN and v.label == MAIN and v.ready]
    rest = [v for p, v in roles.items() if p not in mains and p in need]
    return (len(mains) == 1 and set(roles) >= need
            and all(v.role == REPLICA and v.ready and v.label != MAIN for v in rest))


def wait_stable(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    stable_s: float = STABLE_S,
    poll_s: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Until `predicate` held at every poll for `stable_s` without a break; returns the seconds from the
    call to the START of that unbroken run (when it first held for good). Raises TimeoutError after
    `timeout_s` (the message says whether it ever held)."""
    start = clock()
    since: float | None = None
    ever = False
    while True:
        now = clock()
        ok = False
        with contextlib.suppress(Exception):
            ok = bool(predicate())
        if ok:
            ever = True
            since = now if since is None else since
            if now - since >= stable_s:
                return since - start
        elif since is not None:
            log.info("event=convergence_broken what=%r held_s=%.2f", what, now - since)
            since = None
        if now - start >= timeout_s:
            held = "held, but never" if ever else "never held, let alone"
            raise TimeoutError(f"{what}: {held} for {stable_s:g}s without a break within {timeout_s:g}s")
        sleep(poll_s)
