"""Fault controls of the Kubernetes API emulator: outages, latency, injected errors, request counters.

Role: the state tests change to make the API server misbehave, and the per-client request counters used
for load measurements. The HTTP server consults it on every request; the emulator object and the admin
endpoint change it. Outage modes: `refuse` (the listening socket is closed: connections are refused),
`503` (every request answers 503 with a Status), `hang` (requests are accepted and never answered, and
open watch streams deliver nothing, until the outage ends or the client gives up).

Stale views (`set_stale_view`): one client, told apart by its source address (on the namespaced bed
each pod has its own 198.18.x.y address), learns of changes to chosen resources `delay_s` late -- its
LIST answers the state as it was `delay_s` ago and its WATCH delivers each change `delay_s` after it was
committed, in order, from where the list left off (reference bolt-and-kube-emulation.md 3.4: "A specific
RV: replay the changes *after* it"; "`resourceVersion` unset or "0": first send synthetic `ADDED` events
for every current matching object" -- current as of `delay_s` ago here). That is a lagging watch cache or
a slow path between that client and the API server, for reads only: its writes, and a GET of one object
(a quorum read from etcd in the apiserver when no resourceVersion is given), stay current.

Must never: sleep while holding its lock, or apply a fault to the admin endpoint.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

OUTAGE_MODES = ("refuse", "503", "hang")
MAX_HANG_S = 600.0  # a hung request is released after this long even if the outage is never cleared


@dataclass(frozen=True)
class Outage:
    mode: str
    until: float | None  # on the faults clock; None = until cleared


@dataclass
class Injection:
    """Answer the next `remaining` requests matching verb and path with `code`."""

    code: int
    verb: str | None
    path: re.Pattern[str]
    remaining: int

    def matches(self, verb: str, path: str) -> bool:
        return self.remaining > 0 and (self.verb in (None, verb)) and self.path.search(path) is not None


@dataclass(frozen=True)
class StaleView:
    """What one client sees late: `resources` (plural names, e.g. "pods") through `verbs`."""

    delay_s: float
    resources: frozenset[str]
    verbs: frozenset[str]


STALE_VERBS = ("list", "watch")


class Faults:
    """Thread-safe fault state. `clock` (monotonic seconds) times outage windows."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.cond = threading.Condition()
        self._outage: Outage | None = None
        self._latency: dict[str, float] = {}  # path prefix ("" = every path) -> milliseconds
        self._injections: list[Injection] = []
        self._counters: Counter[tuple[str, str]] = Counter()
        self._stale: dict[str, StaleView] = {}  # client source address -> its stale view

    # ---- outages -----------------------------------------------------------------------------

    def set_outage(self, mode: str, seconds: float | None = None) -> None:
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage mode must be one of {OUTAGE_MODES}, not {mode!r}")
        with self.cond:
            self._outage = Outage(mode, None if seconds is None else self.clock() + seconds)
            self.cond.notify_all()
        log.info("kube emulator outage started mode=%s seconds=%s", mode, seconds)

    def clear_outage(self) -> str | None:
        """End the outage; returns the mode that ended (None if there was none)."""
        with self.cond:
            ended = self._outage.mode if self._outage else None
            self._outage = None
            self.cond.notify_all()
        if ended:
            log.info("kube emulator outage ended mode=%s", ended)
        return ended

    def expire_outage(self) -> str | None:
        """End the outage if its window is over; returns the mode that ended."""
        with self.cond:
            o = self._outage
            if o is None or o.until is None or self.clock() < o.until:
                return None
        return self.clear_outage()

    def outage_mode(self) -> str | None:
        with self.cond:
            return self._outage.mode if self._outage else None

    def hold(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` while a `hang` outage lasts; True if it still lasts."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while self._outage is not None and self._outage.mode == "hang":
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self.cond.wait(remaining)
            return False

    # ---- latency and injected errors -----------------------------------------------------------

    def set_latency(self, ms: float, path_prefix: str = "") -> None:
        with self.cond:
            if ms <= 0:
                self._latency.pop(path_prefix, None)
            else:
                self._latency[path_prefix] = float(ms)

    def clear_latency(self) -> None:
        with self.cond:
            self._latency.clear()

    def delay_s(self, path: str) -> float:
        """Added latency for `path`: the sum of every matching rule."""
        with self.cond:
            return sum(ms for prefix, ms in self._latency.items() if path.startswith(prefix)) / 1000.0

    def inject(self, code: int, verb: str | None = None, path_regex: str = ".*", count: int = 1) -> None:
        """Answer the next `count` requests whose Kubernetes verb (get, list, watch, create, update,
        patch, delete) and path match with an error `code` (409 and 403 get the apiserver's wording)."""
        with self.cond:
            self._injections.append(Injection(code, verb, re.compile(path_regex), count))

    def clear_injections(self) -> None:
        with self.cond:
            self._injections.clear()

    def take_injection(self, verb: str, path: str) -> int | None:
        with self.cond:
            for inj in self._injections:
                if inj.matches(verb, path):
                    inj.remaining -= 1
                    return inj.code
            return None

    # ---- stale views ---------------------------------------------------------------------------

    def set_stale_view(self, client: str, delay_s: float, resources: tuple[str, ...] = ("pods",),
                       verbs: tuple[str, ...] = STALE_VERBS) -> None:
        """From now on, requests from source address `client` see `resources` `delay_s` late through
        `verbs` (a subset of list and watch; see the module docstring). Watch streams already open follow
        it from their next batch of changes."""
        if delay_s <= 0:
            raise ValueError("a stale view needs a delay > 0 (clear_stale_view ends one)")
        bad = set(verbs) - set(STALE_VERBS)
        if bad or not verbs or not resources:
            raise ValueError(f"verbs must be a non-empty subset of {STALE_VERBS} and resources non-empty")
        with self.cond:
            self._stale[client] = StaleView(float(delay_s), frozenset(resources), frozenset(verbs))
        log.info("kube emulator stale view client=%s delay_s=%g resources=%s verbs=%s", client, delay_s,
                 ",".join(sorted(resources)), ",".join(sorted(verbs)))

    def clear_stale_view(self, client: str | None = None) -> None:
        """End the stale view of `client` (every client's when None)."""
        with self.cond:
            if client is None:
                self._stale.clear()
            else:
                self._stale.pop(client, None)
        log.info("kube emulator stale view cleared client=%s", client or "*")

    def stale_delay(self, client: str, verb: str, resource: str) -> float:
        """How late `client` sees `resource` through `verb` (0: current)."""
        with self.cond:
            view = self._stale.get(client)
        if view is None or verb not in view.verbs or resource not in view.resources:
            return 0.0
        return view.delay_s

    # ---- counters ------------------------------------------------------------------------------

    def count(self, user_agent: str, verb: str) -> None:
        with self.cond:
            self._counters[(user_agent, verb)] += 1

    def counters(self) -> dict[str, dict[str, int]]:
        """{user agent: {verb: requests}} since the last reset."""
        out: dict[str, dict[str, int]] = {}
        with self.cond:
            for (ua, verb), n in sorted(self._counters.items()):
                out.setdefault(ua, {})[verb] = n
        return out

    def reset_counters(self) -> None:
        with self.cond:
            self._counters.clear()

    def describe(self) -> dict[str, object]:
        with self.cond:
            o = self._outage
            return {
                "outage": None
                if o is None
                else {
                    "mode": o.mode,
                    "remaining_s": None if o.until is None else max(0.0, o.until - self.clock()),
                },
                "latency_ms": dict(self._latency),
                "stale_views": {c: {"delay_s": v.delay_s, "resources": sorted(v.resources),
                                    "verbs": sorted(v.verbs)} for c, v in sorted(self._stale.items())},
                "injections": [
                    {"code": i.code, "verb": i.verb, "path": i.path.pattern, "remaining": i.remaining}
                    for i in self._injections
                    if i.remaining > 0
                ],
            }
