"""The fence step of a failover (issue 16 item 5): fence the old MAIN first, or say why it cannot be.

Role: for the planner's failover rule, read the leader's notes about earlier fences of this MAIN (this
incarnation and generation only) and either put `Fence(old MAIN, its UID, the record generation)` in the
plan or, where the pod cannot be fenced and Kubernetes also sees it down, say so (an Event and the text
the record and the verdict carry). Split from coordinator/core/planner.py, which calls it.

Must never: do I/O, or let a failover of a Ready pod go ahead without a confirmed fence.
"""

from __future__ import annotations

from coordinator.core.model import Fence, FenceMiss
from coordinator.core.rules import Plan, View


def note(notes: dict[str, FenceMiss], view: View, main: str) -> FenceMiss | None:
    """The note about fencing `main` in this incarnation and generation, if any (older ones do not count)."""
    pod, found = view.pod(main), notes.get(main)
    if pod is None or found is None or found.uid != pod.uid or found.generation != view.record.generation:
        return None
    return found


def fence_or_say(view: View, plan: Plan, candidate: str, ready: bool) -> str:
    """Issue 16 item 5 (reference memgraph-replication.md 7.2): a MAIN paused between the STRICT_SYNC votes
    and its local commit commits on resume and acknowledges a write the promoted replica aborted. So the old
    MAIN's agent kills its Memgraph and confirms before the promotion (the executor stops the cycle when it
    cannot: no promotion). Where nothing of the pod answers (or its agent cannot fence) and Kubernetes
    also sees the pod down (not Ready, gone, terminating), the failover goes ahead with the fence
    unconfirmed, said in the record, an Event and the verdict; a Ready pod (`ready`) is failed over only
    with a confirmed fence (its agent saw its Memgraph stopped or not answering locally and killed it).
    Returns "confirmed" or "unconfirmed (<why>)"."""
    old, gen = view.record.main, view.record.generation
    pod = view.pod(old)
    miss = note(view.snapshot.fence_unconfirmed, view, old)
    if pod is None or not pod.ip:
        why = "its pod is gone" if pod is None else "its pod has no IP"
    elif miss is not None and not ready:
        why = miss.reason
    else:
        plan.actions.append(Fence(old, pod.uid, gen))
        return "confirmed"
    plan.event("FenceUnconfirmed", f"{old} could not be fenced ({why}); promoting {candidate} after "
               "failoverAfter anyway: a paused old MAIN may still acknowledge a write the new MAIN lacks",
               old, True)
    return f"unconfirmed ({why})"
