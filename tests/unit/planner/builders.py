"""Small builders for planner, health and status tests: a 3-pod StatefulSet `memgraph`, one line per fact.

`snap({0: main(row(1, "strict_sync"), row(2)), 1: replica(), 2: replica()})` is a healthy cluster whose
MAIN is memgraph-0. Pod labels default to what a converged cluster carries (observed MAIN -> main,
REPLICA -> replica, the leader's pod -> leader=true), so a case only shows the labels it is about.
"""

from __future__ import annotations

from typing import Any

from coordinator.core.datadir import DataReport
from coordinator.core.model import (
    LEADER_LABEL,
    ROLE_LABEL,
    Action,
    ClusterRecord,
    EmitEvent,
    FenceMiss,
    InstanceState,
    PodView,
    Policy,
    RegisterReplica,
    ReplicaInfo,
    ReplicaMode,
    ReplicaStatus,
    ReseedPolicy,
    Role,
    SetLabels,
    Snapshot,
    StorageInfo,
)

HEADLESS = "memgraph-headless"
# Replicas addressed by pod IP, as the chart runs the agents. The table's cases before issue 17 pin the
# quarantine (`manual`); the re-seed cases use AUTO.
POLICY = Policy(reseed=ReseedPolicy.MANUAL)
DNS_POLICY = Policy(headless_service=HEADLESS, reseed=ReseedPolicy.MANUAL)
AUTO = Policy(reseed=ReseedPolicy.AUTO)
LEADER = "memgraph-0"


def name(i: int) -> str:
    return f"memgraph-{i}"


def ip(i: int) -> str:
    """The pod IP of memgraph-i in `snap` unless `ips` gives it another (a new incarnation)."""
    return f"127.0.1.{i + 1}"


def addr(i: int, pod_ip: str = "") -> str:
    return f"{pod_ip or ip(i)}:10000"


def row(i: int, mode: str = "async", status: str = "ready", ts: int = 10, behind: int = 0,
        address: str = "") -> ReplicaInfo:
    where = address or addr(i)
    return ReplicaInfo(f"memgraph_{i}", where, ReplicaMode(mode), ReplicaStatus(status), ts, behind)


def main(*rows: ReplicaInfo, data: int | None = None) -> InstanceState:
    storage = None if data is None else StorageInfo(vertex_count=data)
    return InstanceState(reachable=True, role=Role.MAIN, replicas=rows, storage=storage)


def replica(data: int | None = None, register_error: str = "") -> InstanceState:
    storage = None if data is None else StorageInfo(vertex_count=data)
    return InstanceState(reachable=True, role=Role.REPLICA, storage=storage, register_error=register_error)


def down(error: str = "connection refused") -> InstanceState:
    return InstanceState(reachable=False, error=error)


def _default_labels(state: InstanceState | None, i: int, leader: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    if state is not None and state.reachable and state.role is not None:
        labels[ROLE_LABEL] = state.role.value
    if name(i) == leader:
        labels[LEADER_LABEL] = "true"
    return labels


def snap(
    instances: dict[int, InstanceState],
    *,
    expected: int = 3,
    pods: tuple[int, ...] | None = None,
    not_ready: tuple[int, ...] = (),
    force_ready: tuple[int, ...] = (),
    terminating: tuple[int, ...] = (),
    labels: dict[int, dict[str, str]] | None = None,
    unreachable: dict[int, float] | None = None,
    last_ready: tuple[int, ...] = (1, 2),
    last_ts: dict[int, int] | None = None,
    leader: str = LEADER,
    now: float = 1000.0,
    switchover: str = "",
    main_seen: bool = True,
    last_sync_ready: tuple[int, ...] | None = None,
    ips: dict[int, str] | None = None,
    data: dict[int, DataReport] | None = None,
    uids: dict[int, str] | None = None,
    restarts: dict[int, int] | None = None,
    fence_unconfirmed: dict[int, FenceMiss] | None = None,
    fence_refused: dict[int, FenceMiss] | None = None,
) -> Snapshot:
    """A Snapshot of pods `pods` (default: every key of `instances`); a pod is Ready when reachable
    (unless in `not_ready`) or when in `force_ready` (Kubernetes sees it alive, we cannot reach it)."""
    present = pods if pods is not None else tuple(sorted(instances))
    views = []
    for i in present:
        state = instances.get(i)
        lab = (labels or {}).get(i)
        lab = _default_labels(state, i, leader) if lab is None else lab
        views.append(PodView(
            name=name(i), ordinal=i, ip=(ips or {}).get(i, ip(i)), uid=(uids or {}).get(i, f"uid-{i}"),
            restarts=(restarts or {}).get(i, 0), data=(data or {}).get(i),
            ready=i in force_ready or (state is not None and state.reachable and i not in not_ready),
            phase="Running", terminating=i in terminating, labels=tuple(sorted(lab.items())),
        ))
    return Snapshot(
        now=now,
        expected_pods=expected,
        pods=tuple(views),
        instances={name(i): s for i, s in instances.items()},
        unreachable_for_s={name(i): t for i, t in (unreachable or {}).items()},
        last_ready_replicas=tuple(name(i) for i in last_ready),
        last_sync_ready=tuple(name(i) for i in (last_ready if last_sync_ready is None else last_sync_ready)),
        main_seen=main_seen,
        leader=leader,
        last_replica_ts={name(i): t for i, t in (last_ts or {}).items()},
        switchover_in_progress=switchover,
        fence_unconfirmed={name(i): m for i, m in (fence_unconfirmed or {}).items()},
        fence_refused={name(i): m for i, m in (fence_refused or {}).items()},
    )


def rec(main_i: int | None = 0, sync: int | None = 1, generation: int = 3, mode: str = "strict_sync",
        diverged: tuple[int, ...] = (), paused: bool = False, confirmed: bool | None = None) -> ClusterRecord:
    return ClusterRecord(
        main=name(main_i) if main_i is not None else "",
        sync_replica=name(sync) if sync is not None else "",
        sync_mode=mode if sync is not None else "",
        generation=generation,
        diverged=tuple(name(i) for i in diverged),
        paused=paused,
        sync_confirmed=(sync is not None) if confirmed is None else confirmed,
    )


def healthy(**kw: Any) -> Snapshot:
    """memgraph-0 MAIN, memgraph-1 STRICT_SYNC replica, memgraph-2 ASYNC replica, all ready."""
    return snap({0: main(row(1, "strict_sync"), row(2)), 1: replica(), 2: replica()}, **kw)


def reg(main_i: int, i: int, mode: str = "async", pod_ip: str = "") -> RegisterReplica:
    return RegisterReplica(name(main_i), name(i), ReplicaMode(mode), addr(i, pod_ip))


def core(actions: tuple[Action, ...] | list[Action]) -> list[Action]:
    """The actions that change Memgraph or the record (no labels, no events)."""
    return [a for a in actions if not isinstance(a, (SetLabels, EmitEvent))]


def events(actions: tuple[Action, ...] | list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, EmitEvent)]


def label_actions(actions: tuple[Action, ...] | list[Action]) -> list[SetLabels]:
    return [a for a in actions if isinstance(a, SetLabels)]
