"""sim.bench_recovery.OldMainWatch: how long a returning former MAIN answered as MAIN (the bench's
`restarted_main_window_s` / `thawed_main_window_s`), on a scripted role sequence and a fake clock."""

from __future__ import annotations

from typing import Any

from sim.bench_recovery import OldMainWatch


class Scripted(OldMainWatch):
    """Each poll answers the next scripted (role, seconds the poll takes) pair."""

    def __init__(self, script: list[tuple[str | None, float]]) -> None:
        self.now = 0.0
        super().__init__(cluster=Any, pod="memgraph-0", bound_s=60.0, clock=lambda: self.now,  # type: ignore[arg-type]
                         sleep=self._advance)
        self.script = list(script)

    def _advance(self, s: float) -> None:
        self.now += s

    def _role(self) -> str | None:
        role, took = self.script.pop(0) if self.script else ("replica", 0.0)
        self.now += took
        return role


def test_only_the_time_it_answered_main_counts_not_the_time_it_was_down() -> None:
    # thawed as MAIN for 2 polls, killed by a late fence (3 s without an answer), restarted as MAIN for
    # one poll, then demoted
    w = Scripted([("main", 0.0), ("main", 0.0), (None, 1.0), (None, 2.0), ("main", 0.0), ("replica", 0.0)])
    w._run()
    step = w.POLL_S
    # main -> main: 1 step; main -> (None after 1 s): step + 1.0; restarted main -> replica: 1 step
    assert w.window_s is not None and abs(w.window_s - (3 * step + 1.0)) < 1e-9


def test_a_former_main_that_comes_back_as_replica_has_no_window() -> None:
    w = Scripted([(None, 0.5), ("replica", 0.0)])
    w._run()
    assert w.window_s == 0.0


def test_one_that_never_comes_back_within_the_bound_has_no_figure() -> None:
    w = Scripted([(None, 61.0)])
    w._run()
    assert w.window_s is None
