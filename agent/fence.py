"""`POST /api/v1/fence`: the old MAIN's agent kills its Memgraph for good and confirms (issue 16 item 5).

Role: the leader calls this on the agent of a MAIN it is about to fail over (coordinator.edge.
fence_client), so that a Memgraph paused between the STRICT_SYNC votes and its local commit can never
resume and acknowledge a write the promoted replica aborted (reference memgraph-replication.md 7.2).
The route is token-protected (the operator bearer token) and refuses everything but that one case:
- the body must name this pod, this pod's UID (this incarnation) and the record generation in which this
  pod is MAIN; when the agent holds a record that names another MAIN or generation, it refuses (409);
- when its Memgraph runs (a thread not stopped) and answers SHOW REPLICATION ROLE now, it is the healthy
  MAIN, not a lost one: refused (409 main-healthy). A busy MAIN answers that query on Memgraph's
  high-priority worker, so a busy MAIN is refused too;
- without MEMGRAPH_DATA_DIRECTORY (no view of the process) it answers 501 fence-unavailable.
Otherwise: SIGKILL of the pod's Memgraph processes (agent.procfs), then 200 once they are gone, 503 when
they are not gone within FENCE_KILL_CONFIRM_S (the leader asks again in a later cycle). The whole answer
fits the leader's read timeout (coordinator.core.model FENCE_*): a fresh local role query only when a
thread runs, bounded, then the kill. The kubelet restarts the container afterwards; the new process
recovers from disk, where the paused commit is not committed (7.2), and its guard demotes it.

So a fuzzer (tests/integration/*contract*) cannot kill a healthy MAIN: it knows neither the UID nor a
generation that names an unhealthy MAIN.

Must never: kill without a token, kill a Memgraph that answers while the record names it MAIN, wait
without a bound, or answer 500 for bad input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.procfs import MemgraphProcesses
from coordinator.core.model import FENCE_KILL_CONFIRM_S, ClusterRecord

log = logging.getLogger(__name__)

Result = tuple[int, dict[str, Any]]
MAX_GENERATION = 2**53  # a JSON integer every client can carry exactly


@dataclass(frozen=True)
class FenceRequest:
    pod: str
    uid: str
    generation: int


class FenceTarget(Protocol):
    """What the fence needs from the agent process."""

    @property
    def pod_name(self) -> str: ...
    @property
    def pod_uid(self) -> str: ...
    def record(self) -> ClusterRecord | None: ...
    def local_answers(self) -> bool: ...


def parse(doc: dict[str, Any], bad: Callable[[str], Exception]) -> FenceRequest:
    """The body `{"pod", "uid", "generation"}`; `bad(detail)` is raised for anything else (400)."""
    pod, uid, gen = doc.get("pod"), doc.get("uid"), doc.get("generation")
    if not isinstance(pod, str) or not pod or len(pod) > 253:
        raise bad("pod must be this pod's name")
    if not isinstance(uid, str) or not uid or len(uid) > 128:
        raise bad("uid must be this pod's UID (at most 128 characters)")
    # JSON Schema's integer: any number with a zero fraction (210.0 too), as docs/openapi.yaml states it
    if not isinstance(gen, int | float) or isinstance(gen, bool) or not float(gen).is_integer() \
            or not 1 <= gen <= MAX_GENERATION:
        raise bad("generation must be the record generation being failed over (an integer >= 1)")
    return FenceRequest(pod, uid, int(gen))


def refusal(req: FenceRequest, target: FenceTarget) -> Result | None:
    """Why this request must not kill anything (an answer), or None."""
    if req.pod != target.pod_name:
        return 403, {"error": "wrong-pod", "detail": f"this agent serves {target.pod_name}, not {req.pod}"}
    if req.uid != target.pod_uid:
        return 409, {"error": "wrong-incarnation", "detail": f"this is not the incarnation {req.uid}"}
    rec = target.record()
    if rec is not None and (rec.main != target.pod_name or rec.generation != req.generation):
        return 409, {"error": "not-the-failed-main",
                     "detail": f"the record this agent holds names {rec.main or 'no MAIN'} at generation "
                               f"{rec.generation}, not {req.pod} at {req.generation}"}
    return None


def fence(req: FenceRequest, target: FenceTarget, procs: MemgraphProcesses | None) -> Result:
    """Refuse, or kill this pod's Memgraph and confirm that it is gone."""
    refused = refusal(req, target)
    if refused is not None:
        log.info("fence refused pod=%s generation=%d error=%s", req.pod, req.generation, refused[1]["error"])
        return refused
    if procs is None:
        return _unavailable("MEMGRAPH_DATA_DIRECTORY unset: this agent cannot see its Memgraph's process")
    before = procs.view()
    if before.state == "none" and not procs.seen:  # no view of the process is not a process gone
        return _unavailable("this agent has never seen its Memgraph's process (shareProcessNamespace off?)")
    if before.state == "running" and target.local_answers():
        log.info("fence refused pod=%s generation=%d: local Memgraph runs and answers",
                 req.pod, req.generation)
        return 409, {"error": "main-healthy", "detail": "the local Memgraph runs and answers: it is not lost"}
    gone, pids = procs.kill_and_confirm(timeout_s=FENCE_KILL_CONFIRM_S)
    doc = {"outcome": "fenced" if pids else "no-process", "pids": list(pids), "state_before": before.state}
    if not gone:
        log.warning("fence not confirmed pod=%s pids=%s: still present after SIGKILL", req.pod, list(pids))
        return 503, {"error": "fence-failed",
                     "detail": f"process(es) {list(pids)} still present after SIGKILL"}
    detail = f"SIGKILL to {list(pids)} ({before.state}), gone" if pids else "no Memgraph process was running"
    log.warning("fenced pod=%s generation=%d: %s", req.pod, req.generation, detail)
    return 200, {**doc, "detail": detail}


def _unavailable(detail: str) -> Result:
    return 501, {"error": "fence-unavailable", "detail": detail}
