"""The cluster status document served at /api/v1/status (schema: docs/api.md).

Role: turn the last Snapshot, the ClusterRecord, the last Decision and the leader's name into one
JSON-able dict: a `cluster` section, one entry per pod, and the fields the earlier controller's users
read (`current_sync_replica`, `sync_replica_healthy`, per pod `is_sync_replica`).

Must never: do I/O, raise on a partial snapshot (unreachable pods are facts), or include a secret.
"""

from __future__ import annotations

from typing import Any

from coordinator.core.health import cluster_health
from coordinator.core.model import (
    ROLE_LABEL,
    ClusterRecord,
    PodView,
    Policy,
    ReplicaStatus,
    Snapshot,
    pod_ordinal,
)
from coordinator.core.planner import Decision
from coordinator.core.rules import View

SCHEMA_VERSION = 1


def _last_failover(record: ClusterRecord) -> dict[str, Any] | None:
    if not (record.last_failover or record.last_failover_to):
        return None
    return {
        "from": record.last_failover_from or None,
        "to": record.last_failover_to or None,
        "at": record.last_failover_at or None,
        "duration_s": round(record.last_failover_duration_s, 3),
        "text": record.last_failover,
    }


def _pod_entry(view: View, pod: PodView) -> dict[str, Any]:
    obs = view.obs(pod.name)
    row = view.row(pod.name) if pod.name != view.record.main else None
    role = view.role(pod.name)
    return {
        "name": pod.name,
        "ordinal": pod.ordinal,
        "ip": pod.ip,
        "ready": pod.ready,
        "role": role.value if role is not None else None,
        "role_label": pod.label(ROLE_LABEL),
        "memgraph_reachable": obs is not None and obs.reachable,
        "error": (obs.error or None) if obs is not None else "not observed",
        "replica": None
        if row is None
        else {"mode": row.mode.value, "status": row.status.value, "ts": row.ts, "behind": row.behind},
        "is_sync_replica": pod.name == view.record.sync_replica,
        "diverged": pod.name in view.diverged or (row is not None and row.status is ReplicaStatus.DIVERGED),
        "terminating": pod.terminating,
    }


def build_status(
    snapshot: Snapshot,
    record: ClusterRecord,
    decision: Decision | None,
    leader: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The status document. `extra` adds top-level keys (e.g. agent version); it never overrides ours."""
    view = View.build(snapshot, record, Policy())
    health = cluster_health(snapshot, record)
    sync = record.sync_replica
    cluster = {
        "main": record.main or None,
        "sync_replica": sync or None,
        "sync_mode": record.sync_mode or None,
        "generation": record.generation,
        "leader": leader or None,
        "paused": record.paused,
        "healthy": health.healthy,
        "degraded": bool(decision.degraded) if decision is not None else not sync,
        "verdict": decision.verdict if decision is not None else "starting",
        "blocked_by": (decision.blocked_by or None) if decision is not None else None,
        "problems": list(health.problems),
        "expected_pods": snapshot.expected_pods,
        "ready_replicas": list(health.ready_replicas),
        "expected_replicas": health.expected_replicas,
        "last_failover": _last_failover(record),
        "diverged": list(health.diverged),
    }
    pods = [_pod_entry(view, p) for p in sorted(snapshot.pods, key=lambda p: pod_ordinal(p.name))]
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "observed_at": snapshot.now,
        "cluster": cluster,
        "pods": pods,
        "current_sync_replica": sync or None,
        "sync_replica_healthy": bool(sync) and sync in health.ready_replicas,
    }
    for key, value in (extra or {}).items():
        doc.setdefault(key, value)
    return doc
