"""`memgraph-ha rollout restart`: restart the pods of a Memgraph StatefulSet one at a time, safely.

Role: detect the strategy (coordinator.rollout_strategy), refuse to start on an unhealthy cluster unless
forced, then for each pod -- highest ordinal first, the MAIN last -- hand the MAIN over if needed, delete
the pod, wait for its successor to be Ready and for the cluster to be healthy, and stop at the first
failure, saying in what state the cluster is.

Health is judged by `coordinator.health.cluster_health` (the one shared check) on a Snapshot this command
builds itself with `coordinator.observe.Observer`: pods read straight from the API server (no cache) and
every Memgraph asked directly, plus the cluster record read fresh from the Lease. Why not the status
document: it is the leader's last cycle, and the leader itself is restarted during a roll (its document
can predate the restart it is meant to confirm), and a cluster without agents has no status document at
all. The price: the command must reach Memgraph at the pod IPs (run it in the cluster, e.g. with the
coordinator image, or where pod IPs route).

MAIN hand-over: `agent-managed` lets the pod's preStop hook do it (delete with grace = hook budget + 60 s);
`manual` asks for a switchover first -- through the agent API when agents run, or, without agents, by
running coordinator.procedures.switchover itself under the Lease (coordinator.__main__.Standalone joins
the election with its own identity and acts only once it leads, so never beside a leading agent; it
keeps leading, with the reconcile loop running, until the cluster is healthy again after the old MAIN's
pod came back, since the loop completes what the switchover leaves to it, then releases the Lease).

Must never: delete a MAIN's pod under `manual` before the MAIN has moved, start the next pod before the
cluster is healthy again, change anything under --dry-run, or wait without a bound.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

from agent.config import Settings
from coordinator import record as record_codec
from coordinator.health import Health, cluster_health
from coordinator.kube import pod_view
from coordinator.model import ClusterRecord, PodView, ReplicaMode, Role, Snapshot
from coordinator.observe import Observer
from coordinator.rollout_strategy import (
    AGENT_MANAGED,
    ClusterFacts,
    PodResult,
    RolloutOptions,
    RolloutReport,
    Strategy,
    cluster_facts,
    detect_strategy,
    plan_steps,
    restart_order,
)

__all__ = ["Rollout", "RolloutError", "RolloutOptions", "RolloutReport", "UsageError", "api_client"]

REQUEST_TIMEOUT_S = 5.0


class RolloutError(Exception):
    """The rollout cannot go on; the message says why (and what state the cluster is in)."""


class UsageError(RolloutError):
    """A bad argument found only once the cluster was read (e.g. an unknown pod): exit code 2."""


def api_client(kubeconfig: str | None) -> kclient.ApiClient:
    cfg = kclient.Configuration()
    if kubeconfig:
        kconfig.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    else:
        try:
            kconfig.load_incluster_config(client_configuration=cfg)
        except kconfig.ConfigException:
            kconfig.load_kube_config(client_configuration=cfg)  # ~/.kube/config or $KUBECONFIG
    api = kclient.ApiClient(cfg)
    api.user_agent = "memgraph-ha-cli"
    return api


class _DirectKube:
    """coordinator.ports.KubePort reads without a cache: every snapshot sees the API server's state now."""

    def __init__(self, core: kclient.CoreV1Api, apps: kclient.AppsV1Api, ns: str, sts: str, sel: str) -> None:
        self.core, self.apps, self.ns, self.sts, self.sel = core, apps, ns, sts, sel

    def list_pods(self) -> list[PodView]:
        pods = self.core.list_namespaced_pod(
            self.ns, label_selector=self.sel, _request_timeout=REQUEST_TIMEOUT_S
        )
        return sorted((pod_view(p) for p in pods.items), key=lambda p: p.ordinal)

    def expected_replicas(self) -> int | None:
        sts = self.apps.read_namespaced_stateful_set(self.sts, self.ns, _request_timeout=REQUEST_TIMEOUT_S)
        return int(sts.spec.replicas if sts.spec.replicas is not None else 1)

    def patch_labels(self, pod: str, labels: Mapping[str, str | None]) -> None:
        raise RuntimeError("the rollout's health check never writes")

    def emit_event(self, reason: str, message: str, pod: str = "", warning: bool = False) -> None:
        raise RuntimeError("the rollout's health check never writes")


class Rollout:
    def __init__(self, opts: RolloutOptions, progress: Callable[[str], None], api: Any = None) -> None:
        self.o = opts
        self._say = progress
        self.t0 = time.monotonic()
        self.api = api or api_client(opts.kubeconfig)
        self.core = kclient.CoreV1Api(self.api)
        self.apps = kclient.AppsV1Api(self.api)
        self.coord_api = kclient.CoordinationV1Api(self.api)
        self.sts: dict[str, Any] = {}
        self.strategy: Strategy | None = None
        self.facts: ClusterFacts | None = None
        self._observer: Observer | None = None
        self._pool: Any = None

    def say(self, text: str) -> None:
        self._say(f"[{time.monotonic() - self.t0:6.1f}s] {text}")

    # ---- reading the cluster ------------------------------------------------------------------

    def load(self) -> Strategy:
        try:
            obj = self.apps.read_namespaced_stateful_set(
                self.o.statefulset, self.o.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status == 404:
                raise UsageError(f"statefulset {self.o.namespace}/{self.o.statefulset} not found") from exc
            raise RolloutError(
                f"cannot read statefulset {self.o.statefulset}: {exc.status} {exc.reason}"
            ) from exc
        self.sts = self.api.sanitize_for_serialization(obj)
        self.strategy, self.facts = detect_strategy(self.sts), cluster_facts(self.sts)
        return self.strategy

    def _settings(self, identity: str) -> Settings:
        assert self.facts is not None
        return Settings(
            pod_name=identity,
            pod_namespace=self.o.namespace,
            pod_uid="cli",
            pod_ip="127.0.0.1",
            statefulset=self.o.statefulset,
            pod_selector=self.facts.selector,
            headless_service=self.facts.headless_service,
            memgraph_bolt_port=self.o.bolt_port or self.facts.bolt_port,
            memgraph_user=self.o.memgraph_user,
            memgraph_password=self.o.memgraph_password,
            memgraph_replication_port=self.o.replication_port,
            lease_name=self.o.lease or self.facts.lease_name,
            lease_duration_s=15.0,
            renew_deadline_s=10.0,
            retry_period_s=1.0,
            sync_mode=self._sync_mode(),
            kubeconfig=self.o.kubeconfig,
        )

    def _sync_mode(self) -> ReplicaMode:
        try:
            return ReplicaMode(self.record().sync_mode or "strict_sync")
        except (ValueError, ApiException):
            return ReplicaMode.STRICT_SYNC

    def record(self) -> ClusterRecord:
        """The cluster record, read fresh from the Lease (an empty record when there is no Lease yet)."""
        assert self.facts is not None
        try:
            lease = self.coord_api.read_namespaced_lease(
                self.o.lease or self.facts.lease_name, self.o.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status == 404:
                return ClusterRecord()
            raise
        meta = lease.metadata
        return record_codec.decode((meta.annotations if meta is not None else None) or {})[0]

    def lease_holder(self) -> str:
        assert self.facts is not None
        try:
            lease = self.coord_api.read_namespaced_lease(
                self.o.lease or self.facts.lease_name, self.o.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException:
            return ""
        return str((lease.spec.holder_identity if lease.spec else "") or "")

    def observe(self) -> tuple[Health, Snapshot, ClusterRecord]:
        """cluster_health on a fresh Snapshot (pods from the API server, every Memgraph asked now)."""
        from agent.runtime import MemgraphPool

        assert self.facts is not None
        if self._observer is None:
            self._pool = MemgraphPool(self._settings("memgraph-ha-cli"))
            o = self.o
            kube = _DirectKube(self.core, self.apps, o.namespace, o.statefulset, self.facts.selector)
            self._observer = Observer(kube, self._pool, probe_timeout_s=1.5)
        record = self.record()
        snap = self._observer.snapshot(record, "")
        return cluster_health(snap, record), snap, record

    def close(self) -> None:
        if self._observer is not None:
            self._observer.close()
        if self._pool is not None:
            self._pool.close()

    def pod_names(self) -> list[str]:
        assert self.facts is not None
        return [f"{self.o.statefulset}-{i}" for i in range(self.facts.replicas)]

    def _pod(self, name: str) -> Any | None:
        try:
            return self.core.read_namespaced_pod(name, self.o.namespace, _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def state_text(self) -> dict[str, Any]:
        """What the cluster looks like now, for the stop message and the final report."""
        try:
            health, snap, record = self.observe()
        except Exception as exc:
            problem = f"cannot observe: {type(exc).__name__}: {exc}"
            return {"healthy": False, "main": None, "problems": [problem]}
        pods = {}
        for p in snap.pods:
            inst = snap.instances.get(p.name)
            role = inst.role.value if inst is not None and inst.role is not None else None
            pods[p.name] = {"ready": p.ready, "role": role, "terminating": p.terminating}
        return {
            "healthy": health.healthy,
            "main": record.main or None,
            "sync_replica": record.sync_replica or None,
            "problems": list(health.problems),
            "pods": pods,
        }

    # ---- the roll -----------------------------------------------------------------------------

    def run(self) -> RolloutReport:
        strategy = self.load()
        self.say(strategy.describe())
        if strategy.pod_grace_s < strategy.delete_grace_s() and strategy.name == AGENT_MANAGED:
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
        session: Any = None  # manual without agents: this command leads the Lease until healthy again
        try:
            before = self._pod(pod)
            uid = before.metadata.uid if before is not None else None
            if was_main and s.name != AGENT_MANAGED:
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
        try:
            return self.record()
        except Exception:
            return None

    def _replaced_and_ready(self, pod: str, old_uid: str | None) -> bool:
        p = self._pod(pod)
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

    def hand_over(self, pod: str, deadline: float) -> Any:
        """Move the MAIN off `pod` and wait until it moved. Without agents, returns the Standalone that
        leads the Lease and runs the reconcile loop (it completes what the switchover defers: the
        remaining registrations, the sync confirmation); the caller stops it once healthy again."""
        assert self.strategy is not None
        session = None
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
        pod = self._pod(holder) if holder else None
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

    def _switchover_under_lease(self, pod: str, deadline: float) -> Any:
        from coordinator.__main__ import Standalone

        identity = f"memgraph-ha-cli-{socket.gethostname()}-{os.getpid()}"
        standalone = Standalone(self._settings(identity), api=self.api, run_loop=True).start()
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
