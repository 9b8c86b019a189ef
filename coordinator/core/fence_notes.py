"""What the leader remembers about fences between cycles, and how that memory stays bounded.

Role: the reconciler keeps, per old MAIN pod, the last fence that could not be confirmed (nothing of the
pod answered, or its agent cannot fence) and the last one its agent refused (its Memgraph answers
locally); the planner reads both from the Snapshot (issue 16 item 5, review defects c and d). This
module says what to do with them after a cycle: which notes to keep, and which change deserves a log
line (a change, not every cycle).

Must never: do I/O, or keep a note about a generation older than the latest few (a long-lived leader
would otherwise carry one per old incarnation for ever).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from coordinator.core.model import Action, Fence, FenceMiss

KEEP_GENERATIONS = 2  # notes about the record's generation and the one before it
MAX_NOTES = 8  # and never more than this many, the newest generations first


def prune(notes: Mapping[str, FenceMiss], generation: int, keep: int = KEEP_GENERATIONS,
          cap: int = MAX_NOTES) -> dict[str, FenceMiss]:
    """The notes that still name one of the latest `keep` generations (<= `generation`), at most `cap`."""
    fresh = [(pod, n) for pod, n in notes.items() if generation - keep < n.generation <= generation]
    fresh.sort(key=lambda item: (-item[1].generation, -item[1].at, item[0]))
    return dict(fresh[:cap])


def refusals_after(refused: Mapping[str, FenceMiss], planned: Sequence[Action], confirmed: Sequence[Fence],
                   new: tuple[str, FenceMiss] | None) -> tuple[dict[str, FenceMiss], list[str]]:
    """The refusal notes after a cycle, and one text per change worth a log line.

    `planned`: the cycle's actions (a pod whose fence was not planned is no longer withheld: its MAIN
    answers again, or it is no longer the record's MAIN); `confirmed`: the fences that succeeded; `new`:
    the refusal of this cycle, if any. A refusal repeated with the same reason is no change."""
    fenced = {f.pod for f in confirmed}
    asked = {a.pod for a in planned if isinstance(a, Fence)}
    out: dict[str, FenceMiss] = {}
    changes: list[str] = []
    for pod, note in refused.items():
        if pod in fenced or pod not in asked:
            changes.append(f"{pod}: failover no longer withheld "
                           f"({'fenced' if pod in fenced else 'no fence asked'})")
        else:
            out[pod] = note
    if new is not None:
        pod, note = new
        before = out.get(pod)
        if before is None or (before.reason, before.uid, before.generation) != (
                note.reason, note.uid, note.generation):
            changes.append(f"{pod}: failover withheld, its agent refused the fence: {note.reason}")
        out[pod] = note
    return out, changes
