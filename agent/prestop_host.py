"""The agent as `agent.prestop.PrestopHost`: what the local preStop handler may ask of the agent process.

Role: answer the handler's questions (local role, record, leadership, the StatefulSet's size) and run
what it asks for (the switchover when this agent leads, the leader's hand-over when it does not, a label
patch on its own pod, the leadership hand-off) through the agent's elector and current coordinator.

Must never: call the API server without a timeout, or hide a failed read: every fallback is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests
from kubernetes import client as kclient

from agent.handover import AskAnswer
from agent.handover_host import LeaderSide, ask_leader
from coordinator.core import record as record_codec
from coordinator.core.health import cluster_health
from coordinator.core.model import ClusterRecord, Role
from coordinator.core.outcomes import HandoverCheck, SwitchoverOutcome
from coordinator.edge.logs import log_event
from coordinator.runtime.procedures import SwitchoverResult

if TYPE_CHECKING:
    from agent.runtime import Agent

log = logging.getLogger(__name__)
API_TIMEOUT_S = 2.0
UNKNOWN_POD_COUNT = 2  # the StatefulSet's size is unknown: assume there is someone to hand over to
HAND_OFF_JOIN_S = 3.0  # how long the hand-off waits for the coordinator loop before releasing the Lease
LEADER_STATUS_TIMEOUT_S = 2.0  # the hand-over check's request to the leader's status route


class PrestopHost:
    def __init__(self, agent: Agent) -> None:
        self.a = agent
        self.pod_name = agent.pod_name

    def local_role(self) -> Role | None:
        return self.a.probe_local()

    def record(self) -> ClusterRecord | None:
        return self.a.record()

    def refresh_record(self) -> ClusterRecord | None:
        try:
            return record_codec.decode(self.a.elector.read_record(fresh=True)[0])[0]
        except Exception as exc:
            log_event(log, "record refresh failed; using the last record seen", level=logging.DEBUG,
                      error=f"{type(exc).__name__}: {exc}")
            return self.a.record()

    def is_leader(self) -> bool:
        return self.a.is_leader()

    def expected_pods(self) -> int:
        coord = self.a.coordinator
        if coord is not None:
            return coord.kube.expected_replicas() or 1
        try:
            apps = kclient.AppsV1Api(self.a.api)
            sts = apps.read_namespaced_stateful_set(
                self.a.s.cluster.statefulset, self.a.s.identity.namespace, _request_timeout=API_TIMEOUT_S
            )
            return int(sts.spec.replicas or 1)
        except Exception as exc:
            log_event(log, "statefulset size not readable; assuming a peer to hand over to",
                      level=logging.WARNING, statefulset=self.a.s.cluster.statefulset,
                      assumed=UNKNOWN_POD_COUNT, error=f"{type(exc).__name__}: {exc}")
            return UNKNOWN_POD_COUNT

    def run_switchover(self, budget_s: float, step: Callable[[str], None]) -> SwitchoverResult:
        coord = self.a.coordinator
        if coord is None:
            return SwitchoverResult(SwitchoverOutcome.FAILED, self.pod_name, None, 0.0, "not leader")
        self._note_own_deletion(coord)
        return coord.switchover(self.pod_name, None, budget_s, step)

    def _note_own_deletion(self, coord: Any) -> None:
        """This pod read from the API server (not the watch): when it is being deleted, the coordinator
        counts it as terminating from now on (a preStop also runs on a container restart without one)."""
        uid = self.a.s.identity.uid
        try:
            facts = LeaderSide(self.a).read_pod(self.pod_name)
        except Exception as exc:  # the watch-driven view still applies; nothing is lost but the head start
            log_event(log, "own pod not readable before the switchover", level=logging.INFO,
                      error=f"{type(exc).__name__}: {exc}")
            return
        if facts is not None and facts.terminating and facts.uid == uid:
            coord.note_terminating(self.pod_name, uid)

    def patch_own_labels(self, labels: dict[str, str | None]) -> None:
        self.a.core.patch_namespaced_pod(
            self.pod_name, self.a.s.identity.namespace, {"metadata": {"labels": labels}},
            _request_timeout=API_TIMEOUT_S,
        )

    def hand_off_leadership(self) -> None:
        self.a.terms.stopped(join_s=HAND_OFF_JOIN_S)
        self.a.elector.stop(release=True, timeout_s=HAND_OFF_JOIN_S)

    def handover_check(self) -> tuple[HandoverCheck, str]:
        """Can a hand-over of this MAIN happen now? The leader's view of ready replicas (this agent's own
        coordinator when it leads, else the leader's status route, one bounded request)."""
        coord = self.a.coordinator
        if coord is not None and self.a.is_leader():
            snap = coord.last_snapshot
            if snap is None:
                return HandoverCheck.POSSIBLE, "no observation yet"
            ready = [p for p in cluster_health(snap, coord.last_record).ready_replicas if p != self.pod_name]
        else:
            url = self.a.leader_url()
            if not url:
                return HandoverCheck.LEADER_UNREACHABLE, "no leader known"
            try:
                resp = requests.get(url.rstrip("/") + "/api/v1/status", timeout=LEADER_STATUS_TIMEOUT_S)
                doc: Any = resp.json()
                ready = [str(p) for p in doc["cluster"]["ready_replicas"] if p != self.pod_name]
            except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
                log_event(log, "hand-over check: leader status not readable", level=logging.INFO,
                          url=url, error=f"{type(exc).__name__}: {exc}")
                return HandoverCheck.LEADER_UNREACHABLE, f"leader status: {type(exc).__name__}"
        if not ready:
            return HandoverCheck.NO_TARGET, "no ready replica"
        return HandoverCheck.POSSIBLE, f"ready: {', '.join(sorted(ready))}"

    def request_handover(self, budget_s: float) -> tuple[AskAnswer, str]:
        """Ask the leader to move the MAIN off this pod now (agent/handover.py), with the agents' fence
        token (else the operator token); one bounded request."""
        token = self.a.s.api.fence_token or self.a.s.api.token
        if not token:
            return AskAnswer.STOP_ASKING, "no HA_FENCE_TOKEN or HA_API_TOKEN: the leader cannot be asked"
        url = self.a.leader_url()
        if not url:
            return AskAnswer.ASK_AGAIN, "no leader known"
        return ask_leader(url, token, self.pod_name, self.a.s.identity.uid, budget_s)
