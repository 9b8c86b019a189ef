"""The chart as the emulated cluster runs it: `charts/memgraph` rendered by the real Helm library.

Role: render the chart (helm-python-sdk, offline, as tests/chart/render.py does) with the cluster's
values, and read from the rendered StatefulSet what the kubelet and the agents must follow: every
container's probes (named ports resolved), which container is a native sidecar (an init container with
`restartPolicy: Always`), the preStop hook, the pod's `terminationGracePeriodSeconds`, and the plain
environment the chart gives the agent (lease, renew, retry, reconcile, failoverAfter, preStop budget,
drain, ...) and the memgraph container (the hook's budget). `ChartPod.scaled` puts all of it on a
`TimeScale`. Nothing here is a hand-written copy of a chart value: change the chart, the cluster follows.

Must never: touch a cluster or the network (rendering is offline), or edit the chart.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sim.probes import ProbeSpec, ProbeType
from sim.timescale import TimeScale

CHART_DIR = Path(__file__).resolve().parents[1] / "charts" / "memgraph"
_PROBE_KEYS = {ProbeType.STARTUP: "startupProbe", ProbeType.READINESS: "readinessProbe",
               ProbeType.LIVENESS: "livenessProbe"}


@functools.cache
def _render(values_json: str, release: str, namespace: str) -> tuple[dict[str, Any], ...]:
    import helm_python  # the test extra: only the emulated cluster needs it
    import yaml

    chart = helm_python.Chart.load(str(CHART_DIR))
    rendered = chart.render(json.loads(values_json), name=release, namespace=namespace)
    texts = [text for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")]
    return tuple(d for text in texts for d in yaml.safe_load_all(text) if d)


def render(values: Mapping[str, Any] | None, release: str, namespace: str) -> list[dict[str, Any]]:
    """Every object the chart renders (deep copies: callers may edit them)."""
    return copy.deepcopy(list(_render(json.dumps(values or {}, sort_keys=True), release, namespace)))


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    sidecar: bool  # a native sidecar: init container with restartPolicy Always
    probes: dict[ProbeType, ProbeSpec] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # plain values only (downward API left out)
    prestop: tuple[str, ...] = ()  # the preStop exec command, if any
    manifest: dict[str, Any] = field(default_factory=dict, compare=False)  # as rendered (never scaled)

    @classmethod
    def from_manifest(cls, c: Mapping[str, Any], sidecar: bool) -> ContainerSpec:
        ports = {str(p["name"]): int(p["containerPort"]) for p in c.get("ports") or [] if "name" in p}
        probes = {kind: ProbeSpec.from_manifest(c[key], ports)
                  for kind, key in _PROBE_KEYS.items() if key in c}
        env = {str(e["name"]): str(e["value"]) for e in c.get("env") or [] if "value" in e}
        hook = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command") or ()
        return cls(str(c["name"]), sidecar, probes, env, tuple(hook), copy.deepcopy(dict(c)))

    def scaled(self, scale: TimeScale) -> ContainerSpec:
        return replace(self, probes={k: p.scaled(scale) for k, p in self.probes.items()},
                       env=scale.scale_env(self.env))


@dataclass(frozen=True)
class ChartPod:
    """What the rendered pod template says about timings and containers (see the module docstring)."""

    grace_s: float
    containers: dict[str, ContainerSpec]
    values: dict[str, Any] = field(default_factory=dict)
    scale: TimeScale = field(default_factory=TimeScale)

    @property
    def agent(self) -> ContainerSpec | None:
        return self.containers.get("agent")

    @property
    def memgraph(self) -> ContainerSpec:
        return self.containers["memgraph"]

    def agent_env(self) -> dict[str, str]:
        return dict(self.agent.env) if self.agent else {}

    def agent_seconds(self, name: str) -> float:
        """An agent timing as rendered (already on this pod's scale), e.g. `HA_FAILOVER_AFTER_SECONDS`."""
        return float(self.agent_env()[name])

    @property
    def prestop_budget_s(self) -> float:
        return float(self.memgraph.env.get("PRESTOP_TIMEOUT_SECONDS", "0"))

    def scaled(self, scale: TimeScale) -> ChartPod:
        return replace(self, grace_s=scale.s(self.grace_s),
                       containers={n: c.scaled(scale) for n, c in self.containers.items()}, scale=scale)

    def timings(self) -> dict[str, Any]:
        """The timings this pod runs under, for reports (seconds, on its scale)."""
        probes = {f"{c.name}.{k.value}": {"period_s": p.period_s, "timeout_s": p.timeout_s,
                                          "failure_threshold": p.failure_threshold,
                                          "success_threshold": p.success_threshold,
                                          "initial_delay_s": p.initial_delay_s}
                  for c in self.containers.values() for k, p in c.probes.items()}
        env = {k: float(v) for k, v in self.agent_env().items() if k.endswith("_SECONDS")}
        return {"time_scale": self.scale.factor, "grace_s": self.grace_s,
                "prestop_budget_s": self.prestop_budget_s, "agent": env, "probes": probes}


def pod_from_chart(values: Mapping[str, Any], release: str, namespace: str,
                   scale: TimeScale | None = None) -> ChartPod:
    """Render the chart with `values` and read its StatefulSet's pod template (on `scale`, default 1.0)."""
    docs = render(values, release, namespace)
    sts = [d for d in docs if d.get("kind") == "StatefulSet"]
    if len(sts) != 1:
        raise ValueError(f"the chart rendered {len(sts)} StatefulSets")
    spec = sts[0]["spec"]["template"]["spec"]
    containers = {c["name"]: ContainerSpec.from_manifest(c, sidecar=False)
                  for c in spec.get("containers", [])}
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy") == "Always":
            containers[c["name"]] = ContainerSpec.from_manifest(c, sidecar=True)
    pod = ChartPod(float(spec.get("terminationGracePeriodSeconds", 30)), containers, dict(values))
    return pod.scaled(scale) if scale is not None else pod
