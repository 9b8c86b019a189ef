"""The cluster health check shared by the status document and `memgraph-ha rollout` (one copy only).

Role: from one Snapshot and the ClusterRecord, say whether the cluster is whole -- exactly one MAIN
(the record's, reachable), every other pod of the StatefulSet a ready replica of it, a designated
sync replica that is ready, no divergence -- and list in words what is missing.

Must never: do I/O or decide anything; a problem here is a fact for people and for the rollout gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coordinator.core.model import ClusterRecord, Policy, ReplicaStatus, Role, Snapshot, replica_name
from coordinator.core.rules import View


@dataclass(frozen=True)
class Health:
    healthy: bool
    main: str  # the record's MAIN when it is reachable and reports MAIN, else ""
    ready_replicas: tuple[str, ...]
    expected_replicas: int
    diverged: tuple[str, ...]
    problems: list[str] = field(default_factory=list)


def _main_problems(view: View) -> list[str]:
    main = view.record.main
    if not view.reachable(main):
        return [f"{main} (MAIN) unreachable"]
    if view.role(main) != Role.MAIN:
        return [f"{main} (MAIN in the record) reports {view.role(main)}"]
    if view.terminating(main):
        return [f"{main} (MAIN) is terminating"]
    return []


def _replica_problem(view: View, pod: str) -> str:
    """Why `pod` is not a ready replica of the MAIN ("" when it is)."""
    if view.pod(pod) is None:
        return f"{pod} missing"
    if pod in view.diverged:
        return f"{pod} diverged"
    if view.terminating(pod):
        return f"{pod} terminating"
    if not view.reachable(pod):
        return f"{pod} unreachable"
    if view.role(pod) != Role.REPLICA:
        return f"{pod} reports {view.role(pod)}, not replica"
    if not view.main_ok():
        return ""  # cannot judge a replica without its MAIN; the MAIN's problem says it
    row = view.row(pod)
    if row is None:
        return f"{pod} not registered on {view.record.main}"
    if not row.healthy:  # prior art 001 issue 5: `invalid` with behind 0 is NOT ready
        return f"{pod} replica status {row.status.value} (behind {row.behind})"
    return ""


def cluster_health(snapshot: Snapshot, record: ClusterRecord) -> Health:
    """1 MAIN, all replicas ready, a ready sync replica confirmed in the record, no divergence; `problems`
    says what is not."""
    view = View.build(snapshot, record, Policy())
    if not record.main:  # before bootstrap (or a lost record) nothing else can be judged
        expected = max(0, len(view.expected) - 1)
        return Health(False, "", (), expected, tuple(record.diverged), ["no MAIN designated in the record"])
    problems = _main_problems(view)
    problems += [f"{p} reports MAIN too (dual MAIN)" for p in view.rogue_mains()]
    replicas = view.replica_pods()
    ready: list[str] = []
    for pod in replicas:
        why = _replica_problem(view, pod)
        if why:
            problems.append(why)
        elif view.main_ok():
            ready.append(pod)
    shown = {r.name for r in view.main_rows.values() if r.status == ReplicaStatus.DIVERGED}
    diverged = sorted(set(record.diverged) | {p for p in view.expected if replica_name(p) in shown})
    if replicas and not record.sync_replica:
        problems.append("no sync replica designated (degraded)")
    elif record.sync_replica and record.sync_replica not in ready and view.main_ok():
        problems.append(f"sync replica {record.sync_replica} not ready")
    elif record.sync_replica and not record.sync_confirmed:
        # until the record vouches for it, a new leader could not fail over to it (review C2)
        problems.append(f"sync replica {record.sync_replica} not yet confirmed in sync in the record")
    main = record.main if view.main_ok() else ""
    return Health(not problems, main, tuple(ready), len(replicas), tuple(diverged), problems)
