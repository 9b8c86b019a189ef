"""preStop's request and its join: concurrent or repeated preStop calls share one run (reference B.2).

Role: hold the body of `POST /api/v1/prestop` (`PrestopRequest`) and make a call that arrives while a run
is in progress wait for that run's result, bounded by its own budget (`PrestopJoin`); a confirmed result is
answered again per pod UID. Split from agent/api.py, which stays the HTTP layer.

Must never: run two preStop hand-overs at once, wait without a bound, or remember an unbounded number of
answers (a caller may send any UID).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coordinator.core import defaults

log = logging.getLogger(__name__)

KEEP_CONFIRMED = 16  # confirmed preStop answers remembered (per pod UID; a pod has one UID)
Result = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class PrestopRequest:
    """Body of `POST /api/v1/prestop` as the hook sends it."""

    pod: str
    uid: str = ""
    budget_s: float = defaults.PRESTOP_BUDGET_S  # a preStop request that names no budget


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: Result = (503, {"retry_after_s": 1})


class PrestopJoin:
    """Idempotent preStop (hooks are delivered at least once, reference B.2): one run at a time.

    A call that arrives while a run is in progress waits for that run's result (bounded by its own budget)
    instead of starting another. A confirmed result (200) is remembered per pod UID and answered again at
    once; other results are not remembered, so the hook's retry runs the services' prestop again.
    """

    def __init__(self, run: Callable[[PrestopRequest], Result], on_result: Callable[[Result], None]) -> None:
        self._run, self._on_result = run, on_result
        self._lock = threading.Lock()
        self._flight: _Flight | None = None
        self._confirmed: dict[str, Result] = {}
        self._waiters = 0

    @property
    def waiters(self) -> int:
        """Calls waiting right now for the run in progress."""
        with self._lock:
            return self._waiters

    def call(self, req: PrestopRequest) -> tuple[Result, bool]:
        """Return (result, joined): joined is True when this call did not run the services' prestop."""
        with self._lock:
            if req.uid in self._confirmed:
                return self._confirmed[req.uid], True
            flight, owner = self._flight, self._flight is None
            if flight is None:
                flight = self._flight = _Flight()
            else:
                self._waiters += 1
        if not owner:
            try:
                if flight.done.wait(timeout=max(0.0, req.budget_s)):
                    return flight.result, True
                return (202, {"retry_after_s": 1, "detail": "hand-over in progress"}), True
            finally:
                with self._lock:
                    self._waiters -= 1
        result: Result = (500, {"error": "internal", "detail": "prestop failed; see the agent log"})
        try:
            result = self._run(req)
        except Exception:
            log.exception("prestop handler raised; answering 500")
        finally:
            with self._lock:
                self._flight = None
                if result[0] == 200:
                    self._confirmed[req.uid] = result
                    while len(self._confirmed) > KEEP_CONFIRMED:  # bounded: a caller may send any UID
                        del self._confirmed[next(iter(self._confirmed))]
            flight.result = result
            flight.done.set()
        self._on_result(result)
        return result, False
