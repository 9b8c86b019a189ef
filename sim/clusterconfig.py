"""What an emulated cluster is made of: its configuration, the chart values it renders, its timings.

Role: `ClusterConfig` (size, names, the pod's shape, the chart values on top of the cluster's own, the time
scale, Kubernetes' node and back-off timings), the chart values it renders the chart with
(`chart_values`), and `ClusterTimings`: every duration the cluster runs under, read from the rendered
chart and put on the cluster's time scale -- what tests, scenarios and the bench wait on instead of
numbers of their own.

Must never: hold a product timing of its own (they come from the chart: change `values` instead).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.backoff import BackoffTimings
from sim.chart import ChartPod, pod_from_chart
from sim.endpoints import DEFAULT_DELAY_S
from sim.kubelet import PodTemplate
from sim.nodes import NodeTimings
from sim.timescale import TimeScale


@dataclass
class ClusterConfig:
    replicas: int = 3
    name: str = "memgraph"
    namespace: str = "default"
    template: PodTemplate = field(default_factory=PodTemplate)
    seed: int | None = None
    memgraph_auth: tuple[str, str] | None = None
    # chart values on top of the cluster's (size, name, agent on/off, sync mode); e.g.
    # {"haAgent": {"failoverAfterSeconds": 10}} or {"container": {"terminationGracePeriodSeconds": 60}}
    values: dict[str, Any] = field(default_factory=dict)
    time_scale: TimeScale = field(default_factory=TimeScale.from_env)
    sync_mode: str = "STRICT_SYNC"
    # haAgent.divergence.reseed (the chart's default, auto): `auto` also runs the chart's reseed init
    # container in every pod, as the chart does with HA on
    reseed: str = "auto"
    extra_agent_env: dict[str, str] = field(default_factory=dict)
    # StatefulSet podManagementPolicy: the chart's OrderedReady, or Parallel (every missing pod is created
    # at once, without waiting for the lower ordinals; the scenario suite uses it to start faster)
    pod_management: str = "OrderedReady"
    node_timings: NodeTimings = field(default_factory=NodeTimings)
    backoff: BackoffTimings = field(default_factory=BackoffTimings)
    spare_nodes: int = 1  # nodes beyond one per replica (where a replacement goes after a node loss)
    # edits the chart's rendered ServiceAccount/Role/RoleBinding/PDB before they are applied (a test that
    # takes a verb away from the Role); None applies them as rendered
    edit_identity: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    network: str = "auto"  # netns (required), loopback, or auto: netns when it can be made (sim.bed)
    endpoint_delay_s: float = DEFAULT_DELAY_S  # EndpointSlice propagation to kube-proxy and DNS (at 1.0)
    headless_publish_not_ready: bool = True  # the chart's headless Service (False: seed 001 incident 3)

    def chart_values(self) -> dict[str, Any]:
        t = self.template
        base: dict[str, Any] = {
            "fullnameOverride": self.name,
            "replicaCount": self.replicas,
            "haAgent": {"enabled": t.with_agent, "nativeSidecar": t.native_sidecar,
                        "syncMode": self.sync_mode, "divergence": {"reseed": self.reseed}},
        }
        return _merge(base, self.values)

    def chart(self) -> ChartPod:
        """The chart rendered with these values, on this time scale."""
        return pod_from_chart(self.chart_values(), self.name, self.namespace, self.time_scale)

    def timings(self, chart: ChartPod | None = None) -> ClusterTimings:
        scale = self.time_scale
        return ClusterTimings.of(chart or self.chart(), self.node_timings.scaled(scale),
                                 self.backoff.scaled(scale), scale.s(self.endpoint_delay_s))


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


@dataclass(frozen=True)
class ClusterTimings:
    """Every duration the cluster runs under (seconds, on its time scale)."""

    scale: float
    lease_duration_s: float
    renew_deadline_s: float
    retry_period_s: float
    reconcile_interval_s: float
    failover_after_s: float
    prestop_budget_s: float
    drain_s: float
    grace_s: float
    node_grace_s: float
    node_monitor_period_s: float
    node_lease_renew_s: float
    eviction_s: float
    force_detach_s: float
    backoff_initial_s: float
    backoff_max_s: float
    endpoint_delay_s: float

    @classmethod
    def of(cls, chart: ChartPod, nodes: NodeTimings, backoff: BackoffTimings,
           endpoint_delay_s: float) -> ClusterTimings:
        env = chart.agent_env()

        def agent(name: str, default: float) -> float:
            return float(env.get(name, chart.scale.s(default)))

        return cls(
            scale=chart.scale.factor,
            lease_duration_s=agent("HA_LEASE_DURATION_SECONDS", 15.0),
            renew_deadline_s=agent("HA_RENEW_DEADLINE_SECONDS", 10.0),
            retry_period_s=agent("HA_RETRY_PERIOD_SECONDS", 2.0),
            reconcile_interval_s=agent("HA_RECONCILE_INTERVAL_SECONDS", 2.0),
            failover_after_s=agent("HA_FAILOVER_AFTER_SECONDS", 5.0),
            prestop_budget_s=chart.prestop_budget_s,
            drain_s=agent("HA_DRAIN_SECONDS", 5.0),
            grace_s=chart.grace_s,
            node_grace_s=nodes.grace_s,
            node_monitor_period_s=nodes.monitor_period_s,
            node_lease_renew_s=nodes.lease_renew_s,
            eviction_s=nodes.eviction_s,
            force_detach_s=nodes.force_detach_s,
            backoff_initial_s=backoff.initial_s,
            backoff_max_s=backoff.max_s,
            endpoint_delay_s=endpoint_delay_s,
        )

    def describe(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}
