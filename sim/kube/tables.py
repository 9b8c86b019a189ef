"""Server-side printing of the Kubernetes API emulator: `meta.k8s.io/v1` Tables for `kubectl get`.

Role: when a GET asks for `application/json;as=Table;v=v1;g=meta.k8s.io` (kubectl's human-readable
output does), answer a Table with the columns of the apiserver's printers
(`pkg/printers/internalversion/printers.go`) for each served kind: pods (NAME READY STATUS RESTARTS
AGE, wide: IP NODE NOMINATED NODE READINESS GATES), services, endpoints, configmaps, secrets,
service accounts, events, leases, statefulsets, pod disruption budgets, roles and role bindings; each
row carries the object's metadata as `PartialObjectMetadata` (what `kubectl get -L <label>` reads).
Ages use the apiserver's `duration.HumanDuration`.

Must never: print a value the object does not hold (a missing field prints `<none>` or 0, as the
apiserver's printers do), or do I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sim.kube.requestinfo import accepts
from sim.kube.resources import ResourceType

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
Obj = dict[str, Any]
Column = tuple[str, int, Callable[[Obj, datetime], Any]]  # name, priority, cell


def wants_table(accept: str) -> bool:
    return accepts(accept, "as=Table", "v=v1", "g=meta.k8s.io")


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _since(ts: Any, now: datetime) -> str:
    if not ts:
        return "<unknown>"
    return human_duration((now - datetime.fromisoformat(str(ts))).total_seconds())


def _meta(o: Obj) -> Obj:
    return o.get("metadata") or {}


def _age(o: Obj, now: datetime) -> str:
    return _since(_meta(o).get("creationTimestamp"), now)


def _or_none(value: Any) -> str:
    return str(value) if value not in (None, "", []) else "<none>"


# ---- per-kind cells ------------------------------------------------------------------------------


def _pod_containers(o: Obj) -> tuple[int, int, int]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    sidecars = {c.get("name") for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(sidecars)
    statuses = list(status.get("containerStatuses") or []) + [
        s for s in status.get("initContainerStatuses") or [] if s.get("name") in sidecars
    ]
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    return ready, total, restarts


def _pod_status(o: Obj, now: datetime) -> str:
    status = o.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    if _meta(o).get("deletionTimestamp"):
        return "Terminating"
    return str(reason)


def _ports(o: Obj, now: datetime) -> str:
    ports = (o.get("spec") or {}).get("ports") or []
    out = []
    for p in ports:
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        out.append(f"{p.get('port')}{node}/{p.get('protocol') or 'TCP'}")
    return ",".join(out) or "<none>"


def _endpoints(o: Obj, now: datetime) -> str:
    addrs = [
        f"{a.get('ip')}:{p.get('port')}" if p else str(a.get("ip"))
        for subset in o.get("subsets") or []
        for a in subset.get("addresses") or []
        for p in (subset.get("ports") or [None])
    ]
    if not addrs:
        return "<none>"
    more = f" + {len(addrs) - 3} more..." if len(addrs) > 3 else ""
    return ",".join(addrs[:3]) + more


def _event_object(o: Obj, now: datetime) -> str:
    ref = o.get("involvedObject") or o.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _event_last_seen(o: Obj, now: datetime) -> str:
    ts = o.get("lastTimestamp") or o.get("deprecatedLastTimestamp") or o.get("eventTime")
    return _since(ts, now)


def _subjects(kind: str) -> Callable[[Obj, datetime], str]:
    def cell(o: Obj, now: datetime) -> str:
        found = [s for s in o.get("subjects") or [] if s.get("kind") == kind]
        if kind == "ServiceAccount":
            return ", ".join(f"{s.get('namespace') or ''}/{s.get('name')}" for s in found)
        return ", ".join(str(s.get("name")) for s in found)

    return cell


def _selector(o: Obj, now: datetime) -> str:
    selector = (o.get("spec") or {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _role_ref(o: Obj, now: datetime) -> str:
    ref = o.get("roleRef") or {}
    return f"{ref.get('kind')}/{ref.get('name')}"


def _sts_ready(o: Obj, now: datetime) -> str:
    return f"{(o.get('status') or {}).get('readyReplicas') or 0}/{(o.get('spec') or {}).get('replicas') or 0}"


def _sts_containers(field: str) -> Callable[[Obj, datetime], str]:
    def cell(o: Obj, now: datetime) -> str:
        spec = ((o.get("spec") or {}).get("template") or {}).get("spec") or {}
        return ",".join(str(c.get(field)) for c in spec.get("containers") or [])

    return cell


def _at(*path: str, default: Any = "") -> Callable[[Obj, datetime], Any]:
    """A cell holding the value at `path` (`default` when it is missing)."""

    def cell(o: Obj, now: datetime) -> Any:
        cur: Any = o
        for p in path:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return default if cur in (None, "") else cur

    return cell


def _count(*fields: str) -> Callable[[Obj, datetime], int]:
    return lambda o, now: sum(len(o.get(f) or {}) for f in fields)


def _event_source(o: Obj, now: datetime) -> str:
    return str((o.get("source") or {}).get("component") or o.get("reportingController") or "")


def _pod_ready(o: Obj, now: datetime) -> str:
    ready, total, _ = _pod_containers(o)
    return f"{ready}/{total}"


_NAME: Column = ("Name", 0, _at("metadata", "name"))
_AGE: Column = ("Age", 0, _age)
_COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        _NAME,
        ("Ready", 0, _pod_ready),
        ("Status", 0, _pod_status),
        ("Restarts", 0, lambda o, now: str(_pod_containers(o)[2])),
        _AGE,
        ("IP", 1, _at("status", "podIP", default="<none>")),
        ("Node", 1, _at("spec", "nodeName", default="<none>")),
        ("Nominated Node", 1, _at("status", "nominatedNodeName", default="<none>")),
        ("Readiness Gates", 1, lambda o, now: _or_none((o.get("spec") or {}).get("readinessGates"))),
    ],
    "Service": [
        _NAME,
        ("Type", 0, _at("spec", "type", default="ClusterIP")),
        ("Cluster-IP", 0, _at("spec", "clusterIP", default="<none>")),
        ("External-IP", 0, lambda o, now: _or_none(",".join((o.get("spec") or {}).get("externalIPs") or []))),
        ("Port(s)", 0, _ports),
        _AGE,
        ("Selector", 1, _selector),
    ],
    "Endpoints": [_NAME, ("Endpoints", 0, _endpoints), _AGE],
    "ConfigMap": [_NAME, ("Data", 0, _count("data", "binaryData")), _AGE],
    "Secret": [_NAME, ("Type", 0, _at("type")), ("Data", 0, _count("data")), _AGE],
    "ServiceAccount": [_NAME, ("Secrets", 0, _count("secrets")), _AGE],
    "Event": [
        ("Last Seen", 0, _event_last_seen),
        ("Type", 0, _at("type")),
        ("Reason", 0, _at("reason")),
        ("Object", 0, _event_object),
        ("Subobject", 1, _at("involvedObject", "fieldPath")),
        ("Source", 1, _event_source),
        ("Message", 0, lambda o, now: o.get("message") or o.get("note") or ""),
        ("First Seen", 1, lambda o, now: _since(o.get("firstTimestamp") or o.get("eventTime"), now)),
        ("Count", 1, lambda o, now: str(o.get("count") or (o.get("series") or {}).get("count") or 1)),
        ("Name", 1, _at("metadata", "name")),
    ],
    "Lease": [_NAME, ("Holder", 0, _at("spec", "holderIdentity")), _AGE],
    "StatefulSet": [
        _NAME,
        ("Ready", 0, _sts_ready),
        _AGE,
        ("Containers", 1, _sts_containers("name")),
        ("Images", 1, _sts_containers("image")),
    ],
    "PodDisruptionBudget": [
        _NAME,
        ("Min Available", 0, _at("spec", "minAvailable", default="N/A")),
        ("Max Unavailable", 0, _at("spec", "maxUnavailable", default="N/A")),
        ("Allowed Disruptions", 0, _at("status", "disruptionsAllowed", default=0)),
        _AGE,
    ],
    "Role": [_NAME, ("Created At", 0, _at("metadata", "creationTimestamp"))],
    "RoleBinding": [
        _NAME,
        ("Role", 0, _role_ref),
        _AGE,
        ("Users", 1, _subjects("User")),
        ("Groups", 1, _subjects("Group")),
        ("ServiceAccounts", 1, _subjects("ServiceAccount")),
    ],
}


def _column_type(name: str) -> tuple[str, str]:
    return ("string", "name") if name == "Name" else ("date", "") if name == "Created At" else ("string", "")


def table(rt: ResourceType, items: list[Obj], resource_version: str, now: datetime | None = None) -> Obj:
    """The Table for `items` of kind `rt` (one row each, in order)."""
    now = now or datetime.now(UTC)
    columns = _COLUMNS[rt.kind]
    definitions = []
    for name, priority, _ in columns:
        kind, fmt = _column_type(name)
        column = {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}
        definitions.append(column)
    rows = [
        {
            "cells": [cell(o, now) for _, _, cell in columns],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(o)},
        }
        for o in items
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
