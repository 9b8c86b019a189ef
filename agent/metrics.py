"""Prometheus metrics of one agent, on a private CollectorRegistry, served at `GET /metrics`.

Role: hold the agent's metrics (`memgraph_ha_*`) and offer one small method per fact the agent reports
(role, leadership, replica states and lag, failovers, switchovers, reconcile and switchover durations,
preStop outcomes, lease transitions, diverged pods); render the text exposition.

Must never: use prometheus-client's global registry (several agents share a process in tests), do I/O,
or take label values from unbounded input without trimming them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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


class AgentMetrics:
    """The agent's metrics. Every method is cheap and thread-safe (prometheus-client locks)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._role = Gauge(PREFIX + "role", "1 for the role the local Memgraph reports", ["role"], registry=r)
        self._leader = Gauge(PREFIX + "leader", "1 when this agent holds the Lease (runs the coordinator)",
                             registry=r)
        self._replicas = Gauge(PREFIX + "replicas", "Replicas registered on the MAIN, by status", ["status"],
                               registry=r)
        self._behind = Gauge(PREFIX + "replica_behind", "Transactions a replica is behind its MAIN",
                             ["replica"], registry=r)
        self._diverged = Gauge(PREFIX + "diverged_pods", "Pods known to hold history the MAIN never had (I4)",
                               registry=r)
        self._degraded = Gauge(PREFIX + "degraded",
                               "1 while the MAIN runs without a sync replica (writes are acknowledged "
                               "without a replica copy); set by the leader's agent", registry=r)
        self._failovers = Counter(PREFIX + "failovers", "Failovers run by this agent as leader", ["result"],
                                  registry=r)
        self._switchovers = Counter(PREFIX + "switchovers", "Switchovers run by this agent as leader",
                                    ["result"], registry=r)
        self._switchover_s = Histogram(PREFIX + "switchover_duration_seconds", "Duration of switchovers",
                                       buckets=SWITCHOVER_BUCKETS, registry=r)
        self._reconcile_s = Histogram(PREFIX + "reconcile_duration_seconds", "Duration of reconcile cycles",
                                      buckets=RECONCILE_BUCKETS, registry=r)
        self._prestop = Counter(PREFIX + "prestop_outcomes", "preStop requests served, by outcome",
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
        self.set_replica_counts({})

    def set_role(self, role: str | None) -> None:
        """Mark the local Memgraph's role; None or an unknown value means "unknown"."""
        current = role if role in ROLES else "unknown"
        for name in ROLES:
            self._role.labels(role=name).set(1 if name == current else 0)

    def set_leader(self, leader: bool) -> None:
        self._leader.set(1 if leader else 0)

    def set_replica_counts(self, counts: Mapping[str, int]) -> None:
        """Replicas per status; every known status is reported, absent ones as 0."""
        for status in ReplicaStatus:
            self._replicas.labels(status=status.value).set(counts.get(status.value, 0))

    def set_replica_lag(self, behind: Mapping[str, int]) -> None:
        """Replace the per-replica `behind` values; replicas no longer listed disappear."""
        wanted = {_label(name) for name in behind}
        for labels in self._present_labels(self._behind):
            if labels not in wanted:
                self._behind.remove(labels)
        for name, value in behind.items():
            self._behind.labels(replica=_label(name)).set(value)

    def set_diverged(self, pods: Iterable[str]) -> None:
        self._diverged.set(len(set(pods)))

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

    @staticmethod
    def _present_labels(gauge: Gauge) -> list[str]:
        values: list[str] = []
        for metric in gauge.collect():
            for sample in metric.samples:
                values.append(sample.labels.get("replica", ""))
        return values
