"""Builds the Snapshot one reconcile cycle decides on.

Role: read the pods (watch cache), ask every pod's Memgraph for its role and, on a MAIN, its replicas
(and its storage counts while no MAIN is designated), all in parallel with short timeouts; track how
long each pod has been unreachable and which replicas were ready at the previous observation.

Must never: raise because a pod or its Memgraph is unreachable (that is a fact in the snapshot), take
longer than its probe timeout plus a small margin, or change anything.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import time
from collections.abc import Callable

from coordinator.core.model import (
    ClusterRecord,
    FenceMiss,
    InstanceState,
    PodView,
    ReplicaMode,
    Role,
    Snapshot,
    StorageInfo,
)
from coordinator.ports import KubePort, MemgraphFactory, MemgraphPort

log = logging.getLogger(__name__)


class Observer:
    """Stateful across cycles only for time-since-unreachable and the last ready replica set."""

    def __init__(
        self,
        kube: KubePort,
        memgraph: MemgraphFactory,
        probe_timeout_s: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.kube = kube
        self.wall = wall
        self.memgraph = memgraph
        self.probe_timeout_s = probe_timeout_s
        self.clock = clock
        self._unreachable_since: dict[str, float] = {}
        self._last_ready: tuple[str, ...] = ()
        self._last_ts: dict[str, int] = {}
        self._last_sync_ready: tuple[str, ...] = ()
        self._seen_main = ""  # the record MAIN this observer has seen answering as MAIN
        self.register_errors: dict[str, str] = {}  # pod -> last REGISTER error text, set by the reconciler
        self.fence_unconfirmed: dict[str, FenceMiss] = {}  # pod -> its last unconfirmed fence (reconciler)
        self.fence_refused: dict[str, FenceMiss] = {}  # pod -> the last fence its agent refused (reconciler)
        self._pool = cf.ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self.queries_last_cycle = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def snapshot(self, record: ClusterRecord, leader: str) -> Snapshot:
        pods = tuple(self.kube.list_pods())
        expected = self.kube.expected_replicas()
        want_storage = True  # bootstrap order, the empty-MAIN guard and clearing a diverged pod need counts
        futures = {p.name: self._pool.submit(self._probe, p, want_storage) for p in pods if p.ip}
        instances: dict[str, InstanceState] = {}
        deadline = self.clock() + self.probe_timeout_s * 2 + 0.5
        queries = 0
        for name, fut in futures.items():
            try:
                state, n = fut.result(timeout=max(0.05, deadline - self.clock()))
            except cf.TimeoutError:
                state, n = InstanceState(reachable=False, error="probe timed out"), 0
            if name in self.register_errors:
                state = dataclasses.replace(state, register_error=self.register_errors[name])
            instances[name] = state
            queries += n
        for p in pods:
            instances.setdefault(p.name, InstanceState(reachable=False, error="pod has no IP"))
        self.queries_last_cycle = queries
        now = self.clock()
        unreachable_for = self._track_unreachable(instances, now, record.main)
        self._remember_main_view(instances, record.main)
        return Snapshot(
            now=now,
            expected_pods=expected if expected is not None else len(pods),
            pods=pods,
            instances=instances,
            unreachable_for_s=unreachable_for,
            last_ready_replicas=self._last_ready,
            last_sync_ready=self._last_sync_ready,
            main_seen=bool(record.main) and self._seen_main == record.main,
            last_replica_ts=dict(self._last_ts),
            leader=leader,
            wall=self.wall(),
            fence_unconfirmed=dict(self.fence_unconfirmed),
            fence_refused=dict(self.fence_refused),
        )

    def _probe(self, pod: PodView, want_storage: bool) -> tuple[InstanceState, int]:
        client = self.memgraph(pod)
        queries = 0
        try:
            role = client.role()
            queries += 1
            replicas: tuple = ()
            if role is Role.MAIN:
                replicas = tuple(client.replicas())
                queries += 1
            storage = None
            if want_storage:
                storage = self._storage(pod, client)
                queries += 1
            return InstanceState(reachable=True, role=role, replicas=replicas, storage=storage), queries
        except Exception as exc:  # unreachable is a fact, not an error
            log.debug("probe %s failed: %s: %s", pod.name, type(exc).__name__, exc)
            return InstanceState(reachable=False, error=f"{type(exc).__name__}: {exc}"), queries

    def _storage(self, pod: PodView, client: MemgraphPort) -> StorageInfo | None:
        """SHOW STORAGE INFO, or None (unknown) when it fails after the role was answered. Issue 16 item 4:
        Memgraph runs it on a mixed Bolt worker, which long queries may all hold, while SHOW REPLICATION
        ROLE and SHOW REPLICAS run on its high-priority worker; a busy instance is slow, not unreachable."""
        try:
            return client.storage_info()
        except Exception as exc:  # unknown counts: bootstrap waits for them; no other rule needs them now
            log.debug("storage info of %s not answered: %s: %s", pod.name, type(exc).__name__, exc)
            return None

    def _track_unreachable(
        self, instances: dict[str, InstanceState], now: float, main: str
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        if main and main not in instances:
            # the designated MAIN's pod is gone from the watch: as unreachable as it gets
            self._unreachable_since.setdefault(main, now)
        for name, state in instances.items():
            if state.reachable:
                self._unreachable_since.pop(name, None)
            else:
                since = self._unreachable_since.setdefault(name, now)
                out[name] = now - since
        for name in list(self._unreachable_since):
            if name not in instances:
                # a pod that vanished from the watch keeps its clock: deletion is not recovery
                out[name] = now - self._unreachable_since[name]
        return out

    def _remember_main_view(self, instances: dict[str, InstanceState], main: str) -> None:
        """Keep the replicas ready (READY or REPLICATING) and their ts as last seen on the record's MAIN.

        Updated only while that MAIN answers, so after it is lost the failover rule still knows which
        replica was in sync when it was last seen (the planner's candidate rule depends on it).
        """
        state = instances.get(main) if main else None
        if state is None or not state.reachable or state.role is not Role.MAIN:
            return
        if state.empty and not state.replicas:
            return  # it came back with no data and no replicas: not the MAIN whose replicas we knew
        # replica names are pod names with '-' -> '_' (pod names never hold '_'). `replicating` counts as
        # ready (ReplicaInfo.healthy): under writes the sync replica is often caught mid-transaction,
        # and a STRICT_SYNC replica is in sync then too (make bench found failovers refused for that).
        self._last_ready = tuple(sorted(r.name.replace("_", "-") for r in state.replicas if r.healthy))
        synced = (ReplicaMode.STRICT_SYNC, ReplicaMode.SYNC)
        self._last_sync_ready = tuple(
            sorted(r.name.replace("_", "-") for r in state.replicas if r.healthy and r.mode in synced)
        )
        self._seen_main = main
        self._last_ts = {r.name.replace("_", "-"): r.ts for r in state.replicas}
