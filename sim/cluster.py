"""The emulated cluster: a Memgraph StatefulSet on the Kubernetes emulator, with real agents (the facade).

Role: start and stop the Kubernetes emulator (with the chart's ServiceAccount, Role, RoleBinding and
PDB applied as Helm renders them: the agents run under that Role), the StatefulSet controller
(`sim.statefulset`: pods 0..N-1, OrderedReady or Parallel creation, a deleted pod recreated with the
same name, a new IP and the same PVC directories) and the kubelet loop (`sim.kubelet_loop`: Ready
conditions from the probes, the termination sequence of a pod marked for deletion, then its
finalisation; each pod's containers are a `sim.kubelet.PodRuntime` started in the pod's sandbox), and
hold the state they share (the runtimes by pod, pods held away or cut by a fault, hooks to skip). The
network is `sim.clusternet.ClusterNetwork`: every pod incarnation in a network namespace of its own
(loopback where namespaces cannot be made), the API server (HTTPS, its certificate valid for its
address) on the bridge, every Service on an address of its own served by kube-proxy (`endpoint_delay_s`
late; established connections stay pinned), cluster DNS from the same delayed view. What tests, faults,
the demo and the bench use is here: pod names and uids, readiness, deletion and restart, the client
Service (the write Service's address: kube-proxy picks the pod), the roles the invariant sampler polls
(`PodRole`), and the status document from any agent. The controller and kubelet work on the emulator's
store directly (as the real ones are trusted components that write status); the agents and every test
client go through the real `kubernetes` client over HTTPS, so they see what they would see in a cluster.

Must never: touch a product module (it only starts `python -m agent` and `hooks/prestop.py`), or leave a
process, namespace, link or hosts file after `stop()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import secrets
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim import manifests
from sim.clusternet import ClusterNetwork
from sim.endpoints import DEFAULT_DELAY_S
from sim.kube.server import KubeEmulator
from sim.kubelet import PodRuntime, PodTemplate, TerminationRecord
from sim.kubelet_loop import KubeletLoop
from sim.statefulset import StatefulSetController, is_ready, list_pods
from sim.timeline import PodRole

log = logging.getLogger(__name__)
ROLE_LABEL = "memgraph-ha.io/role"


@dataclass
class ClusterConfig:
    replicas: int = 3
    name: str = "memgraph"
    namespace: str = "default"
    template: PodTemplate = field(default_factory=PodTemplate)
    seed: int | None = None
    memgraph_auth: tuple[str, str] | None = None
    lease_duration_s: float = 4.0
    renew_deadline_s: float = 3.0
    retry_period_s: float = 0.5
    reconcile_interval_s: float = 0.5
    failover_after_s: float = 2.0
    sync_mode: str = "STRICT_SYNC"
    # haAgent.divergence.reseed (the chart's default, auto): `auto` also runs the chart's reseed init
    # container in every pod, as the chart does with HA on
    reseed: str = "auto"
    drain_s: float = 0.5
    extra_agent_env: dict[str, str] = field(default_factory=dict)
    # StatefulSet podManagementPolicy: the chart's OrderedReady, or Parallel (every missing pod is created
    # at once, without waiting for the lower ordinals; the scenario suite uses it to start faster)
    pod_management: str = "OrderedReady"
    # edits the chart's rendered ServiceAccount/Role/RoleBinding/PDB before they are applied (a test that
    # takes a verb away from the Role); None applies them as rendered
    edit_identity: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    network: str = "auto"  # netns (required), loopback, or auto: netns when it can be made (sim.bed)
    endpoint_delay_s: float = DEFAULT_DELAY_S  # EndpointSlice propagation to kube-proxy and DNS
    headless_publish_not_ready: bool = True  # the chart's headless Service (False: seed 001 incident 3)


class SimCluster:
    def __init__(self, workdir: Path, config: ClusterConfig | None = None) -> None:
        self.cfg = config or ClusterConfig()
        self.workdir = workdir
        self.rng = random.Random(self.cfg.seed)
        for sub in ("pvc", "logs"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        self.kubeconfig = workdir / "kubeconfig"
        self.net: ClusterNetwork | None = None  # opened by start()
        self.kube: KubeEmulator  # set by start(): it listens on the network's API address
        self.cut_pods: dict[str, str] = {}  # pods under a partition fault -> what was cut
        self.runtimes: dict[str, PodRuntime] = {}
        self.terminations: list[TerminationRecord] = []
        self.skip_hook_once: set[str] = set()
        self.held_pods: set[str] = set()  # deleted pods the StatefulSet controller must not re-create yet
        self._fence_token = secrets.token_hex(24)  # HA_FENCE_TOKEN, as the chart generates one
        self._stop = threading.Event()
        self._lock = threading.RLock()  # guards runtimes (shared with the controller and the kubelet loop)
        self._threads: list[threading.Thread] = []
        self.controller = StatefulSetController(self)
        self.kubelet = KubeletLoop(self)

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self, wait_ready_s: float = 60.0) -> None:
        c = self.cfg
        self.net = net = ClusterNetwork(self.workdir, c.namespace, c.name, f"{c.name}-headless", c.seed,
                                        c.network, c.endpoint_delay_s)
        self.kube = KubeEmulator(host=net.bed.api_host, port=net.bed.api_port)
        self.kube.start()
        self.kube.write_kubeconfig(self.kubeconfig)
        self.ports = dict(net.bed.ports)
        self.cfg.template.agent_env = self._agent_env()
        self.cfg.template.with_reseed_init = self.cfg.template.with_agent and self.cfg.reseed == "auto"
        objects = manifests.objects(self.cfg, self.ports)
        net.assign_cluster_ips(objects)
        for obj in objects:
            self.kube.create(obj)
        self._apply_chart_identity()
        net.start(self._list_pods, lambda: self.kube.list("Service", c.namespace), lambda: self.kube.revision)
        for target, name in ((self.controller.run, "sts-controller"), (self.kubelet.run, "kubelet")):
            t = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self.wait_ready(wait_ready_s)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        deadline = time.monotonic() + 30.0  # a pod being created in parallel must finish starting first
        while self.controller.creating() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            runtimes = list(self.runtimes.values())
        for rt in runtimes:
            with contextlib.suppress(Exception):
                rt.terminate(grace_s=2.0, run_hook=False)
        if self.net is not None:
            self.net.stop()
        if hasattr(self, "kube"):
            self.kube.stop()
            denied = self.kube.denials()
            # a verb the agents need and the chart's Role lacks shows here, whatever the test checked
            if denied:
                path = self.workdir / "rbac-denials.json"
                path.write_text(json.dumps(denied, indent=1) + "\n")
                log.warning("the API server denied %d requests (RBAC); see %s", len(denied), path)
        if self.net is not None:
            self.net.close()

    def __enter__(self) -> SimCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _apply_chart_identity(self) -> None:
        """The chart's ServiceAccount, Role, RoleBinding and PDB: the agents run as that ServiceAccount."""
        objs = manifests.chart_identity(self.cfg, self.cfg.template.agent_env.get("HA_LEASE_NAME", ""))
        if self.cfg.edit_identity is not None:
            objs = self.cfg.edit_identity(objs)
        for obj in objs:
            self.kube.create(obj)

    def _agent_env(self) -> dict[str, str]:
        c = self.cfg
        env = {
            "POD_NAMESPACE": c.namespace,
            "HA_STATEFULSET": c.name,
            "HA_POD_SELECTOR": manifests.selector(c),
            # As the chart: no HA_HEADLESS_SERVICE, so replicas are registered at their pod IPs and every
            # new incarnation (a new IP) exercises the re-registration.
            "HA_LEASE_NAME": f"{c.name}-ha",
            "HA_LEASE_DURATION_SECONDS": str(c.lease_duration_s),
            "HA_RENEW_DEADLINE_SECONDS": str(c.renew_deadline_s),
            "HA_RETRY_PERIOD_SECONDS": str(c.retry_period_s),
            "HA_RECONCILE_INTERVAL_SECONDS": str(c.reconcile_interval_s),
            "HA_FAILOVER_AFTER_SECONDS": str(c.failover_after_s),
            "HA_SYNC_MODE": c.sync_mode,
            "HA_RESEED": c.reseed,
            "HA_PRESTOP_BUDGET_SECONDS": str(c.template.prestop_budget_s),
            "HA_DRAIN_SECONDS": str(c.drain_s),
            "HA_LOG_FORMAT": "logfmt",
            # as the chart's generated Secret <fullname>-ha-fence: one random token per cluster, so a
            # failover fences the old MAIN with the chart's defaults (a test may override or blank it)
            "HA_FENCE_TOKEN": self._fence_token,
        }
        if c.memgraph_auth:
            env["MEMGRAPH_USER"], env["MEMGRAPH_PASSWORD"] = c.memgraph_auth
        env.update(c.extra_agent_env)
        return env

    # ---- what tests and the demo use ------------------------------------------------------------

    def _list_pods(self) -> list[Any]:
        return list_pods(self)

    def pod_names(self) -> list[str]:
        return [f"{self.cfg.name}-{i}" for i in range(self.cfg.replicas)]

    def runtime(self, name: str) -> PodRuntime:
        with self._lock:
            return self.runtimes[name]

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                pods = self._list_pods()
                if len(pods) == self.cfg.replicas and all(
                    is_ready(p) and not p["metadata"].get("deletionTimestamp") for p in pods
                ):
                    return
            time.sleep(0.1)
        raise TimeoutError(f"pods not all Ready within {timeout_s}s")

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            with contextlib.suppress(Exception):
                if predicate():
                    return time.monotonic() - start
            time.sleep(0.05)
        raise TimeoutError(f"{what}: not within {timeout_s}s")

    def resolve_main(self) -> tuple[str, int] | None:
        """Where a client sends writes: the client (write) Service's address. kube-proxy picks the pod
        for each NEW connection; a pooled connection stays with the pod it reached."""
        return self.net.service(self.cfg.name) if self.net is not None else None

    @property
    def dual_main_seen(self) -> list[tuple[float, list[str]]]:
        """NEW connections of the write Service routed while two pods were candidates (time, pods)."""
        return self.net.dual_main_seen if self.net is not None else []

    def labels(self) -> dict[str, dict[str, str]]:
        return {p["metadata"]["name"]: dict(p["metadata"].get("labels") or {}) for p in self._list_pods()}

    def delete_pod(self, name: str, grace_s: float | None = None, run_hook: bool = True) -> None:
        if not run_hook:
            self.skip_hook_once.add(name)
        grace = int(grace_s if grace_s is not None else self.cfg.template.grace_s)
        self.kube.delete("Pod", self.cfg.namespace, name, grace)

    def pod_uid(self, name: str) -> str | None:
        with contextlib.suppress(Exception):
            return str(self.kube.get("Pod", self.cfg.namespace, name)["metadata"].get("uid"))
        return None

    def pod_ready(self, name: str) -> bool:
        with contextlib.suppress(Exception):
            pod = self.kube.get("Pod", self.cfg.namespace, name)
            return is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
        return False

    def roles(self) -> dict[str, PodRole]:
        """For the invariant sampler: every pod's Memgraph role, role label, Ready and owned replicas.

        A MAIN owns the replicas whose stored main UUID is its own: a replica accepts data and heartbeats
        only from that MAIN (reference memgraph-replication.md 3.3). A MAIN's SHOW REPLICAS may still list
        others -- a restored or thawed old MAIN shows its old registrations, with a cached status, until
        a heartbeat is refused or its guard demotes it -- but it feeds none of them.
        """
        pods = {p["metadata"]["name"]: p for p in self._list_pods()}
        with self._lock:
            runtimes = dict(self.runtimes)
        states: dict[str, dict[str, Any]] = {}
        for name in pods:
            rt = runtimes.get(name)
            if rt is not None and rt.memgraph.alive and not rt.frozen:
                with contextlib.suppress(Exception):
                    # 2 s: a live emulator slow under load is not an unreachable one (frozen pods are skipped)
                    states[name] = rt.memgraph.admin("state", timeout_s=2.0)
        out: dict[str, PodRole] = {}
        for name, pod in pods.items():
            st = states.get(name, {})
            role = st.get("role")
            replicas: tuple[str, ...] = ()
            if role == "main":
                owned = []
                for row in st.get("replicas") or {}:
                    peer = states.get(row.replace("_", "-"), {})  # replica name: pod name, '-' -> '_'
                    if peer.get("role") == "replica" and peer.get("uuid") == st.get("uuid"):
                        owned.append(row)
                replicas = tuple(sorted(owned))
            label = (pod["metadata"].get("labels") or {}).get(ROLE_LABEL)
            ready = is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
            out[name] = PodRole(role, label, ready, replicas)
        return out

    def status(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """The cluster status document, asked of any Ready pod's agent (non-leaders forward it); with the
        bearer token when the agents run with HA_STATUS_AUTH=token."""
        with self._lock:
            runtimes = list(self.runtimes.values())
        env = self.cfg.extra_agent_env
        token = env.get("HA_API_TOKEN", "") if env.get("HA_STATUS_AUTH") == "token" else ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        last: Exception | None = None
        for rt in runtimes:
            if rt.terminating or rt.frozen or rt.name in self.cut_pods:
                continue
            try:
                req = urllib.request.Request(rt.agent_url + "/api/v1/status", headers=headers)
                with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                    doc: dict[str, Any] = json.loads(resp.read())
                    return doc
            except Exception as exc:
                last = exc
        raise RuntimeError(f"no agent answered the status request: {last}")

    def healthy(self) -> bool:
        try:
            return bool(self.status().get("cluster", {}).get("healthy"))
        except Exception:
            return False

    def main(self) -> str | None:
        with contextlib.suppress(Exception):
            return self.status().get("cluster", {}).get("main") or None
        return None

    def restart_pod(self, name: str, timeout_s: float = 120.0) -> float:
        """Delete a pod as `kubectl delete pod` would and wait for its successor to be Ready."""
        start = time.monotonic()
        uid = self.pod_uid(name)
        self.delete_pod(name)
        self.wait_for(
            lambda: self.pod_uid(name) not in (None, uid) and self.pod_ready(name),
            timeout_s,
            f"{name} recreated and Ready",
        )
        return time.monotonic() - start

    def wipe_pvc(self, name: str) -> None:
        shutil.rmtree(self.workdir / "pvc" / name, ignore_errors=True)

