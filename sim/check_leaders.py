"""One coordinator at a time: at most one pod incarnation acts as the coordinator at any instant.

Role: judge a list of coordinator actions, each with its time and the pod incarnation that made it (pod
name and UID: `Actor`), as `sim.leader_acts` gathers them from the emulators' own records (the API
server's audit log, each Memgraph's command audit), never from the agents' logs. Issue 16 item 3: an
old incarnation of a pod (cut off, force-deleted, still running) and its replacement must never both
act as the coordinator, so actions are counted per incarnation, not per pod name.

The rule. Two coordinators acted at once when an incarnation A acted at a1 and again at a2, with
a2 - a1 <= `window_s` (the Lease duration), and another incarnation B acted at b in between
(a1 < b < a2) -- unless A released the Lease in [a1, a2) or B released it in [b, a2).
Why a single leader at a time never breaks it:
- a leader renews the Lease every retry period (2 s by default) and each renewal is an action, so its
  actions are never a Lease duration (15 s) apart while it leads;
- a lawful change of leader needs the Lease to expire (a candidate takes it over only after seeing it
  unchanged for its whole duration) or its holder to release it: A -> B -> A with no release needs two
  expiries, and A's last action comes at the latest a renew deadline after its last renewal, so a2 - a1
  >= 2 x lease duration - renew deadline (20 s by default) > window_s; with a release, the rule's
  exception applies (the releasing incarnation's earlier actions no longer overlap anything).
So an A, B, A pattern inside one Lease duration is a second coordinator acting, or a first one acting
on while it no longer leads.
What it cannot see: a coordinator that acts while no other one does (nothing to overlap), and actions
the emulators do not record (requests to another pod's agent, e.g. the fence).

Must never: do I/O, or treat two incarnations of one pod name as the same actor.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

SHOWN = 5  # overlaps written out in a verdict; the rest are counted


@dataclass(frozen=True, order=True)
class Actor:
    """A pod incarnation: the pod's name and the UID of this incarnation."""

    pod: str
    uid: str

    def __str__(self) -> str:
        return f"{self.pod}/{self.uid[:8]}"


@dataclass(frozen=True)
class Act:
    """One coordinator action: when (monotonic seconds), by whom, what, through which emulator."""

    t: float
    actor: Actor
    what: str
    channel: str  # "api" or "memgraph"
    release: bool = False  # a write that emptied the Lease's holder: the actor's tenure ends here

    def text(self, t0: float) -> str:
        return f"{self.t - t0:.2f}s {self.actor} {self.channel}: {self.what}"


@dataclass(frozen=True)
class Overlap:
    """A acted at a1 and a2, B at b in between, within the window and with no release that ends it."""

    a1: Act
    b: Act
    a2: Act

    def text(self, t0: float) -> str:
        a1, b, a2 = self.a1, self.b, self.a2
        return (f"{a1.actor} acted at {a1.t - t0:.2f}s ({a1.what}) and at {a2.t - t0:.2f}s ({a2.what}); "
                f"{b.actor} acted between, at {b.t - t0:.2f}s ({b.what})")


@dataclass(frozen=True)
class ActorSummary:
    actor: Actor
    api: int
    memgraph: int
    first: float
    last: float

    def text(self, t0: float) -> str:
        return (f"{self.actor}: {self.api + self.memgraph} actions (api {self.api}, memgraph "
                f"{self.memgraph}) from {self.first - t0:.2f}s to {self.last - t0:.2f}s")


@dataclass(frozen=True)
class Verdict:
    window_s: float
    overlaps: tuple[Overlap, ...]
    actors: tuple[ActorSummary, ...]

    @property
    def ok(self) -> bool:
        return not self.overlaps

    def render(self, t0: float = 0.0) -> str:
        head = ("one coordinator at a time" if self.ok else
                f"two coordinators acted at once: {len(self.overlaps)} overlap(s) within "
                f"{self.window_s:g}s")
        lines = [head, *(f"  {s.text(t0)}" for s in self.actors)]
        lines += [f"  overlap: {o.text(t0)}" for o in self.overlaps[:SHOWN]]
        if len(self.overlaps) > SHOWN:
            lines.append(f"  ... and {len(self.overlaps) - SHOWN} more")
        return "\n".join(lines)


def judge(acts: Iterable[Act], window_s: float) -> Verdict:
    """The verdict of the rule in the module docstring over `acts` (any order)."""
    ordered = sorted(acts, key=lambda a: a.t)
    by_actor: dict[Actor, list[Act]] = defaultdict(list)
    for act in ordered:
        by_actor[act.actor].append(act)
    times = {actor: [a.t for a in mine] for actor, mine in by_actor.items()}
    releases = {actor: [a.t for a in mine if a.release] for actor, mine in by_actor.items()}
    overlaps = []
    for b in ordered:
        for actor, mine in by_actor.items():
            if actor == b.actor:
                continue
            before, after = bisect.bisect_left(times[actor], b.t), bisect.bisect_right(times[actor], b.t)
            if before == 0 or after == len(mine):
                continue
            a1, a2 = mine[before - 1], mine[after]
            if a2.t - a1.t > window_s:
                continue
            if _released(releases[actor], a1.t, a2.t) or _released(releases[b.actor], b.t, a2.t):
                continue
            overlaps.append(Overlap(a1, b, a2))
    summaries = tuple(_summary(actor, mine) for actor, mine in sorted(by_actor.items()))
    return Verdict(window_s, tuple(overlaps), summaries)


def _released(release_times: list[float], start: float, end: float) -> bool:
    """A release at or after `start` and before `end`."""
    i = bisect.bisect_left(release_times, start)
    return i < len(release_times) and release_times[i] < end


def _summary(actor: Actor, mine: list[Act]) -> ActorSummary:
    api = sum(1 for a in mine if a.channel == "api")
    return ActorSummary(actor, api, len(mine) - api, mine[0].t, mine[-1].t)
