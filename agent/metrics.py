"""Prometheus metrics of one agent, on a private CollectorRegistry, served at `GET /metrics`.

Role: hold the agent's metrics (`memgraph_ha_*`) and offer one small method per fact the agent reports
(role, leadership, replica states and lag, failovers, switchovers, reconcile and switchover durations,
preStop requests, lease transitions, diverged pods and their archives); render the text exposition.
Names carry their unit (`_seconds`, `_transactions`, `_pods`, `_bytes`, counters `_total`); no `_created`
series. The cluster-wide gauges (`replicas`, `replica_behind_transactions`, `diverged_pods`,
`diverged_archive_bytes`) exist only while `set_cluster` has given them (the agent does so only while it
leads): summed over the agents they count once, and a deposed leader's last view does not linger.
docs/operations.md lists every series; the chart's PrometheusRule and dashboard use only these names
(tests/chart/test_observability.py).

Must never: use prometheus-client's global registry (several agents share a process in tests), do I/O,
or take label values from unbounded input without trimming them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from coordinator.core.model import ReplicaStatus, Role

PREFIX = "memgraph_ha_"
CONTENT_TYPE = CONTENT_TYPE_LATEST
ROLES = (Role.MAIN.value, Role.REPLICA.value, "unknown")
SWITCHOVER_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LABEL = 64


def _label(value: str) -> str:
    """A label value trimmed to a sane length (outcomes come from responses)."""
    return (value or "unknown")[:MAX_LABEL]


@dataclass(frozen=True)
class ClusterView:
    """The leader's cluster-wide facts: replicas per status, lag per replica, diverged pods, archives."""

    replica_counts: tuple[tuple[str, int], ...]
    behind: tuple[tuple[str, int], ...]
    diverged: int
    archives: tuple[tuple[str, str, int], ...] = ()  # (pod, archive, bytes) of diverged data kept (I4)


class _ClusterCollector(Collector):
    """Yields the cluster-wide gauges only while a view is set (the leader's), none otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._view: ClusterView | None = None

    def set(self, view: ClusterView | None) -> None:
        with self._lock:
            self._view = view

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            view = self._view
        if view is None:
            return
        replicas = GaugeMetricFamily(PREFIX + "replicas", "Replicas registered on the MAIN, by status "
                                     "(leader only)", labels=["status"])
        for status, count in view.replica_counts:
            replicas.add_metric([status], count)
        behind = GaugeMetricFamily(PREFIX + "replica_behind_transactions", "Transactions a replica is "
                                   "behind its MAIN (0 in sync, negative while lagging; leader only)",
                                   labels=["replica"])
        for name, value in view.behind:
            behind.add_metric([name], value)
        yield replicas
        yield behind
        yield GaugeMetricFamily(PREFIX + "diverged_pods", "Pods known to hold history the MAIN never had "
                                "(I4; leader only)", value=view.diverged)
        archives = GaugeMetricFamily(PREFIX + "diverged_archive_bytes", "Size of an archive of diverged data "
                                     "on a pod's volume (never deleted by the product; leader only)",
                                     labels=["pod", "archive"])
        for pod, name, size in view.archives:
            archives.add_metric([pod, name], size)
        yield archives


class AgentMetrics:
    """The agent's metrics. Every method is cheap and thread-safe (prometheus-client locks)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        prometheus_client.disable_created_metrics()  # no `_created` series (process-wide, idempotent)
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._role = Gauge(PREFIX + "role", "1 for the role the local Memgraph reports", ["role"], registry=r)
        self._leader = Gauge(PREFIX + "leader", "1 when this agent holds the Lease (runs the coordinator)",
                             registry=r)
        self._cluster = _ClusterCollector()
        r.register(self._cluster)
        self._degraded = Gauge(PREFIX + "degraded",
                               "1 while the MAIN runs without a sync replica (writes are acknowledged "
                               "without a replica copy); set by the leader's agent, 0 elsewhere", registry=r)
        self._failovers = Counter(PREFIX + "failovers", "Failovers run by this agent as leader", ["result"],
                                  registry=r)
        self._switchovers = Counter(PREFIX + "switchovers", "Switchovers run by this agent as leader",
                                    ["result"], registry=r)
        self._switchover_s = Histogram(PREFIX + "switchover_duration_seconds", "Duration of switchovers",
                                       buckets=SWITCHOVER_BUCKETS, registry=r)
        self._reconcile_s = Histogram(PREFIX + "reconcile_duration_seconds", "Duration of reconcile cycles",
                                      buckets=RECONCILE_BUCKETS, registry=r)
        self._prestop = Counter(PREFIX + "prestop_requests", "preStop requests served, by outcome",
                                ["outcome"], registry=r)
        self._lease = Counter(PREFIX + "lease_transitions", "Times this agent gained or lost the Lease",
                              ["change"], registry=r)
        for counter, label, values in ((self._failovers, "result", ("ok", "failed")),
                                       (self._switchovers, "result", ("ok", "failed")),
                                       (self._lease, "change", ("acquired", "lost"))):
            for value in values:
                counter.labels(**{label: value})  # present at 0 from the start, so rate() works
        self.set_role(None)
        self.set_leader(False)

    def set_role(self, role: str | None) -> None:
        """Mark the local Memgraph's role; None or an unknown value means "unknown"."""
        current = role if role in ROLES else "unknown"
        for name in ROLES:
            self._role.labels(role=name).set(1 if name == current else 0)

    def set_leader(self, leader: bool) -> None:
        self._leader.set(1 if leader else 0)
        if not leader:
            self.clear_cluster()

    def set_cluster(self, replica_counts: Mapping[str, int], behind: Mapping[str, int],
                    diverged: Iterable[str], archives: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """The leader's view: replicas per status (every known status, absent ones 0), lag per replica,
        diverged pods, archive sizes (pod -> archive name -> bytes). Replaces the previous view whole
        (replicas and archives no longer listed disappear)."""
        counts = tuple((st.value, int(replica_counts.get(st.value, 0))) for st in ReplicaStatus)
        lag = tuple(sorted((_label(name), int(v)) for name, v in behind.items()))
        kept = tuple(sorted((_label(pod), _label(name), int(size)) for pod, names in (archives or {}).items()
                            for name, size in names.items()))
        self._cluster.set(ClusterView(counts, lag, len(set(diverged)), kept))

    def clear_cluster(self) -> None:
        """Not the leader (any more): no cluster-wide series at all, and not degraded as far as this
        agent knows (the leader's agent reports that)."""
        self._cluster.set(None)
        self._degraded.set(0)

    def set_degraded(self, degraded: bool) -> None:
        self._degraded.set(1 if degraded else 0)

    def failover(self, ok: bool) -> None:
        self._failovers.labels(result="ok" if ok else "failed").inc()

    def switchover(self, ok: bool, duration_s: float) -> None:
        self._switchovers.labels(result="ok" if ok else "failed").inc()
        self._switchover_s.observe(duration_s)

    def reconcile(self, duration_s: float) -> None:
        self._reconcile_s.observe(duration_s)

    def prestop(self, outcome: str) -> None:
        self._prestop.labels(outcome=_label(outcome)).inc()

    def lease_transition(self, acquired: bool) -> None:
        self._lease.labels(change="acquired" if acquired else "lost").inc()

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric above."""
        return generate_latest(self.registry)
