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
from typing import Any

from kubernetes import client as kclient

from agent import fence as fencing
from agent import prestop as prestop_local
from agent.api import PrestopRequest, Result
from agent.fence import FenceRequest
from agent.guard import Guard, should_demote
from agent.handover import HandoverRequest, switchover_answer
from agent.handover import handover as run_handover
from agent.handover_host import LeaderSide
from agent.metrics import AgentMetrics
from agent.peer_records import PeerPrestopRecords
from agent.prestop_host import PrestopHost
from agent.prestop_summary import last_record
from agent.procfs import MemgraphProcesses
from coordinator.core import record as record_codec
from coordinator.core.identity import incarnation_identity, names_another_incarnation, pod_of
from coordinator.core.model import (
    FENCE_LOCAL_CONNECT_S,
    FENCE_LOCAL_QUERY_S,
    ClusterRecord,
    Role,
    replica_name,
)
from coordinator.edge.demotion import demote_while_busy
from coordinator.edge.logs import log_event
from coordinator.edge.memgraph import MemgraphClient
from coordinator.edge.settings import Settings
from coordinator.runtime.reconciler import Coordinator, CycleHooks
from coordinator.runtime.term import Term, TermRunner
from coordinator.runtime.wiring import MemgraphPool, api_client_for, elector_for, start_coordinator

log = logging.getLogger(__name__)
FAST_PROBE_S = 0.1  # the local monitor's period while the local Memgraph does not answer


class Agent:
    def __init__(
        self, settings: Settings, metrics: AgentMetrics | None = None, api: kclient.ApiClient | None = None
    ) -> None:
        self.s = settings
        self.pod_name = settings.identity.pod_name
        self.metrics = metrics or AgentMetrics()
        self.api = api or api_client_for(settings, f"memgraph-ha-agent/{settings.identity.pod_name}")
        self.core = kclient.CoreV1Api(self.api)
        self.local = MemgraphClient(
            settings.memgraph.host,
            settings.memgraph.bolt_port,
            settings.memgraph.user,
            settings.memgraph.password,
            connect_timeout=1.0,
            query_timeout=2.0,
        )
        self.terms: TermRunner[Coordinator] = TermRunner(self._build_term, on_change=self._leadership_changed)
        # one identity per pod incarnation (issue 16 item 3): a recreated pod never inherits the Lease
        self.identity = incarnation_identity(settings.identity.pod_name, settings.identity.uid)
        self.elector, self.store = elector_for(
            settings, self.api, self.identity,
            self.terms.started, self.terms.stopped, self._new_leader,
        )
        self.pool = MemgraphPool(settings)
        data_dir = settings.memgraph.data_directory
        self.procs = MemgraphProcesses(data_dir) if data_dir else None  # the pod's shared process namespace
        self.peer_records = PeerPrestopRecords(
            settings.identity.pod_name, lambda: last_record(settings.prestop.log_dir), settings.api.port,
            settings.api.token,
        )
        self.guard = Guard(
            settings.identity.pod_name,
            lambda: demote_while_busy(self.local, settings.memgraph.replication_port, time.sleep,
                                      self.pod_name),
            confirm=self.fresh_record,
            record_age=self.elector.seen_age_s,
            stale_after_s=2 * settings.election.retry_period_s,  # the copy is at most one period old
        )
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
        self.terms.close(join_s=min(3.0, budget_s))
        self.elector.stop(release=True, timeout_s=min(5.0, budget_s))
        self.pool.close()
        self.local.close()
        log.info("agent stopped")

    # ---- leadership terms ---------------------------------------------------------------------

    @property
    def coordinator(self) -> Coordinator | None:
        """The coordinator of the current leadership term; None while this agent does not lead."""
        return self.terms.coordinator

    def _build_term(self) -> Term[Coordinator]:
        return start_coordinator(
            self.pod_name, self.s, self.api, self.pool, self.elector, hooks=self._cycle_hooks()
        )

    def _leadership_changed(self, leading: bool) -> None:
        self.metrics.lease_transition(acquired=leading)
        self.metrics.set_leader(leading)

    def _new_leader(self, identity: str) -> None:
        log.info("leader is now %s", identity or "-")

    def _cycle_hooks(self) -> CycleHooks:
        m = self.metrics
        return CycleHooks(
            on_cycle=m.reconcile,
            on_switchover=lambda r: m.switchover(r.ok, r.duration_s),
            on_failover=lambda old, new: m.failover(True),
            on_degraded=m.set_degraded,
        )

    # ---- local monitor and guard ------------------------------------------------------------------

    def _monitor(self) -> None:
        while not self._stop.wait(self._monitor_interval_s()):
            self._monitor_tick = time.monotonic()
            self.probe_local()
            try:
                self.guard.check(self._role, self.record())
            except Exception:
                log.exception("guard check failed")

    def _monitor_interval_s(self) -> float:
        """Every retry period while the local Memgraph answers; every FAST_PROBE_S while it does not, so
        a restarting former MAIN (Memgraph restores the role it had) is seen, and demoted by the guard,
        within a fraction of a second of its first answer (issue 16 item 9)."""
        if self._local_state.get("reachable"):
            return self.s.election.retry_period_s
        return min(FAST_PROBE_S, self.s.election.retry_period_s)

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
        except Exception as exc:  # unreachable is a state to report (readiness, /api/v1/local), logged once
            error = f"{type(exc).__name__}: {exc}"
            level = logging.WARNING if self._local_state.get("reachable") else logging.DEBUG
            log_event(log, "local Memgraph not answering", level=level, error=error)
            self._role = None
            self._local_state = {"role": None, "reachable": False, "error": error}
        return self._role

    def _export(self, state: dict[str, Any]) -> None:
        """The local role for every agent; the cluster-wide gauges only from the leader, from its last
        observation (the status document), so that they count once when summed over the agents."""
        self.metrics.set_role(state["role"])
        coord = self.coordinator
        if not self.is_leader() or coord is None:
            self.metrics.clear_cluster()
            return
        doc = coord.status()
        if not doc.get("pods"):
            self.metrics.clear_cluster()  # no observation yet: no view to report
            return
        rows = {p["name"]: p["replica"] for p in doc["pods"] if p.get("replica")}
        counts: dict[str, int] = {}
        for row in rows.values():
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        behind = {replica_name(n): int(r.get("behind") or 0) for n, r in rows.items()}
        # every pod's archives of diverged data, from its re-seed init container's report (status pods[].data)
        archives = {p["name"]: {a["name"]: int(a["bytes"]) for a in p["data"]["archives"]}
                    for p in doc["pods"] if p.get("data")}
        self.metrics.set_cluster(counts, behind, (doc.get("cluster") or {}).get("diverged") or [], archives)

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
        if self._monitor_tick and age > max(10.0, 5 * self.s.election.retry_period_s):
            return False, f"local monitor stalled for {age:.1f}s"
        return True, "loops running"

    def process_state(self) -> str:
        """The local Memgraph's process: running, stopped (every thread in state T), none; unknown when the
        agent has no view of it (MEMGRAPH_DATA_DIRECTORY unset)."""
        return self.procs.view().state if self.procs is not None else "unknown"

    def ready(self) -> tuple[bool, str]:
        if self.process_state() == "stopped":  # issue 16 item 4: stopped is dead, busy is not
            return False, "local Memgraph process is stopped (SIGSTOP or frozen)"
        if time.monotonic() - self._local_ok_at > max(5.0, 3 * self.s.election.retry_period_s):
            return False, "local Memgraph not answering"
        reason = self.guard_reason()
        return (False, reason) if reason else (True, f"local Memgraph is {self._local_state.get('role')}")

    def guard_reason(self) -> str:
        return should_demote(self._role, self.record(), self.pod_name)

    def local_state(self) -> dict[str, Any]:
        rec = self.record()
        return {
            "pod": self.pod_name,
            "leader": pod_of(self.elector.leader_identity()) or None,
            "is_leader": self.is_leader(),
            "memgraph": {**self._local_state, "process": self.process_state()},
            "record": {"main": rec.main, "generation": rec.generation} if rec else None,
            "api_server_failing_s": self.elector.api_failing_for(),
            "prestop_last": last_record(self.s.prestop.log_dir),
        }

    def is_leader(self) -> bool:
        return self.elector.is_leader() and self.coordinator is not None

    def leader_url(self) -> str | None:
        """The leading agent's API, from the Lease holder's pod; None while none is known, while we lead,
        or while the holder is an incarnation of a pod that no longer exists (its Lease expires)."""
        holder = self.elector.leader_identity()
        if not holder or holder == self.identity:
            return None
        name = pod_of(holder)
        if name == self.pod_name:
            log.warning("the Lease names an earlier incarnation of this pod (%s); waiting for it to expire",
                        holder)
            return None
        ip = self._leader_ips.get(holder)
        if ip is None:
            try:
                pod = self.core.read_namespaced_pod(name, self.s.identity.namespace, _request_timeout=2.0)
            except Exception as exc:
                log.warning("cannot find the leader's pod %s: %s", name, exc)
                return None
            if pod.metadata is not None and names_another_incarnation(holder, pod.metadata.uid):
                log.warning("the Lease holder %s is an earlier incarnation of pod %s (now uid %s)",
                            holder, name, pod.metadata.uid)
                return None
            ip = pod.status.pod_ip if pod.status else None
            if ip:
                self._leader_ips = {holder: ip}
        return f"http://{ip}:{self.s.api.port}" if ip else None

    def cluster_status(self) -> dict[str, Any] | None:
        coord = self.coordinator
        if coord is None:
            return None
        snap = coord.last_snapshot  # the pods of the last cycle: no API request here
        pods = [(p.name, p.ip) for p in snap.pods] if snap is not None else []
        records, age = self.peer_records.view(pods)
        extra = {"prestop_records": records, "prestop_records_age_s": age}
        return coord.status(self.elector.api_failing_for(), extra)

    def prestop(self, request: PrestopRequest) -> Result:
        with self._prestop_lock:
            me, p = self.s.identity, self.s.prestop
            cfg = prestop_local.PrestopConfig(p.log_dir, me.uid, me.ip, p.drain_s)
            return prestop_local.handle(
                PrestopHost(self), cfg, min(request.budget_s, self.s.prestop.budget_s)
            )

    def switchover(self, to: str | None) -> Result:
        coord = self.coordinator
        if coord is None:
            return 503, {"error": "not-leader", "detail": "retry on the leader"}
        return switchover_answer(coord.switchover(None, to, self.s.prestop.budget_s))

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

    def purge(self, pod: str, archive: str) -> Result:
        """Record an operator's purge of one archive (done by the pod's init container at its next start)."""
        coord = self.coordinator
        if coord is None or not self.is_leader():
            return 503, {"error": "not-leader", "detail": "retry on the leader"}
        view = next((p for p in coord.kube.list_pods() if p.name == pod), None)
        if view is None:
            return 404, {"error": "unknown-pod", "detail": f"{pod} is not a pod of this cluster"}
        if view.data is None or archive not in {a.name for a in view.data.archives}:
            return 404, {"error": "unknown-archive", "detail": f"{pod} reports no archive {archive!r}"}
        rec = self.fresh_record()
        if rec is None:
            return 503, {"error": "lease", "detail": "the record could not be read"}
        entries = sorted({*rec.purge, f"{pod}/{archive}"})
        if not self.elector.update_annotations({record_codec.PREFIX + "purge": ",".join(entries)}):
            return 503, {"error": "lease", "detail": "the record could not be written"}
        log_event(log, "archive purge requested", pod=pod, archive=archive)
        detail = f"removed by {pod}'s init container at its next start (kubectl delete pod {pod})"
        return 202, {"pod": pod, "archive": archive, "pending": entries, "detail": detail}

    def known_pods(self) -> set[str]:
        coord = self.coordinator
        if coord is not None:
            return {p.name for p in coord.kube.list_pods()}
        return set()

    def api_token(self) -> str | None:
        return self.s.api.token

    def fence_token(self) -> str | None:
        return self.s.api.fence_token

    # ---- fencing (agent/fence.py) -----------------------------------------------------------------

    @property
    def pod_uid(self) -> str:
        return self.s.identity.uid

    def local_answers(self) -> bool:
        """SHOW REPLICATION ROLE on the local Memgraph now, on a fresh connection, within the fence's
        budget (FENCE_LOCAL_CONNECT_S + FENCE_LOCAL_QUERY_S): the query is served by Memgraph's
        high-priority worker, so a busy Memgraph answers it at once on its own pod."""
        m = self.s.memgraph
        client = MemgraphClient(m.host, m.bolt_port, m.user, m.password,
                                connect_timeout=FENCE_LOCAL_CONNECT_S, query_timeout=FENCE_LOCAL_QUERY_S)
        try:
            client.role()
            return True
        except Exception as exc:  # not answering is the fact the fence needs
            log_event(log, "fence: local Memgraph does not answer", error=f"{type(exc).__name__}: {exc}")
            return False
        finally:
            client.close()

    def fence(self, request: FenceRequest) -> Result:
        return fencing.fence(request, self, self.procs)

    def handover(self, request: HandoverRequest) -> Result:
        return run_handover(request, LeaderSide(self))
