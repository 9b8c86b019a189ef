"""Kubernetes objects of the emulated cluster, shaped like what `charts/memgraph` renders.

Role: build the StatefulSet (with or without the agent sidecar and the preStop hook, native or ordinary
sidecar; probes, hook budget and grace period from the rendered chart, `sim.chart`), the Services
(headless, client, read, agent) and the pod objects the simulated StatefulSet controller creates (bound to
a node); and take from the chart rendered by the real Helm library (`sim.chart.render`) the objects the
agents' identity comes from: its ServiceAccount, Role, RoleBinding and PodDisruptionBudget
(`chart_identity`), applied unchanged.

Must never: invent fields the real API would reject; the Kubernetes emulator and the client validate them.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from sim.chart import render
from sim.init_containers import reseed_spec

if TYPE_CHECKING:
    from sim.chart import ChartPod
    from sim.clusterconfig import ClusterConfig

HOOK_COMMAND = ["python3", "/etc/memgraph-ha/hooks/prestop.py"]
IDENTITY_KINDS = ("ServiceAccount", "Role", "RoleBinding", "PodDisruptionBudget")


def chart_identity(cfg: ClusterConfig) -> list[dict[str, Any]]:
    """The chart's ServiceAccount, Role, RoleBinding and PodDisruptionBudget for this cluster, rendered by
    Helm with the cluster's values (its name as fullnameOverride, size, agent on/off); in its namespace."""
    out = [d for d in render(cfg.chart_values(), cfg.name, cfg.namespace) if d.get("kind") in IDENTITY_KINDS]
    for d in out:
        d["metadata"]["namespace"] = cfg.namespace
    return out


def headless(cfg: ClusterConfig, chart: ChartPod) -> str:
    """The headless Service of the pods: the one the chart gives the agent (HA_HEADLESS_SERVICE)."""
    return chart.agent_env().get("HA_HEADLESS_SERVICE") or f"{cfg.name}-headless"


def selector(cfg: ClusterConfig) -> str:
    return f"app.kubernetes.io/name=memgraph,app.kubernetes.io/instance={cfg.name}"


def _labels(cfg: ClusterConfig) -> dict[str, str]:
    return {"app.kubernetes.io/name": "memgraph", "app.kubernetes.io/instance": cfg.name}


def _probes(rendered: dict[str, Any], ports: dict[int, int]) -> dict[str, Any]:
    """The container's probes as the chart renders them, numeric ports moved to the cluster's."""
    out: dict[str, Any] = {}
    for key in ("startupProbe", "readinessProbe", "livenessProbe"):
        if key not in rendered:
            continue
        probe = copy.deepcopy(rendered[key])
        for handler in ("tcpSocket", "httpGet"):
            port = (probe.get(handler) or {}).get("port")
            if isinstance(port, int):
                probe[handler]["port"] = ports.get(port, port)
        out[key] = probe
    return out


def pod_spec(cfg: ClusterConfig, chart: ChartPod, ports: dict[str, int] | None = None) -> dict[str, Any]:
    """The pod template: the chart's probes and hook budget; the grace period on the cluster's scale
    (what the API server applies to a delete without one)."""
    t = cfg.template
    bolt = (ports or {}).get("bolt", 7687)
    agent_port = (ports or {}).get("agent", 8080)
    moved = {7687: bolt, 8080: agent_port}
    memgraph: dict[str, Any] = {
        "name": "memgraph",
        "image": "memgraph/memgraph:3.12.0",
        "args": [
            "--replication-restore-state-on-startup=true",
            "--data-recovery-on-startup=true",
            "--storage-wal-enabled=true",
        ],
        "ports": [{"name": "bolt", "containerPort": bolt}],
        **_probes(chart.memgraph.manifest, moved),
    }
    if t.with_hook:
        memgraph["lifecycle"] = {"preStop": {"exec": {"command": HOOK_COMMAND}}}
        memgraph["env"] = [{"name": "PRESTOP_TIMEOUT_SECONDS", "value": _seconds(chart.prestop_budget_s)}]
    spec: dict[str, Any] = {"containers": [memgraph],
                            "terminationGracePeriodSeconds": max(1, math.ceil(chart.grace_s)),
                            "serviceAccountName": cfg.name}  # the chart's ServiceAccount: its fullname
    if t.with_agent and chart.agent is not None:
        agent = {
            "name": "agent",
            "image": "memgraph-ha/agent:0.1.0",
            "ports": [{"name": "agent-http", "containerPort": agent_port}],
            **_probes(chart.agent.manifest, moved),
        }
        init = [reseed_spec()] if t.with_reseed_init else []
        if t.native_sidecar:
            spec["initContainers"] = [*init, {**agent, "restartPolicy": "Always"}]
        else:
            spec["containers"].append(agent)
            if init:
                spec["initContainers"] = init
    return spec


def _seconds(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def objects(cfg: ClusterConfig, chart: ChartPod, ports: dict[str, int]) -> list[dict[str, Any]]:
    labels, ns = _labels(cfg), cfg.namespace
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": cfg.name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": cfg.replicas,
            "serviceName": headless(cfg, chart),
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(cfg, chart, ports)},
        },
    }

    def svc(name: str, sel: dict[str, str], port: int, no_cluster_ip: bool = False,
            not_ready: bool = False) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": sel, "ports": [{"name": "p", "port": port}]}
        if no_cluster_ip:  # as the chart's: per-pod DNS also for pods not Ready yet (unless configured off)
            spec["clusterIP"] = "None"
            spec["publishNotReadyAddresses"] = cfg.headless_publish_not_ready
        if not_ready:
            spec["publishNotReadyAddresses"] = True
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }

    return [
        sts,
        svc(headless(cfg, chart), labels, ports["bolt"], no_cluster_ip=True),
        # the chart's client Service: the role label decides, not Ready (issue 16 item 1)
        svc(cfg.name, {**labels, "memgraph-ha.io/role": "main"}, ports["bolt"], not_ready=True),
        svc(f"{cfg.name}-read", {**labels, "memgraph-ha.io/role": "replica"}, ports["bolt"]),
        svc(f"{cfg.name}-agent", {**labels, "memgraph-ha.io/leader": "true"}, ports["agent"]),
    ]


def pod(cfg: ClusterConfig, chart: ChartPod, name: str, uid: str, ip: str, node: str) -> dict[str, Any]:
    labels = {**_labels(cfg), "statefulset.kubernetes.io/pod-name": name}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": cfg.namespace,
            "uid": uid,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": cfg.name,
                    "uid": "sts-" + cfg.name,
                    "controller": True,
                }
            ],
        },
        "spec": {**pod_spec(cfg, chart), "hostname": name, "subdomain": headless(cfg, chart),
                 "nodeName": node},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "False"}],
        },
    }

