"""Wiring shared by the agent and the standalone coordinator: clients, the elector, a term's coordinator.

Role: build the concrete pieces from the settings -- the Kubernetes ApiClient, a pool of Memgraph
clients (one per pod and IP), the Lease election candidate with its store, the adapter that gives a
coordinator the cluster record for ONE leadership term, and that term's coordinator with its pod watch
started -- so `agent.runtime` and `ctl.standalone` differ only in what they add around them.

Must never: start a loop of its own (the caller owns every thread but the pod watch it starts), or let a
coordinator of an ended term pass its lease check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from kubernetes import client as kclient
from kubernetes import config as kconfig

from coordinator.core.lease_rules import ElectionConfig
from coordinator.core.model import PodView
from coordinator.edge.election import LeaderElector
from coordinator.edge.fence_client import AgentFencer
from coordinator.edge.kube import KubeOps
from coordinator.edge.lease_store import KubeLeaseStore
from coordinator.edge.memgraph import MemgraphClient
from coordinator.edge.settings import Settings
from coordinator.runtime.reconciler import Coordinator, CycleHooks
from coordinator.runtime.term import Term

POD_API_TIMEOUT_S = 2.0  # pod watch, label patches and Events of a term's coordinator
LEASE_API_TIMEOUT_S = 2.0  # upper bound of one Lease request (also below 80 % of the retry period)
PEER_CONNECT_TIMEOUT_S = 1.0  # Bolt connect to another pod's Memgraph
PEER_QUERY_TIMEOUT_S = 1.5  # one Bolt call to another pod's Memgraph


def api_client_for(settings: Settings, user_agent: str) -> kclient.ApiClient:
    """In-cluster config, or the kubeconfig named by KUBECONFIG."""
    cfg = kclient.Configuration()
    if settings.cluster.kubeconfig:
        kconfig.load_kube_config(config_file=settings.cluster.kubeconfig, client_configuration=cfg)
    else:
        kconfig.load_incluster_config(client_configuration=cfg)
    api = kclient.ApiClient(cfg)
    api.user_agent = user_agent
    return api


class MemgraphPool:
    """One client per (pod, IP), reused across cycles; a pod whose IP changed gets a new one."""

    def __init__(
        self,
        settings: Settings,
        connect_timeout: float = PEER_CONNECT_TIMEOUT_S,
        query_timeout: float = PEER_QUERY_TIMEOUT_S,
    ) -> None:
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
                self.s.memgraph.bolt_port,
                self.s.memgraph.user,
                self.s.memgraph.password,
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


class TermRecord:
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

    def update_annotations(self, changes: Mapping[str, str | None]) -> bool:
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
    e = settings.election
    timeout = min(LEASE_API_TIMEOUT_S, e.retry_period_s * 0.8)
    store = KubeLeaseStore(api, settings.identity.namespace, e.lease_name, request_timeout=timeout)
    elector = LeaderElector(
        store,
        identity,
        ElectionConfig(e.lease_duration_s, e.renew_deadline_s, e.retry_period_s),
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
) -> Term[Coordinator]:
    """The coordinator of the elector's current leadership term, with its pod watch started (woken on
    every pod event). Used by the agent and by the standalone coordinator when they start leading."""
    box: list[Coordinator] = []
    kube = KubeOps(
        api,
        settings.identity.namespace,
        settings.cluster.statefulset,
        settings.cluster.pod_selector,
        component=component,
        request_timeout=POD_API_TIMEOUT_S,
        on_change=lambda: box[0].wake() if box else None,
    )
    coord = Coordinator(
        identity,
        kube,
        pool,
        TermRecord(elector, elector.current_term()),
        settings.planner_policy(),
        interval_s=settings.policy.reconcile_interval_s,
        switchover_budget_s=settings.prestop.budget_s,
        hooks=hooks,
        fencer=AgentFencer(settings.api.port, settings.api.fence_token or settings.api.token),
    )
    box.append(coord)
    kube.start()
    return Term(coord, kube)
