"""Declared losses: what an unfenced failover a scenario ran on purpose did -- counted, never hidden.

Role: pure functions over a `Timeline`'s `declared_losses` (`sim.timeline.DeclaredLoss`: a pod cut off
in a window, whose failover went to an unfenced target, SYNC or ASYNC mode with allowAsyncFailover,
issue 16 item 6) that `sim.check` uses to tell violations from the declared, counted consequences:
- I3: an acknowledged id the final MAIN (or a ready replica) lacks is *declared* when the declared old
  MAIN acknowledged it inside the window. Also counted: the writes that pod answered "Transaction is
  still committed on the main instance" (Memgraph v3.10-3.12's answer when a SYNC replica did not
  confirm, reference memgraph-replication.md section 5: committed on the MAIN, an UNKNOWN outcome for the
  checker, not a success) that the final MAIN lacks -- told "committed", gone.
- I1: an acknowledgement by the declared old MAIN inside the window while the record named another
  MAIN: a second writer.
- I4: the declared old MAIN holding ids the final MAIN lacks (it committed them after the failover) is
  declared divergence.
Anything outside a declaration is judged as usual. `summary` gives the figures for a scenario report.

Must never: declare anything without a `DeclaredLoss` on the timeline, or leave out an id it declares:
each one is counted, and listed (abbreviated) in the evidence.
"""

from __future__ import annotations

from typing import Any

from sim.timeline import UNKNOWN, DeclaredLoss, Timeline, WriteAttempt

COMMITTED_DESPITE_ERROR = "is still committed on the main instance"  # sim.bolt_client's marker


def covering(tl: Timeline, pod: str, t: float) -> DeclaredLoss | None:
    """The declaration that covers what `pod` did at time `t`, or None."""
    return next((d for d in tl.declared_losses if d.old_main == pod and d.start <= t <= d.end), None)


def acked_declared(tl: Timeline) -> dict[str, DeclaredLoss]:
    """Acknowledged write id -> the declaration covering its acknowledgement (by the declared old MAIN)."""
    out: dict[str, DeclaredLoss] = {}
    for a in tl.attempts:
        d = covering(tl, a.backend_pod, a.t_end) if a.acked and a.backend else None
        if d is not None:
            out[a.id] = d
    return out


def told_committed(tl: Timeline) -> list[WriteAttempt]:
    """Writes the declared old MAIN answered with a replication error saying it committed them."""
    return [a for a in tl.attempts if a.outcome == UNKNOWN and COMMITTED_DESPITE_ERROR in a.message
            and a.backend and covering(tl, a.backend_pod, a.t_end) is not None]


def _short(ids: list[str], n: int = 20) -> str:
    items = sorted(ids, key=lambda i: (len(i), i))
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def summary(tl: Timeline) -> dict[str, Any]:
    """The declared consequences, as figures and ids: acknowledged ids the final MAIN lacks, ids told
    "still committed" it lacks, and acknowledgements by the declared old MAIN (any, and the second
    writer's: while the record named another MAIN, lag excluded -- I1 judges with its lag)."""
    main_ids = set(tl.final.ids_by_pod.get(tl.final.main, ())) if tl.final is not None else set()
    acked = acked_declared(tl)
    told = told_committed(tl)
    return {
        "declarations": [f"{d.old_main} in [{d.start:.3f}, {d.end:.3f}]: {d.reason}"
                         for d in tl.declared_losses],
        "acked_by_old_main": len(acked),
        "acked_lost": sorted(i for i in acked if i not in main_ids),
        "told_committed": len(told),
        "told_committed_lost": sorted(a.id for a in told if a.id not in main_ids),
    }


def lost_evidence(tl: Timeline, declared_lost: set[str], pod: str) -> list[str]:
    """I3's evidence lines for `pod` lacking declared ids, and for the told-committed ids it lacks."""
    out = []
    if declared_lost:
        out.append(f"DECLARED LOSS: {pod} lacks {len(declared_lost)} acked id(s) the declared old MAIN "
                   f"acknowledged: {_short(sorted(declared_lost))}")
    have = set(tl.final.ids_by_pod.get(pod, ())) if tl.final is not None else set()
    told = sorted(a.id for a in told_committed(tl) if a.id not in have)
    if told:
        out.append(f"DECLARED LOSS: {pod} lacks {len(told)} id(s) the declared old MAIN answered 'still "
                   f"committed on the main instance': {_short(told)}")
    return out
