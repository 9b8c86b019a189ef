"""`POST /api/v1/handover`: the leader's side of a hand-over asked for by the terminating MAIN's agent.

Role (DESIGN "Switchover" step 1, issue 16 item 10): when the MAIN's pod is deleted, its preStop hook
calls its own agent; when that agent does not lead, it asks the leader here, naming its pod and UID, so
the switchover starts at once instead of when the leader's pod watch shows the deletionTimestamp (a
watch can lag by seconds or more: a slow apiserver watch cache, a long GC pause, a leader that is
catching up after a partition). The leader:
1. only the leader acts: a non-leader forwards the request to the leader it knows, once (agent/api.py);
   one that stopped leading meanwhile answers 503 `not-leader` and the caller asks again later;
2. reads the pod from the API server by name -- a GET without a resourceVersion, a quorum read, not the
   pod watch that may be late -- and refuses (409) unless that pod has the UID of the asking incarnation
   (`wrong-incarnation`; gone: `pod-gone`) and a deletionTimestamp (`not-terminating`: a preStop run by
   a container restart without a deletion, e.g. a failed liveness probe, is no reason to move the MAIN;
   the watch-driven path and failover still apply);
3. from then on counts that incarnation as terminating in its own view, whatever its pod watch still
   shows (coordinator.runtime.known_deletions), and runs the same switchover as a watch-driven one
   (coordinator.runtime.procedures), moving the MAIN off that pod, within min(budget_s,
   HANDOVER_MAX_BUDGET_S). Outcomes map to codes as on
   `/api/v1/switchover`: 200 done, 409 refused (no-target, not-main), 503 timeout or failed.

The route is accepted with the agents' fence token (HA_FENCE_TOKEN) or the operator token. It can only
move the MAIN role off a pod that the API server itself shows terminating, which is what the
watch-driven path does anyway.

Must never: run a switchover for a pod the API server does not show terminating, or for another
incarnation than the asking one; read the pod without a timeout.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from coordinator.edge.logs import log_event
from coordinator.runtime.procedures import SwitchoverResult

log = logging.getLogger(__name__)
Result = tuple[int, dict[str, Any]]

HANDOVER_MAX_BUDGET_S = 30.0  # the longest switchover one request may ask for
POD_READ_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class HandoverRequest:
    pod: str
    uid: str
    budget_s: float


@dataclass(frozen=True)
class PodFacts:
    """What the API server says about the asking pod now."""

    uid: str
    terminating: bool


class HandoverLeader(Protocol):
    """What the route needs from the leading agent."""

    def is_leader(self) -> bool: ...
    def read_pod(self, name: str) -> PodFacts | None: ...  # None: no such pod; raises when unreadable
    def switchover_from(self, pod: str, uid: str, budget_s: float) -> SwitchoverResult: ...


def parse(doc: dict[str, Any], bad: Callable[[str], Exception]) -> HandoverRequest:
    """The body `{"pod", "uid", "budget_s"}`; `bad(detail)` is raised for anything else (400)."""
    pod, uid, budget = doc.get("pod"), doc.get("uid"), doc.get("budget_s", HANDOVER_MAX_BUDGET_S)
    if not isinstance(pod, str) or not pod or len(pod) > 253:
        raise bad("pod must be the terminating MAIN's pod name")
    if not isinstance(uid, str) or not uid or len(uid) > 128:
        raise bad("uid must be that pod's UID (at most 128 characters)")
    if not isinstance(budget, int | float) or isinstance(budget, bool) or not math.isfinite(budget) \
            or budget <= 0:
        raise bad("budget_s must be a number of seconds > 0")
    return HandoverRequest(pod, uid, min(float(budget), HANDOVER_MAX_BUDGET_S))


def handover(req: HandoverRequest, leader: HandoverLeader) -> Result:
    """Refuse, or move the MAIN off `req.pod` (see the module docstring for the rules)."""
    if not leader.is_leader():
        return 503, {"error": "not-leader", "detail": "this agent does not lead; ask the leader"}
    try:
        pod = leader.read_pod(req.pod)
    except Exception as exc:  # the quorum read is the proof of deletion: without it, no switchover
        log_event(log, "hand-over: pod not readable", level=logging.WARNING, pod=req.pod,
                  error=f"{type(exc).__name__}: {exc}")
        return 503, {"error": "api-unreachable", "detail": f"{req.pod} not readable: {type(exc).__name__}"}
    refused = _refusal(req, pod)
    if refused is not None:
        log_event(log, "hand-over refused", pod=req.pod, uid=req.uid, error=refused[1]["error"])
        return refused
    log_event(log, "hand-over requested by the terminating MAIN's agent", pod=req.pod, uid=req.uid,
              budget_s=req.budget_s)
    return switchover_answer(leader.switchover_from(req.pod, req.uid, req.budget_s))


def switchover_answer(r: SwitchoverResult) -> Result:
    """A switchover's result as the API answers it (also `/api/v1/switchover`): 200 done, 409 refused by
    the cluster's state, 503 timed out or failed."""
    code = 200 if r.ok else 409 if r.outcome.refused else 503
    return code, {
        "outcome": r.outcome,
        "old_main": r.old_main,
        "new_main": r.new_main,
        "duration_s": round(r.duration_s, 3),
        "detail": r.detail,
    }


def _refusal(req: HandoverRequest, pod: PodFacts | None) -> Result | None:
    if pod is None:
        return 409, {"error": "pod-gone", "detail": f"no pod {req.pod} exists"}
    if pod.uid != req.uid:
        return 409, {"error": "wrong-incarnation",
                     "detail": f"{req.pod} is now the incarnation {pod.uid}, not {req.uid}"}
    if not pod.terminating:
        return 409, {"error": "not-terminating",
                     "detail": f"the API server shows no deletionTimestamp on {req.pod}"}
    return None


def refused_for_good(error: str) -> bool:
    """A refusal that asking again cannot change (the caller stops asking; the watch path remains)."""
    return error in ("pod-gone", "wrong-incarnation", "not-terminating")



class AskAnswer(enum.StrEnum):
    """What the terminating MAIN's agent makes of the leader's answer to its request."""

    DONE = "done"  # the leader moved the MAIN (or it had moved already): wait for the local role to show it
    ASK_AGAIN = "ask-again"  # no leader, not reachable, busy, no target yet, timed out: ask again later
    STOP_ASKING = "stop-asking"  # refused for good (another incarnation, not terminating): the watch path


def sort_answer(status: int, doc: dict[str, Any]) -> AskAnswer:
    """The caller's reading of one answer of the route (docs/openapi.yaml `/api/v1/handover`)."""
    if status == 200 or (status == 409 and doc.get("outcome") == "not-main"):
        return AskAnswer.DONE
    if status in (401, 403, 404) or (status == 409 and refused_for_good(str(doc.get("error", "")))):
        return AskAnswer.STOP_ASKING  # no credential the leader accepts, or a leader without the route
    return AskAnswer.ASK_AGAIN
