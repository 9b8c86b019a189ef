"""What the clients saw, judged: the parts of the checker that read the writer's and reader's records.

Role: pure functions over a `sim.timeline.Timeline` that `sim.check` folds into its results --
`acks_off_record` (I1: no write acknowledged by a pod that is not the MAIN the cluster record names at
that moment: the seed incident of two MAINs fed by pooled connections; one allowance: the record names
a hand-over target before it is promoted -- "record first", so any leader can finish the hand-over --
and until the target reports MAIN in a role sample, the previous MAIN is still the only Memgraph MAIN:
its acknowledgements on pooled connections need the target's STRICT_SYNC vote and are not a second
writer), `failed_but_present` (I3: a
write the client saw fail must not be committed anywhere; unknown outcomes are neither required nor
forbidden), and `reads_off_target` (no read answered by a pod that was neither a ready replica nor the
MAIN, allowing the EndpointSlice propagation delay and the sampling lag). Every allowance is a
parameter and shows in the evidence text.

Must never: do I/O, or judge an attempt whose backend or time it cannot see (those are counted, not
guessed).
"""

from __future__ import annotations

import itertools

from sim.timeline import ERROR, RecordSample, Timeline, WriteAttempt


def acks_off_record(tl: Timeline, lag_s: float) -> list[str]:
    """Acknowledged writes whose backend pod was not the record's MAIN in [start - lag, end + lag]
    (the last record sample before that window counts too), nor the record's previous MAIN while the
    newly named one had not yet reported MAIN in any role sample (see the module docstring)."""
    return [text for _, text in acks_off_record_by(tl, lag_s)]


def acks_off_record_by(tl: Timeline, lag_s: float) -> list[tuple[WriteAttempt, str]]:
    """`acks_off_record` with the attempt of each finding."""
    recs = sorted(tl.records, key=lambda r: r.t)
    if not recs:
        return []
    handovers = _handovers(tl, recs)
    out = []
    for a in tl.attempts:
        if not a.acked or not a.backend:
            continue
        lo, hi = a.t_start - lag_s, a.t_end + lag_s
        mains = {r.main for r in recs if lo <= r.t <= hi}
        before = [r for r in recs if r.t < lo]
        if before:
            mains.add(before[-1].main)
        if mains and a.backend_pod not in mains and not any(
                prev == a.backend_pod and t_change <= a.t_end and a.t_end <= promoted + lag_s
                for prev, t_change, promoted in handovers):
            out.append((a, f"write {a.id} acknowledged by {a.backend_pod} at t={a.t_end:.3f} while the "
                       f"record named {', '.join(sorted(m or '(none)' for m in mains))} (lag {lag_s:.2f}s)"))
    return out


def _handovers(tl: Timeline, recs: list[RecordSample]) -> list[tuple[str, float, float]]:
    """(previous MAIN, when the record first named another, when that one first reported MAIN) for
    each change of the record's MAIN whose new MAIN was seen reporting MAIN afterwards."""
    out = []
    for prev, cur in itertools.pairwise(recs):
        if not prev.main or cur.main == prev.main:
            continue
        promoted = [s.t for s in tl.samples if s.pod == cur.main and s.role == "main" and s.t >= cur.t]
        if promoted:
            out.append((prev.main, cur.t, min(promoted)))
    return out


def failed_but_present(tl: Timeline) -> list[str]:
    """Writes recorded as failed (a definite error before commit) that some pod holds at the end."""
    if tl.final is None:
        return []
    failed = {a.id for a in tl.attempts if a.outcome == ERROR}
    out = []
    for pod, ids in sorted(tl.final.ids_by_pod.items()):
        present = failed & set(ids)
        if present:
            shown = ", ".join(sorted(present)[:10])
            out.append(f"{pod} holds {len(present)} write(s) the client was told failed: {shown}")
    return out


def reads_off_target(tl: Timeline, lag_s: float) -> tuple[list[str], int, int]:
    """Answered reads whose pod was, in every sample of [start - delay - lag, end + lag], neither a ready
    replica nor the MAIN. Returns (evidence, reads judged, reads not judgeable)."""
    by_pod: dict[str, list[tuple[float, bool]]] = {}
    for s in tl.samples:
        ok = (s.role == "replica" and s.ready) or s.role == "main"
        by_pod.setdefault(s.pod, []).append((s.t, ok))
    evidence, judged, unjudged = [], 0, 0
    for r in tl.reads:
        if not r.ok or not r.backend:
            continue
        lo, hi = r.t_start - tl.endpoint_delay_s - lag_s, r.t_end + lag_s
        seen = [ok for t, ok in by_pod.get(r.backend_pod, []) if lo <= t <= hi]
        if not seen:
            unjudged += 1
            continue
        judged += 1
        if not any(seen):
            evidence.append(f"read at t={r.t_start:.3f} answered by {r.backend_pod}, which was neither a "
                            f"ready replica nor the MAIN in [{lo:.3f}, {hi:.3f}]")
    return evidence, judged, unjudged
