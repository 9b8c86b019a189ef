"""agent.handover and agent.handover_host: the leader's rules for a hand-over asked by the terminating
MAIN's agent (issue 16 item 10), and the asking agent's one request and its reading of the answer.

The leader side runs against a fake leader (the unit under test is the rule set); the request runs
against `responses` (the real `requests` call, no socket).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import requests
import responses

from agent.handover import (
    HANDOVER_MAX_BUDGET_S,
    AskAnswer,
    HandoverRequest,
    PodFacts,
    handover,
    parse,
    sort_answer,
)
from agent.handover_host import ASK_CONNECT_S, ASK_READ_MARGIN_S, ask_leader
from coordinator.core.outcomes import SwitchoverOutcome
from coordinator.runtime.procedures import SwitchoverResult

REQ = HandoverRequest("memgraph-0", "uid-0", 20.0)


@dataclass
class FakeLeader:
    leading: bool = True
    pod: PodFacts | None = field(default_factory=lambda: PodFacts("uid-0", terminating=True))
    read_error: Exception | None = None
    outcome: SwitchoverOutcome = SwitchoverOutcome.DONE
    switchovers: list[tuple[str, str, float]] = field(default_factory=list)

    def is_leader(self) -> bool:
        return self.leading

    def read_pod(self, name: str) -> PodFacts | None:
        if self.read_error is not None:
            raise self.read_error
        return self.pod

    def switchover_from(self, pod: str, uid: str, budget_s: float) -> SwitchoverResult:
        self.switchovers.append((pod, uid, budget_s))
        new = "memgraph-1" if self.outcome is SwitchoverOutcome.DONE else None
        return SwitchoverResult(self.outcome, pod, new, 1.25, "fake")


class Bad(ValueError):
    pass


# ---- the body -------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [
    {},
    {"pod": "memgraph-0"},
    {"pod": "", "uid": "u"},
    {"pod": "memgraph-0", "uid": ""},
    {"pod": 7, "uid": "u"},
    {"pod": "memgraph-0", "uid": "u" * 129},
    {"pod": "memgraph-0", "uid": "u", "budget_s": 0},
    {"pod": "memgraph-0", "uid": "u", "budget_s": -1},
    {"pod": "memgraph-0", "uid": "u", "budget_s": True},
    {"pod": "memgraph-0", "uid": "u", "budget_s": "10"},
    {"pod": "memgraph-0", "uid": "u", "budget_s": float("inf")},
    {"pod": "memgraph-0", "uid": "u", "budget_s": float("nan")},
])
def test_a_body_that_does_not_name_a_pod_and_uid_with_a_positive_budget_is_refused(doc: dict) -> None:
    with pytest.raises(Bad):
        parse(doc, Bad)


def test_the_budget_defaults_to_and_is_capped_at_the_maximum() -> None:
    assert parse({"pod": "memgraph-0", "uid": "u"}, Bad).budget_s == HANDOVER_MAX_BUDGET_S
    assert parse({"pod": "memgraph-0", "uid": "u", "budget_s": 86400}, Bad).budget_s == HANDOVER_MAX_BUDGET_S
    assert parse({"pod": "memgraph-0", "uid": "u", "budget_s": 2.5}, Bad).budget_s == 2.5


# ---- the leader's rules ---------------------------------------------------------------------------


def test_the_leader_switches_over_a_terminating_pod_of_the_asking_incarnation() -> None:
    leader = FakeLeader()
    code, body = handover(REQ, leader)
    assert code == 200 and body["outcome"] == "switchover-done" and body["new_main"] == "memgraph-1"
    assert leader.switchovers == [("memgraph-0", "uid-0", 20.0)]


@pytest.mark.parametrize(("pod", "error"), [
    (None, "pod-gone"),
    (PodFacts("uid-OTHER", terminating=True), "wrong-incarnation"),
    (PodFacts("uid-0", terminating=False), "not-terminating"),
])
def test_no_switchover_unless_the_api_server_shows_that_incarnation_terminating(
        pod: PodFacts | None, error: str) -> None:
    leader = FakeLeader(pod=pod)
    code, body = handover(REQ, leader)
    assert (code, body["error"]) == (409, error)
    assert leader.switchovers == []


def test_a_pod_that_cannot_be_read_is_no_proof_of_deletion() -> None:
    leader = FakeLeader(read_error=TimeoutError("read timed out"))
    code, body = handover(REQ, leader)
    assert (code, body["error"]) == (503, "api-unreachable") and "TimeoutError" in body["detail"]
    assert leader.switchovers == []


def test_a_non_leader_runs_nothing() -> None:
    leader = FakeLeader(leading=False)
    assert handover(REQ, leader)[0] == 503 and leader.switchovers == []


@pytest.mark.parametrize(("outcome", "code"), [
    (SwitchoverOutcome.NO_TARGET, 409), (SwitchoverOutcome.NOT_MAIN, 409),
    (SwitchoverOutcome.TIMEOUT, 503), (SwitchoverOutcome.FAILED, 503),
])
def test_the_switchover_outcome_maps_to_the_switchover_routes_codes(outcome: SwitchoverOutcome,
                                                                     code: int) -> None:
    status, body = handover(REQ, FakeLeader(outcome=outcome))
    assert (status, body["outcome"], body["new_main"]) == (code, outcome, None)


# ---- the asking agent's reading of an answer ---------------------------------------------------------


@pytest.mark.parametrize(("status", "doc", "answer"), [
    (200, {"outcome": "switchover-done"}, AskAnswer.DONE),
    (409, {"outcome": "not-main"}, AskAnswer.DONE),  # moved already
    (409, {"outcome": "no-target"}, AskAnswer.ASK_AGAIN),  # a replica may be ready in a moment
    (409, {"error": "wrong-incarnation"}, AskAnswer.STOP_ASKING),
    (409, {"error": "not-terminating"}, AskAnswer.STOP_ASKING),
    (409, {"error": "pod-gone"}, AskAnswer.STOP_ASKING),
    (401, {"error": "unauthorized"}, AskAnswer.STOP_ASKING),
    (403, {"error": "disabled"}, AskAnswer.STOP_ASKING),
    (404, {}, AskAnswer.STOP_ASKING),  # a leader of an older version without the route
    (503, {"error": "not-leader"}, AskAnswer.ASK_AGAIN),
    (503, {"outcome": "timeout"}, AskAnswer.ASK_AGAIN),
    (502, {}, AskAnswer.ASK_AGAIN),
])
def test_answers_are_sorted_into_done_ask_again_and_stop_asking(status: int, doc: dict,
                                                               answer: AskAnswer) -> None:
    assert sort_answer(status, doc) is answer


URL = "http://198.18.0.7:8080"


@responses.activate
def test_the_request_names_pod_uid_and_budget_with_the_token_and_a_bounded_read() -> None:
    seen: list[requests.PreparedRequest] = []
    timeouts: list[object] = []

    def reply(req: requests.PreparedRequest) -> tuple[int, dict, str]:
        seen.append(req)
        timeouts.append(req.req_kwargs.get("timeout"))  # type: ignore[attr-defined]
        return 200, {}, json.dumps({"outcome": "switchover-done", "old_main": "memgraph-0",
                                    "new_main": "memgraph-1", "duration_s": 1.2, "answered_by": "memgraph-2"})

    responses.add_callback(responses.POST, URL + "/api/v1/handover", callback=reply)
    answer, detail = ask_leader(URL + "/", "fence-tok", "memgraph-0", "uid-0", 12.5)
    assert answer is AskAnswer.DONE and "200 switchover-done" in detail
    assert json.loads(seen[0].body or b"{}") == {"pod": "memgraph-0", "uid": "uid-0", "budget_s": 12.5}
    assert seen[0].headers["Authorization"] == "Bearer fence-tok"
    assert timeouts == [(ASK_CONNECT_S, 12.5 + ASK_READ_MARGIN_S)]


@responses.activate
def test_a_leader_that_does_not_answer_is_asked_again_later() -> None:
    responses.add(responses.POST, URL + "/api/v1/handover", body=requests.ConnectTimeout("silent"))
    answer, detail = ask_leader(URL, "t", "memgraph-0", "uid-0", 5.0)
    assert answer is AskAnswer.ASK_AGAIN and "ConnectTimeout" in detail


@responses.activate
def test_an_answer_without_json_is_asked_again() -> None:
    responses.add(responses.POST, URL + "/api/v1/handover", status=502, body="<html>bad gateway</html>")
    assert ask_leader(URL, "t", "memgraph-0", "uid-0", 5.0)[0] is AskAnswer.ASK_AGAIN


@responses.activate
def test_the_token_never_appears_in_the_detail(caplog: pytest.LogCaptureFixture) -> None:
    responses.add(responses.POST, URL + "/api/v1/handover", status=401,
                  json={"error": "unauthorized", "detail": "the bearer token is not valid"})
    caplog.set_level("DEBUG")
    answer, detail = ask_leader(URL, "fence-SECRET-123", "memgraph-0", "uid-0", 5.0)
    assert answer is AskAnswer.STOP_ASKING
    assert "fence-SECRET-123" not in detail and "fence-SECRET-123" not in caplog.text
