"""`memgraph-ha rollout restart`: restart the pods of a Memgraph StatefulSet one at a time, safely.

Role: detect the strategy (ctl.rollout_strategy), refuse to start on an unhealthy cluster unless
forced, then for each pod -- highest ordinal first, the MAIN last -- hand the MAIN over if needed, delete
the pod, wait for its successor to be Ready and for the cluster to be healthy, and stop at the first
failure, saying in what state the cluster is.

Health is judged by `coordinator.core.health.cluster_health` (the one shared check) on a fresh Snapshot
(ctl.rollout_cluster says how it is read, and why not from the status document).

MAIN hand-over: `agent-managed` lets the pod's preStop hook do it (delete with grace = hook budget + 60 s);
`manual` asks for a switchover first -- through the agent API when agents run, or, without agents, by
running coordinator.runtime.procedures.switchover itself under the Lease (ctl.standalone.Standalone joins
the election with its own identity and acts only once it leads, so never beside a leading agent; it
keeps leading, with the reconcile loop running, until the cluster is healthy again after the old MAIN's
pod came back, since the loop completes what the switchover leaves to it, then releases the Lease).

Must never: delete a MAIN's pod under `manual` before the MAIN has moved, start the next pod before the
cluster is healthy again, change anything under --dry-run, or wait without a bound.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

import requests
from kubernetes import client as kclient
from kubernetes.client.exceptions import ApiException

from coordinator.core.health import Health
from coordinator.core.identity import names_another_incarnation, pod_of
from coordinator.core.model import ClusterRecord, Role
from coordinator.edge.kube import pod_view
from coordinator.edge.logs import log_event
from ctl.rollout_cluster import REQUEST_TIMEOUT_S, ClusterReader, RolloutError, UsageError, api_client
from ctl.rollout_strategy import (
    AGENT_MANAGED,
    PodResult,
    RolloutOptions,
    RolloutReport,
    plan_steps,
    restart_order,
)
from ctl.standalone import Standalone

__all__ = ["Rollout", "RolloutError", "RolloutOptions", "RolloutReport", "UsageError", "api_client"]

log = logging.getLogger(__name__)


class Rollout(ClusterReader):
    def __init__(
        self, opts: RolloutOptions, progress: Callable[[str], None], api: kclient.ApiClient | None = None
    ) -> None:
        super().__init__(opts, api)
        self._say = progress
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        self._say(f"[{time.monotonic() - self.t0:6.1f}s] {text}")

    # ---- the roll -----------------------------------------------------------------------------

    def run(self) -> RolloutReport:
        strategy = self.load()
        self.say(strategy.describe())
        if strategy.pod_grace_s < strategy.delete_grace_s() and strategy.name is AGENT_MANAGED:
            self.say(f"note: the pod template's grace is {strategy.pod_grace_s}s; deletes ask for "
                     f"{strategy.delete_grace_s()}s (hook budget + 60s)")
        known = self.pod_names()
        targets = self.o.pods if self.o.pods else known
        unknown = [p for p in targets if p not in known]
        if unknown:
            raise UsageError(f"not a pod of statefulset {self.o.statefulset}: {', '.join(unknown)} "
                             f"(pods: {', '.join(known)})")
        health, _, record = self.observe()
        order = restart_order(list(dict.fromkeys(targets)), record.main or None)
        report = RolloutReport(strategy, order, plan_steps(strategy, order, record.main))
        self.say(f"cluster: MAIN {record.main or '-'}, healthy={health.healthy}"
                 + (f" ({'; '.join(health.problems)})" if health.problems else ""))
        self.say(f"order: {', '.join(order)}")
        if not health.healthy and not self.o.force:
            report.refused = "the cluster is not healthy: " + "; ".join(health.problems) + " (use --force)"
            self.say(f"refusing to start: {report.refused}")
            report.final = self.state_text()
            return report
        if self.o.dry_run:
            for step in report.plan:
                self.say(f"plan: {step['pod']}: {step['action']}")
            self.say("dry run: nothing changed")
            report.final = self.state_text()
            return report
        for pod in order:
            result = self.restart(pod)
            report.results.append(result)
            if not result.success:
                state = self.state_text()
                report.final = state
                self.say(f"stopped after {pod}: {result.error}")
                self.say(f"cluster now: MAIN {state.get('main') or '-'}, healthy={state.get('healthy')}; "
                         + ("; ".join(state.get("problems") or []) or "no problem seen"))
                return report
        report.final = self.state_text()
        self.say(f"rollout done: {len(report.results)} pod(s) restarted")
        return report

    def restart(self, pod: str) -> PodResult:
        assert self.strategy is not None
        s = self.strategy
        start = time.monotonic()
        deadline = start + (self.o.timeout_s or s.delete_grace_s() + 180.0)
        record = self.record()
        was_main = record.main == pod
        result = PodResult(pod, s.name, False, 0.0, was_main=was_main, old_main=record.main or None)
        session: Standalone | None = None  # manual, no agents: this command leads the Lease until healthy
        try:
            before = self.pod(pod)
            uid = before.metadata.uid if before is not None else None
            if was_main and s.name is not AGENT_MANAGED:
                session = self.hand_over(pod, deadline)
            grace = s.delete_grace_s()
            self.say(f"{pod}: deleting (grace {grace}s{', MAIN' if was_main else ''})")
            if before is not None:
                self.core.delete_namespaced_pod(
                    pod, self.o.namespace, grace_period_seconds=grace, _request_timeout=REQUEST_TIMEOUT_S
                )
            self.wait(lambda: self._replaced_and_ready(pod, uid), deadline, f"{pod} recreated and Ready")
            self.say(f"{pod}: new pod Ready")
            last: list[Health] = []
            self.wait(lambda: self._healthy(last), deadline, "cluster healthy",
                      lambda: "; ".join(last[-1].problems) if last else "")
            after = self.record().main
            if after != record.main:
                result.new_main = after or None
            result.success = True
            self.say(f"{pod}: done in {time.monotonic() - start:.1f}s; cluster healthy, MAIN {after or '-'}")
        except (RolloutError, ApiException, requests.RequestException, OSError) as exc:
            result.error = str(exc) if isinstance(exc, RolloutError) else f"{type(exc).__name__}: {exc}"
            after_rec = self._safe_record()
            if after_rec is not None and after_rec.main != record.main:
                result.new_main = after_rec.main or None
        finally:
            if session is not None:
                session.stop(release=True)
                self.say(f"Lease released by {session.identity}")
        result.duration_s = time.monotonic() - start
        return result

    def _safe_record(self) -> ClusterRecord | None:
        """The record for the failure report; None (logged) when it cannot be read either."""
        try:
            return self.record()
        except Exception as exc:
            log_event(log, "cluster record not readable for the failure report", level=logging.WARNING,
                      error=f"{type(exc).__name__}: {exc}")
            return None

    def _replaced_and_ready(self, pod: str, old_uid: str | None) -> bool:
        p = self.pod(pod)
        if p is None or p.metadata.uid == old_uid or p.metadata.deletion_timestamp is not None:
            return False
        return pod_view(p).ready

    def _healthy(self, last: list[Health]) -> bool:
        health, _, _ = self.observe()
        last[:] = [health]
        return health.healthy

    def wait(self, pred: Callable[[], bool], deadline: float, what: str,
             detail: Callable[[], str] | None = None) -> None:
        last_exc = ""
        while True:
            try:
                if pred():
                    return
            except (ApiException, requests.RequestException, OSError) as exc:
                last_exc = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                extra = (detail() if detail else "") or last_exc
                raise RolloutError(f"timed out waiting for {what}" + (f" ({extra})" if extra else ""))
            time.sleep(self.o.poll_s)

    # ---- MAIN hand-over (manual) --------------------------------------------------------------

    def hand_over(self, pod: str, deadline: float) -> Standalone | None:
        """Move the MAIN off `pod` and wait until it moved. Without agents, returns the Standalone that
        leads the Lease and runs the reconcile loop (it completes what the switchover defers: the
        remaining registrations, the sync confirmation); the caller stops it once healthy again."""
        assert self.strategy is not None
        session: Standalone | None = None
        if self.strategy.has_agent:
            self.say(f"{pod}: MAIN; asking the agents' coordinator for a switchover")
            self._switchover_via_agent(deadline)
        else:
            self.say(f"{pod}: MAIN; no agent runs: running the switchover under the Lease")
            session = self._switchover_under_lease(pod, deadline)

        def moved() -> bool:
            _, snap, record = self.observe()
            new = record.main
            inst = snap.instances.get(new) if new else None
            return bool(new) and new != pod and inst is not None and inst.role is Role.MAIN

        try:
            self.wait(moved, deadline, f"the MAIN to move off {pod}")
        except BaseException:
            if session is not None:
                session.stop(release=True)
            raise
        self.say(f"{pod}: MAIN moved to {self.record().main}")
        return session

    def agent_url(self) -> str:
        if self.o.url:
            return self.o.url.rstrip("/")
        assert self.facts is not None
        holder = self.lease_holder()
        pod = self.pod(pod_of(holder)) if holder else None
        meta = pod.metadata if pod is not None else None
        if meta is not None and names_another_incarnation(holder, meta.uid):
            pod = None  # the Lease names an earlier incarnation of that pod: no agent answers for it there
        ip = pod.status.pod_ip if pod is not None and pod.status else None
        if not ip or self.facts.agent_port is None:
            raise RolloutError(f"cannot find the leading agent (Lease holder {holder or '-'}); give --url")
        return f"http://{ip}:{self.facts.agent_port}"

    def _switchover_via_agent(self, deadline: float) -> None:
        if not self.o.token:
            raise RolloutError("a switchover through the agent API needs the API token "
                               "(--token or MEMGRAPH_HA_TOKEN)")
        url = self.agent_url() + "/api/v1/switchover"
        remaining = max(1.0, deadline - time.monotonic())
        resp = requests.post(url, json={}, headers={"Authorization": f"Bearer {self.o.token}"},
                             timeout=(REQUEST_TIMEOUT_S, remaining))
        try:
            doc = resp.json()
        except ValueError:
            doc = {}
        if resp.status_code != 200:
            why = f"{doc.get('error') or doc.get('outcome') or ''} {doc.get('detail') or ''}".strip()
            raise RolloutError(f"switchover refused by {url}: {resp.status_code} {why}")
        self.say(f"switchover: {doc.get('old_main')} -> {doc.get('new_main')} in {doc.get('duration_s')}s")

    def _switchover_under_lease(self, pod: str, deadline: float) -> Standalone:
        identity = f"memgraph-ha-cli-{socket.gethostname()}-{os.getpid()}"
        standalone = Standalone(self.settings(identity), api=self.api).start()
        try:
            wait_s = min(self.o.lease_wait_s, max(0.0, deadline - time.monotonic()))
            if not standalone.wait_leading(wait_s):
                raise RolloutError(f"could not lead the Lease within {wait_s:.0f}s (held by "
                                   f"{standalone.holder() or '-'}); a coordinator is running: stop it, or "
                                   "give the pods the agent")
            self.say(f"leading the Lease as {identity}; switchover away from {pod}")
            r = standalone.switchover(pod, None, max(1.0, deadline - time.monotonic()))
            if not r.ok:
                raise RolloutError(f"switchover away from {pod} failed: {r.outcome}: {r.detail}")
            self.say(f"switchover: {r.old_main} -> {r.new_main} in {r.duration_s:.1f}s")
            return standalone
        except BaseException:
            standalone.stop(release=True)
            raise
