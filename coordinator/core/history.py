"""The last changes of MAIN (switchovers and failovers), kept in the cluster record.

Role: a short, bounded list of `Transition`s carried in one annotation of the Lease
(`memgraph-ha.io/history`, compact JSON, newest last, at most `KEEP` entries), so the history survives a
leader change: every leader reads the record it inherits. Pure codec and list operations only; the
planner (failovers) and the coordinator (switchovers, and the write pause a failover only knows later)
decide what to add.

What the durations measure (docs/api.md "history"):
- `duration_s`: a failover: how long the old MAIN had been unreachable, as the deciding leader saw it,
  when the replica was promoted; a switchover: the whole procedure, from its start to the new MAIN
  labelled (or to its failure).
- `write_pause_s`: how long no pod carried `memgraph-ha.io/role=main` as the coordinator set it, i.e.
  no new client connection could reach a MAIN through the Service. A switchover: from the label
  removed from the old MAIN to the label set on the new one (both answered by the API server). A
  failover: from the deciding leader's first failed probe of the old MAIN to the new MAIN labelled;
  null when a different leader labelled it (the two monotonic clocks cannot be compared) or not yet.
  Clients may see it longer (endpoint propagation, driver retries) or shorter (connections already
  open to the old MAIN keep writing until it is demoted).

Must never: do I/O, raise on an annotation written by another version (bad text reads as an empty
history and is reported), or grow past `KEEP` entries (annotations share the Lease's size limit).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from coordinator.core.outcomes import SwitchoverOutcome, TransitionKind

KEEP = 10
DONE = "done"  # a transition's outcome when the MAIN moved


@dataclass(frozen=True)
class Transition:
    """One change (or attempted change) of MAIN. `at` is wall-clock UTC epoch seconds."""

    kind: TransitionKind
    from_pod: str
    to_pod: str  # "" when a switchover did not hand over
    generation: int  # the record generation after it
    at: float
    duration_s: float
    write_pause_s: float | None = None
    outcome: str = DONE  # a switchover's outcome: done | no-target | timeout | failed (switchover_outcome)


def switchover_outcome(outcome: SwitchoverOutcome) -> str:
    """A switchover's outcome as the history names it: `done`, or the SwitchoverOutcome's text."""
    return DONE if outcome is SwitchoverOutcome.DONE else outcome.value


def _entry(t: Transition) -> dict[str, Any]:
    raw = asdict(t)
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in raw.items()}


def parse(text: str) -> tuple[tuple[Transition, ...], str]:
    """The transitions held in `text` (oldest first) and a problem ("" when none)."""
    if not text.strip():
        return (), ""
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("not a list")
        out = tuple(_transition(item) for item in items)
    except (ValueError, TypeError, KeyError) as exc:
        return (), f"history annotation unreadable ({type(exc).__name__}: {exc}); shown empty"
    return out[-KEEP:], ""


def _transition(item: Any) -> Transition:
    if not isinstance(item, dict):
        raise ValueError(f"bad entry {item!r:.80}")
    pause = item.get("write_pause_s")
    return Transition(
        kind=TransitionKind(str(item.get("kind"))),
        from_pod=str(item.get("from_pod", "")),
        to_pod=str(item.get("to_pod", "")),
        generation=int(item.get("generation", 0)),
        at=float(item.get("at", 0.0)),
        duration_s=float(item.get("duration_s", 0.0)),
        write_pause_s=None if pause is None else float(pause),
        outcome=str(item.get("outcome", DONE)),
    )


def encode(items: tuple[Transition, ...]) -> str:
    """Compact JSON of the last `KEEP` transitions."""
    return json.dumps([_entry(t) for t in items[-KEEP:]], separators=(",", ":"))


def append_transition(text: str, transition: Transition) -> str:
    """`text` with `transition` appended (the oldest dropped beyond `KEEP`)."""
    items, _ = parse(text)
    return encode((*items, transition))


def with_write_pause(text: str, generation: int, to_pod: str, write_pause_s: float) -> str | None:
    """`text` with the write pause filled in on the failover that made `to_pod` MAIN at `generation`;
    None when there is no such failover still waiting for it."""
    items, _ = parse(text)
    for i in range(len(items) - 1, -1, -1):
        t = items[i]
        if t.kind is TransitionKind.FAILOVER and t.generation == generation and t.to_pod == to_pod:
            if t.write_pause_s is not None:
                return None
            done = replace(t, write_pause_s=write_pause_s)
            return encode((*items[:i], done, *items[i + 1:]))
    return None


def as_status(text: str) -> list[dict[str, Any]]:
    """The history for the status document: newest first, field names as docs/api.md lists them."""
    items, _ = parse(text)
    return [
        {
            "kind": t.kind.value,
            "from": t.from_pod or None,
            "to": t.to_pod or None,
            "generation": t.generation,
            "at": round(t.at, 3),
            "duration_s": round(t.duration_s, 3),
            "write_pause_s": None if t.write_pause_s is None else round(t.write_pause_s, 3),
            "outcome": t.outcome,
        }
        for t in reversed(items)
    ]
