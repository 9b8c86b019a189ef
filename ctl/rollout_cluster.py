"""What `memgraph-ha rollout restart` reads of the cluster: the StatefulSet, the record, a fresh Snapshot.

Role: the reading side of ctl.rollout -- the Kubernetes client (kubeconfig, in-cluster, ~/.kube/config),
the StatefulSet and what it says (strategy, connection facts), the cluster record and the Lease holder
read fresh from the Lease, and `cluster_health` (coordinator.core.health, the one shared check) on a
Snapshot this command builds itself with coordinator.edge.observe.Observer: pods read straight from the
API server (no cache) and every Memgraph asked directly. Why not the status document: it is the leader's
last cycle, and the leader itself is restarted during a roll (its document can predate the restart it is
meant to confirm), and a cluster without agents has no status document at all. The price: the command
must reach Memgraph at the pod IPs (run it in the cluster, e.g. with the coordinator image, or where pod
IPs route).

Must never: write anything (the health check's KubePort refuses writes), or read without a timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

from coordinator.core import defaults
from coordinator.core import record as record_codec
from coordinator.core.health import Health, cluster_health
from coordinator.core.model import ClusterRecord, PodView, ReplicaMode, Snapshot
from coordinator.edge.kube import pod_view
from coordinator.edge.logs import log_event
from coordinator.edge.observe import Observer
from coordinator.edge.settings import (
    ClusterRef,
    ElectionSettings,
    Identity,
    MemgraphSettings,
    PolicySettings,
    Settings,
)
from coordinator.runtime.wiring import MemgraphPool
from ctl.rollout_strategy import ClusterFacts, RolloutOptions, Strategy, cluster_facts, detect_strategy

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 1.5  # one Bolt call of the health check to a pod's Memgraph
CLI_RETRY_PERIOD_S = 1.0  # this command's election rounds: it waits to lead, so it looks twice as often


class RolloutError(Exception):
    """The rollout cannot go on; the message says why (and what state the cluster is in)."""


class UsageError(RolloutError):
    """A bad argument found only once the cluster was read (e.g. an unknown pod): exit code 2."""


def api_client(kubeconfig: str | None) -> kclient.ApiClient:
    cfg = kclient.Configuration()
    if kubeconfig:
        kconfig.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    else:
        try:
            kconfig.load_incluster_config(client_configuration=cfg)
        except kconfig.ConfigException:
            kconfig.load_kube_config(client_configuration=cfg)  # ~/.kube/config or $KUBECONFIG
    api = kclient.ApiClient(cfg)
    api.user_agent = "memgraph-ha-cli"
    return api


class _DirectKube:
    """coordinator.ports.KubePort reads without a cache: every snapshot sees the API server's state now."""

    def __init__(self, core: kclient.CoreV1Api, apps: kclient.AppsV1Api, ns: str, sts: str, sel: str) -> None:
        self.core, self.apps, self.ns, self.sts, self.sel = core, apps, ns, sts, sel

    def list_pods(self) -> list[PodView]:
        pods = self.core.list_namespaced_pod(
            self.ns, label_selector=self.sel, _request_timeout=REQUEST_TIMEOUT_S
        )
        return sorted((pod_view(p) for p in pods.items), key=lambda p: p.ordinal)

    def expected_replicas(self) -> int | None:
        sts = self.apps.read_namespaced_stateful_set(self.sts, self.ns, _request_timeout=REQUEST_TIMEOUT_S)
        return int(sts.spec.replicas if sts.spec.replicas is not None else 1)

    def patch_labels(self, pod: str, labels: Mapping[str, str | None]) -> None:
        raise RuntimeError("the rollout's health check never writes")

    def emit_event(self, reason: str, message: str, pod: str = "", warning: bool = False) -> None:
        raise RuntimeError("the rollout's health check never writes")

    def reseed_pod(self, pod: str, uid: str, generation: int) -> None:
        raise RuntimeError("the rollout's health check never writes")


class ClusterReader:
    """The cluster as `rollout restart` sees it; `load()` first (it reads the StatefulSet)."""

    def __init__(self, opts: RolloutOptions, api: kclient.ApiClient | None = None) -> None:
        self.o = opts
        self.api = api or api_client(opts.kubeconfig)
        self.core = kclient.CoreV1Api(self.api)
        self.apps = kclient.AppsV1Api(self.api)
        self.coord_api = kclient.CoordinationV1Api(self.api)
        self.sts: dict[str, Any] = {}
        self.strategy: Strategy | None = None
        self.facts: ClusterFacts | None = None
        self._observer: Observer | None = None
        self._pool: MemgraphPool | None = None

    def load(self) -> Strategy:
        try:
            obj = self.apps.read_namespaced_stateful_set(
                self.o.statefulset, self.o.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status == 404:
                raise UsageError(f"statefulset {self.o.namespace}/{self.o.statefulset} not found") from exc
            raise RolloutError(
                f"cannot read statefulset {self.o.statefulset}: {exc.status} {exc.reason}"
            ) from exc
        self.sts = self.api.sanitize_for_serialization(obj)
        self.strategy, self.facts = detect_strategy(self.sts), cluster_facts(self.sts)
        return self.strategy

    def settings(self, identity: str) -> Settings:
        assert self.facts is not None
        return Settings(
            identity=Identity(pod_name=identity, namespace=self.o.namespace, uid="cli", ip="127.0.0.1"),
            cluster=ClusterRef(
                statefulset=self.o.statefulset,
                pod_selector=self.facts.selector,
                headless_service=self.facts.headless_service,
                kubeconfig=self.o.kubeconfig,
            ),
            memgraph=MemgraphSettings(
                bolt_port=self.o.bolt_port or self.facts.bolt_port,
                user=self.o.memgraph_user,
                password=self.o.memgraph_password,
                replication_port=self.o.replication_port,
            ),
            election=ElectionSettings(
                lease_name=self.o.lease or self.facts.lease_name, retry_period_s=CLI_RETRY_PERIOD_S
            ),
            policy=PolicySettings(sync_mode=self._sync_mode()),
        )

    def _sync_mode(self) -> ReplicaMode:
        try:
            return ReplicaMode(self.record().sync_mode or defaults.SYNC_MODE.lower())
        except (ValueError, ApiException):
            return ReplicaMode.STRICT_SYNC

    def record(self) -> ClusterRecord:
        """The cluster record, read fresh from the Lease (an empty record when there is no Lease yet)."""
        assert self.facts is not None
        try:
            lease = self.coord_api.read_namespaced_lease(
                self.o.lease or self.facts.lease_name, self.o.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status == 404:
                return ClusterRecord()
            raise
        meta = lease.metadata
        return record_codec.decode((meta.annotations if meta is not None else None) or {})[0]

    def lease_holder(self) -> str:
        assert self.facts is not None
        try:
            lease = self.coord_api.read_namespaced_lease(
                self.o.lease or self.facts.lease_name, self.o.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            log_event(log, "lease not readable; no holder known", level=logging.DEBUG, status=exc.status)
            return ""
        return str((lease.spec.holder_identity if lease.spec else "") or "")

    def observe(self) -> tuple[Health, Snapshot, ClusterRecord]:
        """cluster_health on a fresh Snapshot (pods from the API server, every Memgraph asked now)."""
        assert self.facts is not None
        if self._observer is None:
            self._pool = MemgraphPool(self.settings("memgraph-ha-cli"))
            o = self.o
            kube = _DirectKube(self.core, self.apps, o.namespace, o.statefulset, self.facts.selector)
            self._observer = Observer(kube, self._pool, probe_timeout_s=PROBE_TIMEOUT_S)
        record = self.record()
        snap = self._observer.snapshot(record, "")
        return cluster_health(snap, record), snap, record

    def close(self) -> None:
        if self._observer is not None:
            self._observer.close()
        if self._pool is not None:
            self._pool.close()

    def pod_names(self) -> list[str]:
        assert self.facts is not None
        return [f"{self.o.statefulset}-{i}" for i in range(self.facts.replicas)]

    def pod(self, name: str) -> Any | None:
        try:
            return self.core.read_namespaced_pod(name, self.o.namespace, _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def state_text(self) -> dict[str, Any]:
        """What the cluster looks like now, for the stop message and the final report."""
        try:
            health, snap, record = self.observe()
        except Exception as exc:
            problem = f"cannot observe: {type(exc).__name__}: {exc}"
            log_event(log, "cluster state not observable", level=logging.WARNING, error=problem)
            return {"healthy": False, "main": None, "problems": [problem]}
        pods = {}
        for p in snap.pods:
            inst = snap.instances.get(p.name)
            role = inst.role.value if inst is not None and inst.role is not None else None
            pods[p.name] = {"ready": p.ready, "role": role, "terminating": p.terminating}
        return {
            "healthy": health.healthy,
            "main": record.main or None,
            "sync_replica": record.sync_replica or None,
            "problems": list(health.problems),
            "pods": pods,
        }
