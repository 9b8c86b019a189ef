"""coordinator.runtime.term.TermRunner through leadership terms, on a fake clock and fake threads.

Nothing here sleeps or starts a thread: `FakeSpawn` records what the runner would run on a thread and
lets the test decide when it runs and whether a bounded join sees it finish (the clock then moves by
the time the join waited).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from coordinator.runtime.term import PREVIOUS_TERM_JOIN_S, Term, TermRunner
from tests.support.clock import FakeClock


class FakeThread:
    """A thread that has not run yet: `finish()` runs its target; `join` finishes it only when allowed."""

    def __init__(self, target: Callable[[], None], name: str, clock: FakeClock, log: list[str]) -> None:
        self.target, self.name, self.clock, self.log = target, name, clock, log
        self.alive = True
        self.finishes_on_join = True

    def finish(self) -> None:
        if self.alive:
            self.target()
            self.alive = False

    def join(self, timeout: float | None = None) -> None:
        self.log.append(f"join {self.name}")
        if self.finishes_on_join:
            self.finish()
        else:
            self.clock.advance(timeout or 0.0)

    def is_alive(self) -> bool:
        return self.alive


class FakeSpawn:
    def __init__(self, clock: FakeClock, log: list[str]) -> None:
        self.clock, self.log = clock, log
        self.threads: list[FakeThread] = []

    def __call__(self, target: Callable[[], None], name: str) -> FakeThread:
        thread = FakeThread(target, name, self.clock, self.log)
        self.threads.append(thread)
        self.log.append(f"spawn {name}")
        return thread

    def named(self, name: str) -> list[FakeThread]:
        return [t for t in self.threads if t.name == name]


class FakeCoordinator:
    def __init__(self, n: int, log: list[str]) -> None:
        self.n, self.log = n, log

    def run(self, stop: threading.Event) -> None:
        self.log.append(f"loop {self.n} ran, stop={stop.is_set()}")

    def wake(self) -> None:
        self.log.append(f"wake {self.n}")


class FakeWatch:
    def __init__(self, n: int, log: list[str]) -> None:
        self.n, self.log = n, log

    def stop(self) -> None:
        self.log.append(f"watch {self.n} stopped")


class Fixture:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.clock = FakeClock()
        self.spawn = FakeSpawn(self.clock, self.log)
        self.changes: list[bool] = []
        self.built = 0
        self.runner: TermRunner[FakeCoordinator] = TermRunner(
            self.build, on_change=self.changes.append, spawn=self.spawn, clock=self.clock
        )

    def build(self) -> Term[FakeCoordinator]:
        self.built += 1
        self.log.append(f"build {self.built}")
        return Term(FakeCoordinator(self.built, self.log), FakeWatch(self.built, self.log))


@pytest.fixture
def f() -> Fixture:
    return Fixture()


def test_two_terms_the_second_starts_only_after_the_first_loop_ended(f: Fixture) -> None:
    f.runner.started()
    first = f.runner.coordinator
    assert first is not None and first.n == 1 and f.runner.leading.is_set()
    f.runner.stopped()
    assert f.runner.coordinator is None and not f.runner.leading.is_set()
    f.runner.started()  # the elector re-acquired the Lease: term 2, while loop 1 has not run out yet
    second = f.runner.coordinator
    assert second is not None and second.n == 2
    assert f.log == [
        "build 1", "spawn coordinator",
        "wake 1", "spawn pod-watch-stop",
        "join coordinator", "loop 1 ran, stop=True",  # the bounded wait saw loop 1 end ...
        "build 2", "spawn coordinator",  # ... before term 2's coordinator was built
    ]
    assert f.changes == [True, False, True] and f.runner.terms == 2


def test_the_pod_watch_is_stopped_on_a_side_thread_so_the_lease_release_never_waits(f: Fixture) -> None:
    f.runner.started()
    f.runner.stopped()
    assert "watch 1 stopped" not in f.log  # stopped() returned without stopping the watch itself
    (side,) = f.spawn.named("pod-watch-stop")
    side.finish()
    assert f.log[-1] == "watch 1 stopped"


def test_an_overrunning_previous_term_is_waited_for_at_most_the_bound_and_logged(
    f: Fixture, caplog: pytest.LogCaptureFixture
) -> None:
    f.runner.started()
    f.runner.stopped()
    (loop1,) = f.spawn.named("coordinator")
    loop1.finishes_on_join = False  # a step of term 1 is still running (e.g. a Bolt call)
    start = f.clock()
    with caplog.at_level(logging.WARNING, logger="coordinator.runtime.term"):
        f.runner.started()
    assert f.clock() - start == PREVIOUS_TERM_JOIN_S
    assert f.runner.coordinator is not None and f.runner.coordinator.n == 2
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "previous term's coordinator is still running" in record.getMessage()
    assert record.fields == {"waited_s": PREVIOUS_TERM_JOIN_S, "bound_s": PREVIOUS_TERM_JOIN_S}  # type: ignore[attr-defined]


def test_a_second_start_within_one_term_builds_nothing(f: Fixture) -> None:
    f.runner.started()
    f.runner.started()
    assert f.built == 1 and f.changes == [True]


def test_a_stop_without_a_term_reports_no_change(f: Fixture) -> None:
    f.runner.stopped()
    assert f.changes == [] and f.spawn.threads == []


def test_stopped_with_a_join_waits_for_the_loop_to_end(f: Fixture) -> None:
    f.runner.started()
    f.runner.stopped(join_s=3.0)
    assert f.log[-2:] == ["join coordinator", "loop 1 ran, stop=True"]


def test_after_close_no_term_starts(f: Fixture) -> None:
    f.runner.started()
    f.runner.close(join_s=3.0)
    f.runner.started()
    assert f.built == 1 and f.runner.coordinator is None and f.changes == [True, False]
