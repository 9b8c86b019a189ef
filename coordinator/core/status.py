"""The cluster status document served at /api/v1/status (schema: docs/api.md).

Role: turn the last Snapshot, the ClusterRecord, the last Decision and the leader's name into one
JSON-able dict: a `cluster` section (with the history of MAIN changes from the record and the warnings
the status page shows), one entry per pod, and the fields the earlier controller's users read
(`current_sync_replica`, `sync_replica_healthy`, per pod `is_sync_replica`).

Must never: do I/O, raise on a partial snapshot (unreachable pods are facts), or include a secret.
"""

from __future__ import annotations

from typing import Any

from coordinator.core.health import cluster_health
from coordinator.core.history import as_status as history_as_status
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


def _reseed(record: ClusterRecord) -> dict[str, Any] | None:
    if not record.reseed_pod:
        return None
    return {"pod": record.reseed_pod, "step": record.reseed_step, "generation": record.reseed_generation,
            "incarnation": record.reseed_incarnation}


def _data(pod: PodView) -> dict[str, Any] | None:
    """The re-seed init container's report: what Memgraph started with, and the archives kept (I4)."""
    report = pod.data
    if report is None:
        return None
    return {
        "outcome": report.outcome.value,
        "generation": report.generation,
        "reason": report.reason or None,
        "durable_files": report.durable_files,
        "free_bytes": report.free_bytes,
        "archived_bytes": report.archived_bytes,
        "archives_omitted": report.archives_omitted,
        # what an archive holds beyond the MAIN (the transactions after the branching point) is in its WAL
        # files; Memgraph's WAL format is not read by this product, so it is not summarised (null)
        "archives": [{"name": a.name, "bytes": a.bytes, "generation": a.generation, "created": a.created,
                      "holds": list(a.holds), "beyond_main": None} for a in report.archives],
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
        "data": _data(pod),
    }


def _warnings(cluster: dict[str, Any], sync_ok: bool, api_failing_s: float | None) -> list[dict[str, str]]:
    """What the status page flags, one {code, text} each (docs/api.md "warnings")."""
    out: list[tuple[str, str]] = []
    if cluster["degraded"]:
        out.append(("degraded", "no sync replica designated: writes are acknowledged without a replica copy"))
    elif not sync_ok:
        out.append(("no-sync-replica", f"the sync replica {cluster['sync_replica'] or '-'} is not ready"))
    if api_failing_s is not None:
        out.append(("api-server-unreachable",
                    f"the leader's Kubernetes API calls have been failing for {api_failing_s:.1f}s"))
    if cluster["diverged"]:
        reseed = cluster["reseed"]
        step = f"; re-seed of {reseed['pod']}: {reseed['step']}" if reseed else ""
        out.append(("diverged", "diverged (quarantined): " + ", ".join(cluster["diverged"]) + step))
    if cluster["paused"]:
        out.append(("paused", "automatic failover is paused (memgraph-ha resume)"))
    if not cluster["healthy"] and cluster["problems"]:
        out.append(("unhealthy", "; ".join(cluster["problems"])))
    return [{"code": code, "text": text} for code, text in out]


def build_status(
    snapshot: Snapshot,
    record: ClusterRecord,
    decision: Decision | None,
    leader: str,
    extra: dict[str, Any] | None = None,
    now: float | None = None,
    api_failing_s: float | None = None,
) -> dict[str, Any]:
    """The status document. `extra` adds top-level keys (e.g. agent version); it never overrides ours.
    `now` (the leader's clock, as `snapshot.now`) gives `observation_age_s`; `api_failing_s` is how long
    the leader's Kubernetes API calls have been failing (None: the last one succeeded)."""
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
        "history": history_as_status(record.history),
        "reseed": _reseed(record),
    }
    sync_ok = bool(sync) and sync in health.ready_replicas
    cluster["warnings"] = _warnings(cluster, sync_ok, api_failing_s)
    pods = [_pod_entry(view, p) for p in sorted(snapshot.pods, key=lambda p: pod_ordinal(p.name))]
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "observed_at": snapshot.now,
        "observation_age_s": round(max(0.0, now - snapshot.now), 3) if now is not None else None,
        "cluster": cluster,
        "pods": pods,
        "current_sync_replica": sync or None,
        "sync_replica_healthy": sync_ok,
    }
    for key, value in (extra or {}).items():
        doc.setdefault(key, value)
    return doc
