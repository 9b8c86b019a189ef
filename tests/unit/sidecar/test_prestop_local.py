"""agent.prestop.handle: what the MAIN's and a replica's agent do when their pod terminates.

A fake host stands in for the agent (the unit under test is the decision sequence), with a fake clock so
budgets are exact. The preStop record is a real file in tmp_path.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.handover import AskAnswer
from agent.prestop import PrestopConfig, handle
from coordinator.core.model import ROLE_LABEL, ClusterRecord, Role
from coordinator.core.outcomes import HandoverCheck
from coordinator.runtime.procedures import SwitchoverResult

ME = "memgraph-0"


@dataclass
class FakeHost:
    role: Role | None = Role.MAIN
    rec: ClusterRecord | None = field(default_factory=lambda: ClusterRecord(main=ME))
    leader: bool = False
    pods: int = 3
    moves_after_s: float | None = None  # the leader's switchover lands this long after the call
    clock: list[float] = field(default_factory=lambda: [0.0])
    calls: list[str] = field(default_factory=list)
    pod_name: str = ME
    check: Callable[[float], HandoverCheck] = lambda t: HandoverCheck.POSSIBLE
    checks: int = 0
    # the leader's answer to a hand-over request at time t (no leader known by default)
    answer: Callable[[float], AskAnswer] = lambda t: AskAnswer.ASK_AGAIN
    asks: list[tuple[float, float]] = field(default_factory=list)  # (clock, budget) of each request

    def request_handover(self, budget_s: float) -> tuple[AskAnswer, str]:
        self.asks.append((self.clock[0], budget_s))
        seen = self.answer(self.clock[0])
        if seen is AskAnswer.DONE and self.moves_after_s is None:
            self.moves_after_s = self.clock[0]  # the leader ran the switchover inside the request
        return seen, f"fake leader: {seen.value}"

    def handover_check(self) -> tuple[HandoverCheck, str]:
        self.checks += 1
        seen = self.check(self.clock[0])
        return seen, "" if seen is HandoverCheck.POSSIBLE else "no ready replica"

    def local_role(self) -> Role | None:
        if self.moves_after_s is not None and self.clock[0] >= self.moves_after_s:
            self.role, self.rec = Role.REPLICA, ClusterRecord(main="memgraph-1", generation=2)
        return self.role

    def record(self) -> ClusterRecord | None:
        return self.rec

    def refresh_record(self) -> ClusterRecord | None:
        self.local_role()
        return self.rec

    def is_leader(self) -> bool:
        return self.leader

    def expected_pods(self) -> int:
        return self.pods

    def run_switchover(self, budget_s: float, step: Callable[[str], None]) -> SwitchoverResult:
        self.calls.append(f"switchover budget={budget_s:.0f}")
        self.moves_after_s = self.clock[0]
        return SwitchoverResult("switchover-done", ME, "memgraph-1", 0.2)

    def patch_own_labels(self, labels: dict[str, str | None]) -> None:
        self.calls.append(f"labels {labels}")

    def hand_off_leadership(self) -> None:
        self.calls.append("hand-off")
        self.leader = False


def run(host: FakeHost, tmp_path: Path, budget: float = 30.0, no_target_s: float = 20.0
        ) -> tuple[int, dict, list[str]]:
    def sleep(s: float) -> None:
        host.clock[0] += s

    cfg = PrestopConfig(str(tmp_path), "uid-0", "10.0.0.1", drain_s=2.0, no_target_s=no_target_s)
    code, body = handle(host, cfg, budget, clock=lambda: host.clock[0], sleep=sleep)
    record = (tmp_path / "prestop-uid-0_10.0.0.1.log").read_text().splitlines()
    return code, body, record


def test_leading_main_runs_the_switchover_then_releases_leadership(tmp_path: Path) -> None:
    host = FakeHost(leader=True)
    code, body, record = run(host, tmp_path)
    assert code == 200
    assert (code, body["outcome"], body["safe_to_stop"], body["new_main"]) == (200, "switchover-done", True,
                                                                               "memgraph-1")
    assert host.calls == ["switchover budget=29", "hand-off"]
    assert any("MAIN moved to memgraph-1" in line for line in record)


def test_non_leading_main_waits_for_the_leader_to_move_the_role(tmp_path: Path) -> None:
    host = FakeHost(moves_after_s=4.0)
    code, body, _ = run(host, tmp_path)
    assert code == 200
    assert body["outcome"] == "switchover-done" and body["safe_to_stop"] is True
    assert host.calls == []  # it neither runs a switchover nor touches labels
    assert 4.0 <= host.clock[0] < 5.0


def test_main_that_is_never_relieved_is_not_safe_to_stop_and_respects_the_budget(tmp_path: Path) -> None:
    host = FakeHost()
    code, body, record = run(host, tmp_path, budget=10.0)
    assert (code, body["outcome"], body["safe_to_stop"]) == (200, "timeout", False)
    assert host.clock[0] <= 10.0  # a second of the budget is left for the hook's END line
    assert "NOT safe to stop" in record[-1]


def test_main_whose_hand_over_is_already_under_way_waits_instead_of_draining(tmp_path: Path) -> None:
    # the leader wrote the record naming memgraph-1 and is about to demote us
    host = FakeHost(rec=ClusterRecord(main="memgraph-1", generation=2), moves_after_s=0.3)
    code, body, _ = run(host, tmp_path)
    assert code == 200
    assert body["outcome"] == "switchover-done" and body["new_main"] == "memgraph-1"
    assert not any(c.startswith("labels") for c in host.calls)


def test_single_pod_cluster_stops_without_demotion(tmp_path: Path) -> None:
    host = FakeHost(pods=1, leader=True)
    code, body, _ = run(host, tmp_path)
    assert code == 200
    assert (body["outcome"], body["safe_to_stop"]) == ("no-target", True)
    assert host.calls == []


def test_replica_takes_its_label_off_drains_and_hands_off_leadership(tmp_path: Path) -> None:
    host = FakeHost(role=Role.REPLICA, leader=True)
    code, body, record = run(host, tmp_path)
    assert code == 200
    assert (body["outcome"], body["safe_to_stop"]) == ("replica-drained", True)
    assert host.calls == [f"labels {{'{ROLE_LABEL}': None}}", "hand-off"]
    assert host.clock[0] == 2.0  # drainSeconds
    assert any("draining open reads for 2.0s" in line for line in record)


def test_unreachable_memgraph_is_safe_to_stop(tmp_path: Path) -> None:
    host = FakeHost(role=None)
    code, body, _ = run(host, tmp_path)
    assert code == 200
    assert (body["outcome"], body["safe_to_stop"]) == ("memgraph-unreachable", True)


# ---- issue 16 item 8: no possible target ends the wait early -----------------------------------------


def test_main_with_no_possible_target_ends_after_the_no_target_bound_not_the_budget(tmp_path: Path) -> None:
    host = FakeHost(check=lambda t: HandoverCheck.NO_TARGET)
    code, body, record = run(host, tmp_path, budget=600.0, no_target_s=20.0)
    assert (code, body["outcome"], body["safe_to_stop"]) == (200, "no-handover", False)
    assert 20.0 <= host.clock[0] < 22.0, "ended at the no-target bound, not after the 600 s budget"
    assert "no-target: no ready replica" in body["detail"]
    assert any("no hand-over possible for 20s (no-target: no ready replica)" in line for line in record)
    assert host.checks <= 25, "asked about once a second, not at every poll"


def test_no_target_bound_counts_only_an_unbroken_run(tmp_path: Path) -> None:
    # a replica is ready again at t=15..16: the bound starts over from t=16
    host = FakeHost(check=lambda t: HandoverCheck.POSSIBLE if 15.0 <= t < 16.0 else HandoverCheck.NO_TARGET)
    _code, body, _ = run(host, tmp_path, budget=600.0, no_target_s=20.0)
    assert body["outcome"] == "no-handover"
    assert 36.0 <= host.clock[0] < 38.0


def test_main_whose_hand_over_is_possible_waits_its_whole_budget(tmp_path: Path) -> None:
    host = FakeHost()
    _code, body, _ = run(host, tmp_path, budget=60.0, no_target_s=20.0)
    assert body["outcome"] == "timeout"
    assert host.clock[0] >= 59.0


def test_leader_unreachable_counts_as_no_hand_over(tmp_path: Path) -> None:
    host = FakeHost(check=lambda t: HandoverCheck.LEADER_UNREACHABLE)
    _code, body, _ = run(host, tmp_path, budget=600.0, no_target_s=20.0)
    assert body["outcome"] == "no-handover" and "leader-unreachable" in body["detail"]


# ---- issue 16 item 10: a non-leading MAIN's agent asks the leader ------------------------------------


def test_non_leading_main_asks_the_leader_at_once_and_is_safe_once_the_role_moved(tmp_path: Path) -> None:
    host = FakeHost(answer=lambda t: AskAnswer.DONE)
    code, body, record = run(host, tmp_path, budget=600.0)
    assert (code, body["outcome"], body["safe_to_stop"]) == (200, "switchover-done", True)
    assert [t for t, _ in host.asks] == [0.0], "asked once, at once"
    assert host.clock[0] < 1.0, "did not wait for the leader's watch"
    assert host.calls == []  # it ran no switchover itself
    assert any("asked the leader for the hand-over: done" in line for line in record)


def test_non_leading_main_asks_again_every_ask_every_s_until_the_leader_moved_it(tmp_path: Path) -> None:
    host = FakeHost(answer=lambda t: AskAnswer.DONE if t >= 5.0 else AskAnswer.ASK_AGAIN)
    _code, body, record = run(host, tmp_path, budget=600.0)
    assert body["outcome"] == "switchover-done"
    times = [t for t, _ in host.asks]
    assert len(times) == 4 and times[0] == 0.0 and times[-1] >= 5.0, times
    assert all(b - a >= 2.0 - 1e-9 for a, b in itertools.pairwise(times)), "at most every 2 s"
    assert sum("asked the leader" in line for line in record) == 2, "one step per new answer, not per ask"


def test_refused_for_good_stops_asking_and_the_watch_path_still_moves_it(tmp_path: Path) -> None:
    host = FakeHost(answer=lambda t: AskAnswer.STOP_ASKING, moves_after_s=9.0)
    _code, body, _ = run(host, tmp_path, budget=600.0)
    assert body["outcome"] == "switchover-done"
    assert len(host.asks) == 1 and 9.0 <= host.clock[0] < 10.0


def test_a_failing_request_is_asked_again(tmp_path: Path) -> None:
    answers = iter([RuntimeError("boom"), AskAnswer.DONE])

    def answer(t: float) -> AskAnswer:
        got = next(answers)
        if isinstance(got, Exception):
            raise got
        return got

    host = FakeHost(answer=answer)
    _code, body, record = run(host, tmp_path, budget=600.0)
    assert body["outcome"] == "switchover-done" and len(host.asks) == 2
    assert any("request failed: RuntimeError" in line for line in record)


def test_no_request_while_no_hand_over_is_possible(tmp_path: Path) -> None:
    host = FakeHost(check=lambda t: HandoverCheck.NO_TARGET, answer=lambda t: AskAnswer.DONE)
    _code, body, _ = run(host, tmp_path, budget=600.0, no_target_s=20.0)
    assert body["outcome"] == "no-handover" and host.asks == []


def test_request_budget_is_capped_and_leaves_time_for_the_answer(tmp_path: Path) -> None:
    host = FakeHost()
    run(host, tmp_path, budget=600.0)
    assert host.asks[0][1] == 30.0, "capped at ask_budget_s"
    host = FakeHost()
    run(host, tmp_path, budget=12.0)
    budgets = [b for _, b in host.asks]
    assert budgets[0] == 6.0, "the hook's budget less its END second and the reply margin"
    assert budgets and min(budgets) >= 1.0, "no request too short to be answered"
    assert max(t for t, _ in host.asks) <= 11.0 - 5.0 - 1.0


def test_leading_main_runs_the_switchover_itself_and_asks_no_one(tmp_path: Path) -> None:
    host = FakeHost(leader=True, answer=lambda t: AskAnswer.DONE)
    run(host, tmp_path)
    assert host.asks == [] and host.calls[0].startswith("switchover")
