"""The agent's edges of the hook-driven hand-over (agent/handover.py): both ends of `/api/v1/handover`.

Role: on the leader, `LeaderSide` gives the route its facts and its action -- the asking pod read from
the API server by name (a quorum read, bounded by POD_READ_TIMEOUT_S) and the coordinator's switchover
from that pod, once the coordinator counts it as terminating. On the terminating MAIN's pod,
`ask_leader` is the one bounded request its preStop handler makes to the leader it knows, with the
agents' fence token.

Must never: call without a timeout, retry by itself (the preStop handler decides when to ask again),
or log the token.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import requests
from kubernetes.client.exceptions import ApiException

from agent.handover import POD_READ_TIMEOUT_S, AskAnswer, PodFacts, sort_answer
from coordinator.core.outcomes import SwitchoverOutcome
from coordinator.edge.logs import log_event
from coordinator.runtime.procedures import SwitchoverResult

if TYPE_CHECKING:
    from agent.runtime import Agent

log = logging.getLogger(__name__)
ASK_CONNECT_S = 2.0
ASK_READ_MARGIN_S = 3.0  # on top of the budget the leader is given: its answer travels back


class LeaderSide:
    """`agent.handover.HandoverLeader` over the agent process."""

    def __init__(self, agent: Agent) -> None:
        self.a = agent

    def is_leader(self) -> bool:
        return self.a.is_leader() and self.a.coordinator is not None

    def read_pod(self, name: str) -> PodFacts | None:
        try:
            pod = self.a.core.read_namespaced_pod(name, self.a.s.identity.namespace,
                                                  _request_timeout=POD_READ_TIMEOUT_S)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        meta = pod.metadata
        if meta is None:
            raise ValueError(f"pod {name} answered without metadata")
        return PodFacts(uid=str(meta.uid or ""), terminating=meta.deletion_timestamp is not None)

    def switchover_from(self, pod: str, uid: str, budget_s: float) -> SwitchoverResult:
        coord = self.a.coordinator
        if coord is None:
            return SwitchoverResult(SwitchoverOutcome.FAILED, pod, None, 0.0, "not leading any more")
        coord.note_terminating(pod, uid)
        return coord.switchover(pod, None, budget_s)


def ask_leader(url: str, token: str, pod: str, uid: str, budget_s: float) -> tuple[AskAnswer, str]:
    """POST /api/v1/handover on the leader at `url`; the answer sorted, with a one-line detail."""
    body = {"pod": pod, "uid": uid, "budget_s": round(budget_s, 3)}
    try:
        resp = requests.post(url.rstrip("/") + "/api/v1/handover", json=body,
                             headers={"Authorization": f"Bearer {token}"},
                             timeout=(ASK_CONNECT_S, budget_s + ASK_READ_MARGIN_S))
    except requests.RequestException as exc:
        log_event(log, "hand-over request: leader did not answer", level=logging.INFO, url=url,
                  error=type(exc).__name__)
        return AskAnswer.ASK_AGAIN, f"leader did not answer ({type(exc).__name__})"
    try:
        doc: Any = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        doc = {}
    answer = sort_answer(resp.status_code, doc)
    what = doc.get("outcome") or doc.get("error") or "-"
    detail = f"leader answered {resp.status_code} {what}: {doc.get('detail', '')}".strip()
    log_event(log, "hand-over request answered", url=url, status=resp.status_code, answer=answer,
              outcome=what)
    return answer, detail
