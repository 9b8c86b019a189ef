"""The agent process's moving parts, wired together: elector, local monitor, guard, coordinator.

Role: implement `agent.api.AgentServices` for the HTTP layer. Start the Lease elector; run the local
monitor (the local Memgraph's role every retry period, the guard check against the record the elector
already holds); run the coordinator while this agent leads (pod watch, reconcile loop); answer preStop
through `agent.prestop`; on SIGTERM finish a switchover in progress, stop the coordinator and release
the Lease.

Must never: make health or readiness depend on the API server or the leader (I7), run the coordinator
while not leading, or log a credential.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client as kclient
from kubernetes import config as kconfig

from agent import prestop as prestop_local
from agent.api import PrestopRequest, Result
from agent.config import Settings
from agent.election import ElectionConfig, LeaderElector
from agent.guard import Guard
from agent.lease_store import KubeLeaseStore
from agent.memgraph import MemgraphClient
from agent.metrics import AgentMetrics
from coordinator import record as record_codec
from coordinator.kube import KubeOps
from coordinator.model import ClusterRecord, PodView, Role
from coordinator.procedures import SwitchoverResult
from coordinator.reconciler import Coordinator, CycleHooks

log = logging.getLogger(__name__)


def api_client_for(settings: Settings) -> kclient.ApiClient:
    """In-cluster config, or the kubeconfig named by KUBECONFIG."""
    cfg = kclient.Configuration()
    if settings.kubeconfig:
        kconfig.load_kube_config(config_file=settings.kubeconfig, client_configuration=cfg)
    else:
        kconfig.load_incluster_config(client_configuration=cfg)
    api = kclient.ApiClient(cfg)
    api.user_agent = f"memgraph-ha-agent/{settings.pod_name}"
    return api


class MemgraphPool:
    """One client per (pod, IP), reused across cycles; a pod whose IP changed gets a new one."""

    def __init__(self, settings: Settings, connect_timeout: float = 1.0, query_timeout: float = 1.5) -> None:
        self.s = settings
        self.connect_timeout, self.query_timeout = connect_timeout, query_timeout
        self._clients: dict[str, tuple[str, MemgraphClient]] = {}
        self._lock = threading.Lock()

    def __call__(self, pod: PodView) -> MemgraphClient:
        with self._lock:
            held = self._clients.get(pod.name)
            if held is not None and held[0] == pod.ip:
                return held[1]
            if held is not None:
                held[1].close()
            c = MemgraphClient(
                pod.ip,
                self.s.memgraph_bolt_port,
                self.s.memgraph_user,
                self.s.memgraph_password,
                connect_timeout=self.connect_timeout,
                query_timeout=self.query_timeout,
            )
            self._clients[pod.name] = (pod.ip, c)
            return c

    def close(self) -> None:
        with self._lock:
            for _, c in self._clients.values():
                c.close()
            self._clients.clear()


class _LeaseRecord:
    """Adapts the elector to coordinator.ports.RecordPort for ONE leadership term.

    A coordinator is valid only for the term it was started in (review M3): after a term ends and the
    elector re-acquires the Lease, a coordinator of the old term that is still finishing a step must not
    pass its lease check beside the new term's coordinator.
    """

    def __init__(self, elector: LeaderElector, term: int) -> None:
        self.e = elector
        self.term = term

    def is_leader(self) -> bool:
        return self.e.term_alive(self.term)

    def lease_valid_for(self) -> float:
        return self.e.lease_valid_for() if self.e.term_alive(self.term) else 0.0

    def read_annotations(self) -> dict[str, str]:
        return self.e.read_record()[0]

    def update_annotations(self, changes: Any) -> bool:
        return self.e.update_annotations(changes)


def elector_for(
    settings: Settings,
    api: kclient.ApiClient,
    identity: str,
    on_started_leading: Callable[[], None],
    on_stopped_leading: Callable[[], None],
    on_new_leader: Callable[[str], None],
) -> tuple[LeaderElector, KubeLeaseStore]:
    """A candidate in the StatefulSet's Lease election with the settings' timings (every request times
    out before the next retry period), and its Lease store (close it when done)."""
    timeout = min(2.0, settings.retry_period_s * 0.8)
    store = KubeLeaseStore(api, settings.pod_namespace, settings.lease_name, request_timeout=timeout)
    elector = LeaderElector(
        store,
        identity,
        ElectionConfig(settings.lease_duration_s, settings.renew_deadline_s, settings.retry_period_s),
        on_started_leading=on_started_leading,
        on_stopped_leading=on_stopped_leading,
        on_new_leader=on_new_leader,
    )
    return elector, store


def start_coordinator(
    identity: str,
    settings: Settings,
    api: kclient.ApiClient,
    pool: MemgraphPool,
    elector: LeaderElector,
    component: str = "memgraph-ha",
    hooks: CycleHooks | None = None,
) -> tuple[Coordinator, KubeOps]:
    """The coordinator of the elector's current leadership term, with its pod watch started (woken on
    every pod event). Used by the agent and by the standalone coordinator when they start leading."""
    box: list[Coordinator] = []
    kube = KubeOps(
        api,
        settings.pod_namespace,
        settings.statefulset,
        settings.pod_selector,
        component=component,
        request_timeout=2.0,
        on_change=lambda: box[0].wake() if box else None,
    )
    coord = Coordinator(
        identity,
        kube,
        pool,
        _LeaseRecord(elector, elector.current_term()),
        settings.policy(),
        interval_s=settings.reconcile_interval_s,
        switchover_budget_s=settings.prestop_budget_s,
        hooks=hooks,
    )
    box.append(coord)
    kube.start()
    return coord, kube


class Agent:
    def __init__(
        self, settings: Settings, metrics: AgentMetrics | None = None, api: kclient.ApiClient | None = None
    ) -> None:
        self.s = settings
        self.pod_name = settings.pod_name
        self.metrics = metrics or AgentMetrics()
        self.api = api or api_client_for(settings)
        self.core = kclient.CoreV1Api(self.api)
        self.local = MemgraphClient(
            settings.memgraph_host,
            settings.memgraph_bolt_port,
            settings.memgraph_user,
            settings.memgraph_password,
            connect_timeout=1.0,
            query_timeout=2.0,
        )
        self.elector, self.store = elector_for(
            settings, self.api, settings.pod_name,
            self._started_leading, self._stopped_leading, self._new_leader,
        )
        self.pool = MemgraphPool(settings)
        self.guard = Guard(
            settings.pod_name,
            lambda: self.local.demote(settings.memgraph_replication_port),
            confirm=self.fresh_record,
        )
        self._coord_thread: threading.Thread | None = None
        self.coordinator: Coordinator | None = None
        self._coord_stop: threading.Event | None = None
        self._kube: KubeOps | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._monitor_tick = 0.0
        self._local_ok_at = -1e9
        self._local_state: dict[str, Any] = {"role": None, "reachable": False}
        self._role: Role | None = None
        self._leader_ips: dict[str, str] = {}
        self._threads: list[threading.Thread] = []
        self._prestop_lock = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        log.info("agent starting: %r", self.s)
        self.elector.start()
        t = threading.Thread(target=self._monitor, name="local-monitor", daemon=True)
        t.start()
        self._threads.append(t)

    def shutdown(self, budget_s: float = 20.0) -> None:
        """SIGTERM: let a hand-over in progress finish, stop the coordinator, release the Lease."""
        log.info("agent stopping: waiting up to %.0fs for a hand-over in progress", budget_s)
        if self._prestop_lock.acquire(timeout=budget_s):
            self._prestop_lock.release()
        self._stop.set()
        self._stopped_leading(join_s=min(3.0, budget_s))
        self.elector.stop(release=True, timeout_s=min(5.0, budget_s))
        self.pool.close()
        self.local.close()
        log.info("agent stopped")

    # ---- election callbacks ---------------------------------------------------------------------

    def _started_leading(self) -> None:
        old = self._coord_thread
        if old is not None and old.is_alive():
            old.join(timeout=10.0)  # the previous term's coordinator finishes its step first (review M3)
            if old.is_alive():
                log.warning("the previous term's coordinator is still running; it can no longer act")
        with self._lock:
            if self.coordinator is not None or self._stop.is_set():
                return
            log.info("leadership acquired: starting the coordinator")
            self.metrics.lease_transition(acquired=True)
            self.metrics.set_leader(True)
            stop = threading.Event()
            coord, kube = start_coordinator(
                self.pod_name, self.s, self.api, self.pool, self.elector, hooks=self._cycle_hooks()
            )
            self.coordinator, self._coord_stop, self._kube = coord, stop, kube
            thread = threading.Thread(target=coord.run, args=(stop,), name="coordinator", daemon=True)
            self._coord_thread = thread
            thread.start()

    def _stopped_leading(self, join_s: float = 0.0) -> None:
        """Stop the coordinator; with `join_s`, wait (bounded) until its thread is done, so a Lease
        released right after cannot be acquired by another agent while a command of ours is in flight."""
        self._stop_coordinator()
        thread = self._coord_thread
        if join_s > 0 and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=join_s)

    def _stop_coordinator(self) -> None:
        with self._lock:
            if self.coordinator is None:
                return
            log.info("leadership lost or released: stopping the coordinator")
            self.metrics.lease_transition(acquired=False)
            self.metrics.set_leader(False)
            assert self._coord_stop is not None and self._kube is not None
            self._coord_stop.set()
            self.coordinator.wake()
            # KubeOps.stop joins the pod watch, which sits in a stream read for up to its request timeout
            # + 2 s: never make the Lease release (hand-off, SIGTERM) wait for that.
            threading.Thread(target=self._kube.stop, name="pod-watch-stop", daemon=True).start()
            self.coordinator, self._coord_stop, self._kube = None, None, None

    def _new_leader(self, identity: str) -> None:
        log.info("leader is now %s", identity or "-")

    def _cycle_hooks(self) -> CycleHooks:
        m = self.metrics
        return CycleHooks(
            on_cycle=m.reconcile,
            on_switchover=lambda r: m.switchover(r.ok, r.duration_s),
            on_failover=lambda old, new: m.failover(True),
        )

    # ---- local monitor and guard ------------------------------------------------------------------

    def _monitor(self) -> None:
        while not self._stop.wait(self.s.retry_period_s):
            self._monitor_tick = time.monotonic()
            self.probe_local()
            try:
                self.guard.check(self._role, self.record())
            except Exception:
                log.exception("guard check failed")

    def probe_local(self) -> Role | None:
        try:
            role = self.local.role()
            state: dict[str, Any] = {"role": role.value, "reachable": True}
            if role is Role.MAIN:
                state["replicas"] = [
                    {
                        "name": r.name,
                        "address": r.socket_address,
                        "mode": r.mode.value,
                        "status": r.status.value,
                        "ts": r.ts,
                        "behind": r.behind,
                    }
                    for r in self.local.replicas()
                ]
            self._role, self._local_state, self._local_ok_at = role, state, time.monotonic()
            self._export(state)
        except Exception as exc:
            self._role = None
            self._local_state = {"role": None, "reachable": False, "error": f"{type(exc).__name__}: {exc}"}
        return self._role

    def _export(self, state: dict[str, Any]) -> None:
        self.metrics.set_role(state["role"])
        replicas = state.get("replicas", [])
        counts: dict[str, int] = {}
        for r in replicas:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        self.metrics.set_replica_counts(counts)
        self.metrics.set_replica_lag({r["name"]: r["behind"] for r in replicas})
        rec = self.record()
        if rec is not None:
            self.metrics.set_diverged(rec.diverged)

    def fresh_record(self) -> ClusterRecord | None:
        """The record read from the API server now (one bounded request); None when the read fails."""
        try:
            return record_codec.decode(self.elector.read_record(fresh=True)[0])[0]
        except Exception as exc:
            log.warning("cluster record not readable: %s: %s", type(exc).__name__, exc)
            return None

    def record(self) -> ClusterRecord | None:
        """The record as last seen by the elector (no API request); None when never seen."""
        ann = self.elector.last_seen_annotations()
        if ann is None:
            return None
        return record_codec.decode(ann)[0]

    # ---- AgentServices ----------------------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        age = time.monotonic() - self._monitor_tick if self._monitor_tick else 0.0
        if self._monitor_tick and age > max(10.0, 5 * self.s.retry_period_s):
            return False, f"local monitor stalled for {age:.1f}s"
        return True, "loops running"

    def ready(self) -> tuple[bool, str]:
        if time.monotonic() - self._local_ok_at > max(5.0, 3 * self.s.retry_period_s):
            return False, "local Memgraph not answering"
        reason = self.guard_reason()
        return (False, reason) if reason else (True, f"local Memgraph is {self._local_state.get('role')}")

    def guard_reason(self) -> str:
        from agent.guard import should_demote

        return should_demote(self._role, self.record(), self.pod_name)

    def local_state(self) -> dict[str, Any]:
        rec = self.record()
        return {
            "pod": self.pod_name,
            "leader": self.elector.leader_identity() or None,
            "is_leader": self.is_leader(),
            "memgraph": dict(self._local_state),
            "record": {"main": rec.main, "generation": rec.generation} if rec else None,
        }

    def is_leader(self) -> bool:
        return self.elector.is_leader() and self.coordinator is not None

    def leader_url(self) -> str | None:
        leader = self.elector.leader_identity()
        if not leader or leader == self.pod_name:
            return None
        ip = self._leader_ips.get(leader)
        if ip is None:
            try:
                pod = self.core.read_namespaced_pod(leader, self.s.pod_namespace, _request_timeout=2.0)
                ip = pod.status.pod_ip if pod.status else None
            except Exception as exc:
                log.warning("cannot find the leader's pod %s: %s", leader, exc)
                return None
            if ip:
                self._leader_ips = {leader: ip}
        return f"http://{ip}:{self.s.agent_port}" if ip else None

    def cluster_status(self) -> dict[str, Any]:
        coord = self.coordinator
        if coord is None:
            return {"error": "not-leader", "detail": "this agent does not lead"}
        return coord.status()

    def prestop(self, request: PrestopRequest) -> Result:
        with self._prestop_lock:
            cfg = prestop_local.PrestopConfig(self.s.log_dir, self.s.pod_uid, self.s.pod_ip, self.s.drain_s)
            return prestop_local.handle(
                _PrestopHost(self), cfg, min(request.budget_s, self.s.prestop_budget_s)
            )

    def switchover(self, to: str | None) -> Result:
        coord = self.coordinator
        if coord is None:
            return 503, {"error": "not-leader", "detail": "retry on the leader"}
        r = coord.switchover(None, to, self.s.prestop_budget_s)
        code = 200 if r.ok else 409 if r.outcome in ("no-target", "not-main") else 503
        return code, {
            "outcome": r.outcome,
            "old_main": r.old_main,
            "new_main": r.new_main,
            "duration_s": round(r.duration_s, 3),
            "detail": r.detail,
        }

    def pause(self) -> Result:
        return self._set_paused(True)

    def resume(self) -> Result:
        return self._set_paused(False)

    def _set_paused(self, paused: bool) -> Result:
        if not self.is_leader():
            return 503, {"error": "not-leader", "detail": "retry on the leader"}
        ok = self.elector.update_annotations({record_codec.PREFIX + "paused": "true" if paused else "false"})
        if not ok:
            return 503, {"error": "lease", "detail": "the record could not be written"}
        return 200, {"paused": paused}

    def known_pods(self) -> set[str]:
        coord = self.coordinator
        if coord is not None:
            return {p.name for p in coord.kube.list_pods()}
        return set()

    def api_token(self) -> str | None:
        return self.s.api_token


class _PrestopHost:
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
            log.debug("record refresh failed: %s", exc)
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
                self.a.s.statefulset, self.a.s.pod_namespace, _request_timeout=2
            )
            return int(sts.spec.replicas or 1)
        except Exception:
            return 2  # unknown: assume there is someone to hand over to

    def run_switchover(self, budget_s: float, step: Callable[[str], None]) -> SwitchoverResult:
        coord = self.a.coordinator
        if coord is None:
            return SwitchoverResult("failed", self.pod_name, None, 0.0, "not leader")
        return coord.switchover(self.pod_name, None, budget_s, step)

    def patch_own_labels(self, labels: dict[str, str | None]) -> None:
        self.a.core.patch_namespaced_pod(
            self.pod_name, self.a.s.pod_namespace, {"metadata": {"labels": labels}}, _request_timeout=2.0
        )

    def hand_off_leadership(self) -> None:
        self.a._stopped_leading(join_s=3.0)
        self.a.elector.stop(release=True, timeout_s=3.0)
