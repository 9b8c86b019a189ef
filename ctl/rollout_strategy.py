"""Pure parts of `memgraph-ha rollout restart`: strategy detection, the order, the per-pod result.

Role: read a StatefulSet (as the JSON dict the API serves, camelCase keys) and say how its pods can be
restarted without losing the MAIN's acknowledged writes (the rolling-restart tool pattern, prior art 003):
- `agent-managed`: the memgraph container has our preStop hook (exec running prestop.py) and the agent
  runs in the pod (native sidecar: init container with restartPolicy Always, or an ordinary container).
  Deleting the pod with a grace period of the hook's budget + 60 s lets the hook hand the MAIN over.
- `manual`: anything else. The command itself moves the MAIN away (agent API, or the switchover run
  under the Lease when no agent runs) before it deletes the MAIN's pod with a short grace.
Also: the restart order (highest ordinal first, the MAIN last), the grace periods, the plan in words, the
connection facts the command needs (Bolt port, agent port, Lease name, selector, headless service), the
options (`RolloutOptions`, secrets kept out of its repr) and the results (`PodResult`, `RolloutReport`).

Must never: do I/O or guess silently -- every decision carries the reason shown to the operator.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from coordinator.core import defaults
from coordinator.core.model import pod_ordinal


class StrategyName(enum.StrEnum):
    """How a StatefulSet's pods are restarted (the text is what the command prints and its JSON says)."""

    AGENT_MANAGED = "agent-managed"  # the preStop hook hands the MAIN over
    MANUAL = "manual"  # this command moves the MAIN before deleting its pod


AGENT_MANAGED = StrategyName.AGENT_MANAGED
MANUAL = StrategyName.MANUAL
DEFAULT_HOOK_BUDGET_S = defaults.PRESTOP_BUDGET_S  # the hook's PRESTOP_TIMEOUT_SECONDS default
HOOK_EXTRA_GRACE_S = 60
MANUAL_GRACE_S = 30
HOOK_SCRIPT = "prestop.py"


@dataclass(frozen=True)
class Strategy:
    """How the pods of one StatefulSet are restarted, and why."""

    name: StrategyName
    reason: str
    has_hook: bool
    has_agent: bool
    native_sidecar: bool
    hook_budget_s: float  # PRESTOP_TIMEOUT_SECONDS of the memgraph container (default 600)
    pod_grace_s: int  # spec.template.spec.terminationGracePeriodSeconds (default 30)

    def delete_grace_s(self) -> int:
        """Grace period for deleting one pod: budget + 60 s under `agent-managed`, short under `manual`."""
        if self.name is AGENT_MANAGED:
            return math.ceil(self.hook_budget_s) + HOOK_EXTRA_GRACE_S
        return min(MANUAL_GRACE_S, self.pod_grace_s) if self.pod_grace_s > 0 else MANUAL_GRACE_S

    def describe(self) -> str:
        return f"strategy {self.name}: {self.reason}"


@dataclass(frozen=True)
class ClusterFacts:
    """What the command reads off the StatefulSet to reach the cluster."""

    selector: str
    headless_service: str
    bolt_port: int
    agent_port: int | None
    lease_name: str
    replicas: int


def _containers(spec: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pod = ((spec.get("template") or {}).get("spec")) or {}
    return list(pod.get("containers") or []), list(pod.get("initContainers") or [])


def _env(container: dict[str, Any], name: str) -> str | None:
    for e in container.get("env") or []:
        if e.get("name") == name and "value" in e:
            return str(e["value"])
    return None


def memgraph_container(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The container named `memgraph`, else the first container."""
    containers, _ = _containers(spec)
    for c in containers:
        if c.get("name") == "memgraph":
            return c
    return containers[0] if containers else None


def _is_agent(container: dict[str, Any]) -> bool:
    """Our agent: named `agent`, or configured with HA_STATEFULSET (the agent's required setting)."""
    return container.get("name") == "agent" or _env(container, "HA_STATEFULSET") is not None


def agent_container(spec: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """(the agent container, runs as a native sidecar)."""
    containers, inits = _containers(spec)
    for c in inits:
        if _is_agent(c) and c.get("restartPolicy") == "Always":
            return c, True
    for c in containers:
        if _is_agent(c):
            return c, False
    return None, False


def _hook_command(container: dict[str, Any]) -> list[str]:
    exec_ = (((container.get("lifecycle") or {}).get("preStop")) or {}).get("exec") or {}
    return [str(part) for part in exec_.get("command") or []]


def _budget(container: dict[str, Any]) -> tuple[float, str]:
    raw = _env(container, "PRESTOP_TIMEOUT_SECONDS")
    if raw is None:
        return DEFAULT_HOOK_BUDGET_S, "default"
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_HOOK_BUDGET_S, f"unparsable {raw!r}, default used"
    if not value > 0 or math.isinf(value):
        return DEFAULT_HOOK_BUDGET_S, f"invalid {raw!r}, default used"
    return value, "PRESTOP_TIMEOUT_SECONDS"


def detect_strategy(sts: dict[str, Any]) -> Strategy:
    """The strategy for a StatefulSet given as the API's JSON (metadata/spec, camelCase)."""
    spec = sts.get("spec") or {}
    pod_spec = ((spec.get("template") or {}).get("spec")) or {}
    grace = int(pod_spec.get("terminationGracePeriodSeconds", 30) or 0)
    mg = memgraph_container(spec)
    agent, native = agent_container(spec)
    command = _hook_command(mg) if mg is not None else []
    has_hook = any(part.endswith(HOOK_SCRIPT) or f"/{HOOK_SCRIPT} " in f"{part} " for part in command)
    budget, budget_from = _budget(mg) if mg is not None else (DEFAULT_HOOK_BUDGET_S, "default")
    has_agent = agent is not None
    where = "native sidecar (init container, restartPolicy Always)" if native else "container"
    if mg is None:
        reason = "the pod template has no container"
    elif has_hook and has_agent:
        reason = (
            f"container {mg.get('name')!r} has the preStop hook ({' '.join(command)}), budget "
            f"{budget:g}s ({budget_from}); agent runs as a {where}; pod grace {grace}s"
        )
    elif has_agent:
        hook = f"preStop is {' '.join(command)!r}" if command else "no preStop hook"
        reason = f"agent runs as a {where} but container {mg.get('name')!r} has {hook}"
    elif has_hook:
        reason = f"container {mg.get('name')!r} has the preStop hook but no agent runs in the pod"
    else:
        reason = "no agent and no preStop hook in the pod template"
    name = AGENT_MANAGED if has_hook and has_agent else MANUAL
    return Strategy(name, reason, has_hook, has_agent, native, budget, grace)


def _container_port(container: dict[str, Any] | None, names: tuple[str, ...]) -> int | None:
    ports = (container or {}).get("ports") or []
    for p in ports:
        if p.get("name") in names:
            return int(p["containerPort"])
    return int(ports[0]["containerPort"]) if ports and not names else None


def cluster_facts(sts: dict[str, Any]) -> ClusterFacts:
    """Selector, headless service, ports and Lease name as the StatefulSet (and its agent) declare them.

    The headless service is the agent's HA_HEADLESS_SERVICE only: `serviceName` may be a ClusterIP Service
    (the official chart's), which gives no per-pod DNS, so without that setting replicas go by pod IP.
    """
    meta, spec = sts.get("metadata") or {}, sts.get("spec") or {}
    labels = ((spec.get("selector") or {}).get("matchLabels")) or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    mg = memgraph_container(spec)
    agent, _ = agent_container(spec)
    bolt = _container_port(mg, ("bolt",)) or defaults.BOLT_PORT
    agent_port = _container_port(agent, ("agent", "agent-http", "http")) if agent else None
    if agent is not None and agent_port is None:
        agent_port = _container_port(agent, ())
    lease = (_env(agent, "HA_LEASE_NAME") if agent else None) or defaults.lease_name(meta.get("name", ""))
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    headless = (_env(agent, "HA_HEADLESS_SERVICE") if agent else None) or ""
    return ClusterFacts(selector, headless, bolt, agent_port, lease, replicas)


def restart_order(pods: list[str], main: str | None) -> list[str]:
    """Highest ordinal first, the MAIN last (StatefulSet rolling-update order, one hand-over at most)."""
    ordered = sorted(pods, key=pod_ordinal, reverse=True)
    if main in ordered:
        ordered.remove(main)
        ordered.append(main)
    return ordered


def plan_steps(s: Strategy, order: list[str], main: str) -> list[dict[str, Any]]:
    """What the rollout will do to each pod, in words (the dry run prints it; the JSON carries it)."""
    out = []
    grace = s.delete_grace_s()
    for pod in order:
        is_main = pod == main
        if s.name is AGENT_MANAGED:
            action = f"delete with grace {grace}s" + ("; the preStop hook hands over" if is_main else "")
        elif is_main:
            how = "agent API" if s.has_agent else "this command under the Lease"
            action = f"switchover away from it ({how}), then delete with grace {grace}s"
        else:
            action = f"delete with grace {grace}s"
        out.append({"pod": pod, "is_main": is_main, "action": action})
    return out


@dataclass
class PodResult:
    """What happened to one pod of the rollout."""

    pod: str
    strategy: str
    success: bool
    duration_s: float
    error: str = ""
    was_main: bool = False
    old_main: str | None = None
    new_main: str | None = None  # set when the MAIN moved during this pod's restart

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["duration_s"] = round(self.duration_s, 3)
        doc["error"] = self.error or None
        return doc


def results_table(results: list[PodResult]) -> list[str]:
    """The per-pod results as a text table."""
    rows = [("POD", "STRATEGY", "RESULT", "DURATION", "MAIN MOVED", "ERROR")]
    for r in results:
        moved = f"{r.old_main} -> {r.new_main}" if r.new_main and r.new_main != r.old_main else "-"
        rows.append(
            (r.pod, r.strategy, "ok" if r.success else "FAILED", f"{r.duration_s:.1f}s", moved,
             r.error or "-")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]


@dataclass
class RolloutOptions:
    namespace: str = "default"
    statefulset: str = "memgraph"
    pods: list[str] | None = None  # None: every pod of the StatefulSet
    dry_run: bool = False
    timeout_s: float | None = None  # per pod, from the first action to healthy; default grace + 180 s
    force: bool = False
    kubeconfig: str | None = None
    url: str | None = None  # agent API (manual strategy with agents); default: the Lease holder's pod
    token: str | None = field(default=None, repr=False)
    bolt_port: int | None = None  # default: the memgraph container's `bolt` port
    replication_port: int = defaults.REPLICATION_PORT
    memgraph_user: str = ""
    memgraph_password: str = field(default="", repr=False)
    lease: str | None = None  # default: the agent's HA_LEASE_NAME, else <statefulset>-ha
    lease_wait_s: float = 60.0  # manual without agents: how long to wait to lead the Lease
    poll_s: float = 0.25


@dataclass
class RolloutReport:
    strategy: Strategy
    order: list[str]
    plan: list[dict[str, Any]]
    results: list[PodResult] = field(default_factory=list)
    refused: str = ""
    final: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.refused and all(r.success for r in self.results)

    def to_json(self, namespace: str, statefulset: str, dry_run: bool) -> dict[str, Any]:
        s = self.strategy
        return {
            "namespace": namespace,
            "statefulset": statefulset,
            "dry_run": dry_run,
            "strategy": {
                "name": s.name,
                "reason": s.reason,
                "hook_budget_s": s.hook_budget_s,
                "pod_grace_s": s.pod_grace_s,
                "delete_grace_s": s.delete_grace_s(),
            },
            "order": self.order,
            "plan": self.plan,
            "results": [r.to_json() for r in self.results],
            "ok": self.ok,
            "refused": self.refused or None,
            "cluster": self.final,
        }
