"""The node lifecycle controller and the nodes' kubelets, as a pure state machine (time passed in).

Role: what kube-controller-manager's node lifecycle controller does with the heartbeats of the kubelets
(the kubelet renews its node Lease every 10 s: 0.25 x the 40 s lease; the controller looks every
`--node-monitor-period` 5 s), and the states a node's kubelet can be in:
- RUNNING: heartbeats reach the API server; the kubelet probes, restarts and reports;
- FROZEN: the node is paused (the kubelet and every container of its pods stopped): no heartbeat;
- PARTITIONED: the node is cut off from the network: the kubelet and the containers run on and the
  kubelet still probes and restarts locally, but nothing it writes reaches the API server, and it sees
  nothing new (no deletion);
- DEAD: the kubelet process is gone, the containers run on: no probes, no restarts, no status, nothing
  removed (a deleted pod's containers keep running).
When no heartbeat arrived for `--node-monitor-grace-period` (40 s; Kubernetes 1.32+ defaults to 50 s,
kubernetes/kubernetes#126287), the next monitor pass sets the node's Ready condition to Unknown, taints it
`node.kubernetes.io/unreachable:NoExecute` and marks every pod on it not Ready (`MarkPodsNotReady` sets
the pod's Ready condition to False). Pods tolerate that taint for 300 s (DefaultTolerationSeconds), then
the controller deletes them gracefully; a pod deleted on an unreachable node stays Terminating, since only
its kubelet removes it, until it is force deleted (`--grace-period=0 --force`); the StatefulSet makes its
replacement only after the object is gone. A replacement on another node waits for the volume: the
attach-detach controller force-detaches it from the unreachable node only after 6 minutes
(`maxWaitForUnmountDuration`). When heartbeats come back, the node is Ready again and the taint removed.

Must never: sleep, do I/O, or declare a node Unknown before its grace period has passed.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field

from sim.timescale import TimeScale


class KubeletState(enum.Enum):
    RUNNING = "running"
    FROZEN = "frozen"
    PARTITIONED = "partitioned"
    DEAD = "dead"


class NodeEvent(enum.Enum):
    UNREACHABLE = "unreachable"  # Ready Unknown, tainted; its pods are marked not Ready
    EVICT = "evict"  # the taint's toleration ran out: its pods are deleted (gracefully)
    REACHABLE = "reachable"  # heartbeats again: Ready, taint removed


@dataclass(frozen=True)
class NodeTimings:
    lease_renew_s: float = 10.0  # kubelet: nodeLeaseDurationSeconds 40 x renew fraction 0.25
    monitor_period_s: float = 5.0  # --node-monitor-period
    grace_s: float = 40.0  # --node-monitor-grace-period (the 40 s; 50 s from Kubernetes 1.32)
    eviction_s: float = 300.0  # tolerationSeconds of node.kubernetes.io/unreachable (admission default)
    force_detach_s: float = 360.0  # attach-detach reconciler maxWaitForUnmountDuration

    def scaled(self, scale: TimeScale) -> NodeTimings:
        return scale.record(self)


@dataclass
class Node:
    name: str
    kubelet: KubeletState = KubeletState.RUNNING
    last_heartbeat: float = 0.0  # when the API server last saw the node's Lease renewed
    next_renew: float = 0.0  # the kubelet's next renewal, if it can reach the API server
    reachable: bool = True  # the node's Ready condition is True (not Unknown) and it is not tainted
    unreachable_at: float | None = None  # when the controller declared it unreachable (the taint's time)
    evicted: bool = False

    @property
    def reports(self) -> bool:
        """The kubelet's writes reach the API server (status, heartbeats, finalising pods)."""
        return self.kubelet is KubeletState.RUNNING

    @property
    def acts(self) -> bool:
        """The kubelet probes and restarts containers (locally, even when cut off)."""
        return self.kubelet in (KubeletState.RUNNING, KubeletState.PARTITIONED)


@dataclass
class NodeController:
    """Nodes, their kubelets' heartbeats, and the node lifecycle controller's monitor passes."""

    timings: NodeTimings
    start: float
    rng: random.Random = field(default_factory=random.Random)
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.next_monitor = self.start + self.rng.random() * self.timings.monitor_period_s

    def add(self, name: str, now: float) -> Node:
        node = Node(name, last_heartbeat=now, next_renew=now + self.rng.random() * self.timings.lease_renew_s)
        self.nodes[name] = node
        return node

    def set_kubelet(self, name: str, state: KubeletState, now: float) -> None:
        node = self.nodes[name]
        if state is KubeletState.RUNNING and not node.reports:
            node.next_renew = now  # a kubelet back on the network (or restarted) renews at once
        node.kubelet = state

    def tick(self, now: float) -> list[tuple[str, NodeEvent]]:
        """Advance to `now`: the kubelets' renewals, then every monitor pass due. Returns what changed."""
        events: list[tuple[str, NodeEvent]] = []
        while self.next_monitor <= now:
            self._renewals(self.next_monitor)
            events += self._monitor(self.next_monitor)
            self.next_monitor += self.timings.monitor_period_s
        self._renewals(now)
        return events

    def _renewals(self, upto: float) -> None:
        period = self.timings.lease_renew_s
        for node in self.nodes.values():
            if not node.reports:
                continue
            if node.next_renew <= upto:
                missed = math.floor((upto - node.next_renew) / period)
                node.last_heartbeat = node.next_renew + missed * period
                node.next_renew = node.last_heartbeat + period

    def _monitor(self, now: float) -> list[tuple[str, NodeEvent]]:
        out: list[tuple[str, NodeEvent]] = []
        for node in self.nodes.values():
            silent = now - node.last_heartbeat > self.timings.grace_s
            if node.reachable and silent:
                node.reachable, node.unreachable_at, node.evicted = False, now, False
                out.append((node.name, NodeEvent.UNREACHABLE))
            elif not node.reachable and not silent:
                node.reachable, node.unreachable_at = True, None
                out.append((node.name, NodeEvent.REACHABLE))
            elif (not node.reachable and not node.evicted and node.unreachable_at is not None
                  and now - node.unreachable_at >= self.timings.eviction_s):
                node.evicted = True
                out.append((node.name, NodeEvent.EVICT))
        return out

    def schedulable(self) -> list[str]:
        """Nodes a new pod may be bound to: Ready and untainted, kubelet running, in name order."""
        return sorted(n.name for n in self.nodes.values() if n.reachable and n.reports)
