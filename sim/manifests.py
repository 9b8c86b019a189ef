"""Kubernetes objects of the emulated cluster, shaped like what `charts/memgraph` renders.

Role: build the StatefulSet (with or without the agent sidecar and the preStop hook, native or ordinary
sidecar), the Services (headless, client, read, agent) and the pod objects the simulated StatefulSet
controller creates, and the status patch that flips a pod's Ready condition; and render the chart
itself (`charts/memgraph`, with the real Helm library) for the objects the agents' identity comes from:
its ServiceAccount, Role, RoleBinding and PodDisruptionBudget (`chart_identity`), applied unchanged.

Must never: invent fields the real API would reject; the Kubernetes emulator and the client validate them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.init_containers import reseed_spec

if TYPE_CHECKING:
    from sim.cluster import ClusterConfig

HOOK_COMMAND = ["python3", "/etc/memgraph-ha/hooks/prestop.py"]
CHART_DIR = Path(__file__).resolve().parents[1] / "charts" / "memgraph"
IDENTITY_KINDS = ("ServiceAccount", "Role", "RoleBinding", "PodDisruptionBudget")


@functools.cache
def _render(values_json: str, release: str, namespace: str) -> tuple[dict[str, Any], ...]:
    import helm_python
    import yaml

    chart = helm_python.Chart.load(str(CHART_DIR))
    rendered = chart.render(json.loads(values_json), name=release, namespace=namespace)
    texts = [text for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")]
    return tuple(d for text in texts for d in yaml.safe_load_all(text) if d)


def chart_identity(cfg: ClusterConfig, lease_name: str) -> list[dict[str, Any]]:
    """The chart's ServiceAccount, Role, RoleBinding and PodDisruptionBudget for this cluster, rendered by
    Helm with the cluster's name (fullnameOverride), size, agent on/off and Lease name; in its namespace."""
    values = {
        "fullnameOverride": cfg.name,
        "replicaCount": cfg.replicas,
        "haAgent": {"enabled": cfg.template.with_agent, "leaseName": lease_name},
    }
    docs = _render(json.dumps(values, sort_keys=True), cfg.name, cfg.namespace)
    out = [json.loads(json.dumps(d)) for d in docs if d.get("kind") in IDENTITY_KINDS]
    for d in out:
        d["metadata"]["namespace"] = cfg.namespace
    return out


def selector(cfg: ClusterConfig) -> str:
    return f"app.kubernetes.io/name=memgraph,app.kubernetes.io/instance={cfg.name}"


def _labels(cfg: ClusterConfig) -> dict[str, str]:
    return {"app.kubernetes.io/name": "memgraph", "app.kubernetes.io/instance": cfg.name}


def pod_spec(cfg: ClusterConfig, ports: dict[str, int] | None = None) -> dict[str, Any]:
    t = cfg.template
    bolt = (ports or {}).get("bolt", 7687)
    agent_port = (ports or {}).get("agent", 8080)
    memgraph: dict[str, Any] = {
        "name": "memgraph",
        "image": "memgraph/memgraph:3.12.0",
        "args": [
            "--replication-restore-state-on-startup=true",
            "--data-recovery-on-startup=true",
            "--storage-wal-enabled=true",
        ],
        "ports": [{"name": "bolt", "containerPort": bolt}],
        "readinessProbe": {"tcpSocket": {"port": bolt}, "periodSeconds": 5},
    }
    if t.with_hook:
        memgraph["lifecycle"] = {"preStop": {"exec": {"command": HOOK_COMMAND}}}
        memgraph["env"] = [{"name": "PRESTOP_TIMEOUT_SECONDS", "value": str(int(t.prestop_budget_s))}]
    spec: dict[str, Any] = {"containers": [memgraph], "terminationGracePeriodSeconds": int(t.grace_s)}
    spec["serviceAccountName"] = cfg.name  # the chart's ServiceAccount (serviceAccount.create: the fullname)
    if t.with_agent:
        agent = {
            "name": "agent",
            "image": "memgraph-ha/agent:0.1.0",
            "ports": [{"name": "agent", "containerPort": agent_port}],
            "startupProbe": {"httpGet": {"path": "/health", "port": agent_port}},
        }
        init = [reseed_spec()] if t.with_reseed_init else []
        if t.native_sidecar:
            spec["initContainers"] = [*init, {**agent, "restartPolicy": "Always"}]
        else:
            spec["containers"].append(agent)
            if init:
                spec["initContainers"] = init
    return spec


def objects(cfg: ClusterConfig, ports: dict[str, int]) -> list[dict[str, Any]]:
    labels, ns = _labels(cfg), cfg.namespace
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": cfg.name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": cfg.replicas,
            "serviceName": f"{cfg.name}-headless",
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(cfg, ports)},
        },
    }

    def svc(name: str, sel: dict[str, str], port: int, headless: bool = False,
            not_ready: bool = False) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": sel, "ports": [{"name": "p", "port": port}]}
        if headless:  # as the chart's: per-pod DNS also for pods not Ready yet (unless configured off)
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
        svc(f"{cfg.name}-headless", labels, ports["bolt"], headless=True),
        # the chart's client Service: the role label decides, not Ready (issue 16 item 1)
        svc(cfg.name, {**labels, "memgraph-ha.io/role": "main"}, ports["bolt"], not_ready=True),
        svc(f"{cfg.name}-read", {**labels, "memgraph-ha.io/role": "replica"}, ports["bolt"]),
        svc(f"{cfg.name}-agent", {**labels, "memgraph-ha.io/leader": "true"}, ports["agent"]),
    ]


def pod(cfg: ClusterConfig, name: str, uid: str, ip: str) -> dict[str, Any]:
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
        "spec": {**pod_spec(cfg), "hostname": name, "subdomain": f"{cfg.name}-headless"},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "False"}],
        },
    }


def ready_status(
    ready: bool, spec: dict[str, Any] | None = None, restarts: dict[str, int] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The status patch that sets the pod's Ready condition (what kubelet writes after its probes), with
    the containers' statuses when the pod `spec` is given (all ready with the pod; `restarts` counts
    per container), so `kubectl get pods` shows READY and RESTARTS as on a cluster."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]
    }
    if spec is None:
        return status

    def container_status(c: dict[str, Any]) -> dict[str, Any]:
        name = str(c.get("name"))
        return {
            "name": name,
            "image": str(c.get("image")),
            "imageID": "",
            "ready": ready,
            "started": True,
            "restartCount": (restarts or {}).get(name, 0),
            "state": {"running": {"startedAt": now}},
        }

    status["containerStatuses"] = [container_status(c) for c in spec.get("containers") or []]
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    if sidecars or init_statuses:  # the ordinary init containers that ran keep their terminated state
        status["initContainerStatuses"] = [*(init_statuses or []), *(container_status(c) for c in sidecars)]
    return status
