"""Coordinator.switchover holds its caller at most `budget_s` in all: the wait for a reconcile cycle in
progress (the coordinator's lock) counts against the budget the switchover itself then gets (a preStop's
or a hand-over request's reply must arrive inside the caller's own timeout)."""

from __future__ import annotations

from typing import Any

from coordinator.core.outcomes import SwitchoverOutcome
from coordinator.runtime.procedures import SwitchoverResult
from coordinator.runtime.reconciler import Coordinator
from tests.unit.runtime.test_reconciler_fence import FakeClock, World, coordinator


class SlowLock:
    """A lock whose acquisition takes `wait_s` on the fake clock (a cycle was running)."""

    def __init__(self, clock: FakeClock, wait_s: float) -> None:
        self.clock, self.wait_s = clock, wait_s
        self.held = False

    def acquire(self, timeout: float = -1) -> bool:
        self.clock.t += self.wait_s
        self.held = True
        return True

    def release(self) -> None:
        assert self.held, "released a lock that was not held"
        self.held = False


def _run(wait_s: float, budget_s: float) -> tuple[SwitchoverResult, list[float], SlowLock]:
    clock = FakeClock()
    c: Any = coordinator(World(), clock)
    lock = SlowLock(clock, wait_s)
    c._lock = lock
    budgets: list[float] = []

    def locked(old: str, to: str | None, budget: float, step: Any) -> SwitchoverResult:
        budgets.append(budget)
        return SwitchoverResult(SwitchoverOutcome.DONE, old, "memgraph-1", 0.1)

    c._switchover_locked = locked
    result = Coordinator.switchover(c, "memgraph-0", None, budget_s)
    return result, budgets, lock


def test_the_wait_for_a_running_cycle_is_taken_from_the_switchovers_budget() -> None:
    result, budgets, lock = _run(wait_s=4.0, budget_s=10.0)
    assert result.ok and budgets == [6.0] and not lock.held


def test_a_wait_that_spent_the_whole_budget_runs_no_switchover() -> None:
    result, budgets, lock = _run(wait_s=10.5, budget_s=10.0)
    assert (result.outcome, result.detail) == (SwitchoverOutcome.TIMEOUT, "coordinator busy")
    assert budgets == [] and not lock.held, "the lock is given back"
