"""The emulated cluster: a Memgraph StatefulSet on the Kubernetes emulator, with real agents (facade).

Role: wire the pieces of the emulated cluster and offer what tests, the demo, the bench and the faults
use: the Kubernetes API emulator (`sim.kube`), the chart rendered with the cluster's values and put on its
time scale (`sim.chart`, `sim.clusterconfig`), the StatefulSet controller (`sim.statefulset`), the nodes,
their lifecycle controller, the scheduler and the volume attachments (`sim.nodeloop`), and the nodes'
kubelets (`sim.kubelet_loop`, each pod's containers driven by `sim.podworker` with the chart's probes and
CrashLoopBackOff). The network is `sim.clusternet.ClusterNetwork`: every pod incarnation in a network
namespace of its own (loopback where namespaces cannot be made), the API server (HTTPS, its certificate
valid for its address) on the bridge, every Service on an address of its own served by kube-proxy
(`endpoint_delay_s` late, on the time scale; established connections stay pinned), cluster DNS from the
same delayed view; the client Service is the write Service's address. The agents run as the chart's
ServiceAccount under its rendered Role. The controllers and kubelets work on the emulator's store
directly (as the real ones are trusted components that write status); the agents and every test client
go through the real `kubernetes` client over HTTPS, so they see what they would see in a cluster.

Must never: touch a product module (it only starts `python -m agent` and `hooks/prestop.py`), or leave a
process, namespace, link or hosts file after `stop()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import secrets
import shutil
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim import manifests
from sim.clusterconfig import ClusterConfig, ClusterTimings
from sim.clusternet import ClusterNetwork
from sim.kube.server import KubeEmulator
from sim.kubelet import PodRuntime, TerminationRecord
from sim.kubelet_loop import Incarnation, Kubelets
from sim.nodeloop import NodeLifecycle
from sim.nodes import KubeletState
from sim.statefulset import StatefulSetController
from sim.timeline import PodRole

__all__ = ["ROLE_LABEL", "ClusterConfig", "ClusterTimings", "SimCluster"]
log = logging.getLogger(__name__)
ROLE_LABEL = "memgraph-ha.io/role"


class SimCluster:
    def __init__(self, workdir: Path, config: ClusterConfig | None = None) -> None:
        self.cfg = c = config or ClusterConfig()
        self.workdir = workdir
        self.rng = random.Random(c.seed)
        for sub in ("pvc", "logs"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        self.scale = c.time_scale
        self.chart = c.chart()
        node_timings, backoff = c.node_timings.scaled(self.scale), c.backoff.scaled(self.scale)
        self.timings = c.timings(self.chart)
        self.kubeconfig = workdir / "kubeconfig"
        self.node_names = [f"node-{i}" for i in range(c.replicas + c.spare_nodes)]
        self._node_timings, self._backoff = node_timings, backoff
        self.held_pods: set[str] = set()  # deleted pods the StatefulSet controller must not re-create yet
        self._fence_token = secrets.token_hex(24)  # HA_FENCE_TOKEN, as the chart generates one
        self.skip_hook_once: set[str] = set()  # pods whose next termination runs no preStop hook
        self.cut_pods: dict[str, str] = {}  # pods under a partition fault -> what was cut
        self.made: list[PodRuntime] = []  # every incarnation of the run, in creation order (sim.leader_acts)
        # set by start(): the network (its bed decides the API server's address), then what uses the API
        self.net: ClusterNetwork | None = None
        self.kube: KubeEmulator
        self.nodes: NodeLifecycle
        self.kubelets: Kubelets
        self.sts: StatefulSetController
        self._lock = threading.RLock()
        self._started = False

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self, wait_ready_s: float = 60.0) -> None:
        c = self.cfg
        self._started = True  # from here on stop() tears down whatever was made
        self.net = net = ClusterNetwork(self.workdir, c.namespace, c.name, manifests.headless(c, self.chart),
                                        c.seed, c.network, self.timings.endpoint_delay_s)
        self.kube = KubeEmulator(host=net.bed.api_host, port=net.bed.api_port)
        self.nodes = NodeLifecycle(self.kube, c.namespace, self._list_pods, self.node_names,
                                   self._node_timings, c.seed)
        self.kubelets = Kubelets(self.kube, c.namespace, self._list_pods, self.nodes, self._backoff,
                                 self._gone, self.skip_hook_once)
        self.sts = StatefulSetController(c.name, c.replicas, c.pod_management == "Parallel", self._list_pods,
                                         self.nodes.schedule, self._create_pod, self.held_pods)
        self.kube.start()
        self.kube.write_kubeconfig(self.kubeconfig)
        self.ports = dict(net.bed.ports)
        self.cfg.template.agent_env = self._agent_env()
        self.cfg.template.with_reseed_init = (self.cfg.template.with_agent
                                              and self.chart.agent_env().get("HA_RESEED") == "auto")
        objects = manifests.objects(c, self.chart, self.ports)
        net.assign_cluster_ips(objects)
        for obj in objects:
            self.kube.create(obj)
        self._apply_chart_identity()
        net.start(self._list_pods, lambda: self.kube.list("Service", c.namespace), lambda: self.kube.revision)
        self.nodes.start()
        self.kubelets.start()
        self.sts.start()
        self.wait_ready(wait_ready_s)

    def stop(self) -> None:
        if not self._started:
            return
        if hasattr(self, "sts"):
            self.sts.stop()
            self.kubelets.stop()
            self.nodes.stop()
            for inc in self.kubelets.all():
                with contextlib.suppress(Exception):
                    inc.runtime.kill_all()
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
        objs = manifests.chart_identity(self.cfg)
        if self.cfg.edit_identity is not None:
            objs = self.cfg.edit_identity(objs)
        for obj in objs:
            self.kube.create(obj)

    def _agent_env(self) -> dict[str, str]:
        """The agent's environment as the chart renders it (on the time scale), plus what the cluster
        knows better: the namespace (a fieldRef in the chart), credentials. Each pod's KUBECONFIG is its
        own (its ServiceAccount token, `Kubelets.service_account_kubeconfig`)."""
        c = self.cfg
        env = self.chart.agent_env()
        # the chart's generated Secret <fullname>-ha-fence (a secretKeyRef, which the render's plain env
        # leaves out): one random token per cluster, so a failover fences the old MAIN with the chart's
        # defaults (a test may override or blank it)
        env.update(POD_NAMESPACE=c.namespace, HA_LOG_FORMAT="logfmt", HA_FENCE_TOKEN=self._fence_token)
        if c.memgraph_auth:
            env["MEMGRAPH_USER"], env["MEMGRAPH_PASSWORD"] = c.memgraph_auth
        env.update(c.extra_agent_env)
        return env

    # ---- pods -----------------------------------------------------------------------------------

    def _create_pod(self, name: str, node: str) -> None:
        """The StatefulSet controller's create: the pod object, bound to `node`, and its runtime in a new
        sandbox (a new network namespace and address per incarnation)."""
        assert self.net is not None
        box = self.net.new_pod(name)
        try:
            obj = manifests.pod(self.cfg, self.chart, name, str(uuid.uuid4()), box.ip, node)
            uid = str(self.kube.create(obj, keep_status=True)["metadata"]["uid"])  # the API server's
        except BaseException:
            self.net.release(box)
            raise
        rt = PodRuntime(name, uid, box, self.ports, self.cfg.template, self.chart,
                        self.workdir / "pvc" / name, self.workdir / "logs", self.net.bed.hosts_file,
                        self.cfg.memgraph_auth)
        if self.cfg.template.with_agent:
            kubeconfig = self.kubelets.service_account_kubeconfig(self.workdir, self.cfg.name, name, uid)
            rt.extra_env["KUBECONFIG"] = str(kubeconfig)
        self.made.append(rt)
        self.kubelets.bind(rt, node)

    def _gone(self, rt: PodRuntime) -> None:
        """An incarnation is over: its sandbox goes (namespace, veth, hosts file)."""
        if self.pod_uid(rt.name) in (None, rt.uid):
            self.cut_pods.pop(rt.name, None)
        if self.net is not None:
            self.net.release(rt.box)

    @property
    def runtimes(self) -> dict[str, PodRuntime]:
        """The incarnation of each pod name that its API object names (orphans on lost nodes excluded)."""
        return {i.runtime.name: i.runtime for i in self.incarnations()}

    def incarnations(self) -> list[Incarnation]:
        uids = {p["metadata"]["uid"] for p in self._list_pods()}
        return [i for i in self.kubelets.all() if i.runtime.uid in uids]

    def orphans(self) -> list[Incarnation]:
        """Incarnations whose pod object is gone while their containers may still run (a lost node)."""
        uids = {p["metadata"]["uid"] for p in self._list_pods()}
        return [i for i in self.kubelets.all() if i.runtime.uid not in uids]

    @property
    def terminations(self) -> list[TerminationRecord]:
        return self.kubelets.terminations

    def node_of(self, pod: str) -> str:
        for inc in self.incarnations():
            if inc.runtime.name == pod:
                return inc.node
        raise KeyError(pod)

    def set_kubelet(self, node: str, state: KubeletState) -> None:
        self.kubelets.set_kubelet(node, state)

    def force_delete(self, name: str) -> None:
        """`kubectl delete pod --grace-period=0 --force`: the object goes at once, whatever still runs."""
        self.kube.delete("Pod", self.cfg.namespace, name, 0)

    # ---- what tests and the demo use ------------------------------------------------------------

    def _list_pods(self) -> list[Any]:
        return list(self.kube.list("Pod", self.cfg.namespace, label_selector=manifests.selector(self.cfg)))

    def pod_names(self) -> list[str]:
        return [f"{self.cfg.name}-{i}" for i in range(self.cfg.replicas)]

    def runtime(self, name: str) -> PodRuntime:
        return self.runtimes[name]

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                pods = self._list_pods()
                if len(pods) == self.cfg.replicas and all(
                    _is_ready(p) and not p["metadata"].get("deletionTimestamp") for p in pods
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
        """`kubectl delete pod` (the pod's own grace period unless `grace_s`, on the cluster's scale)."""
        if not run_hook:
            self.skip_hook_once.add(name)
        grace = None if grace_s is None else math.ceil(grace_s)
        self.kube.delete("Pod", self.cfg.namespace, name, grace)

    def pod_uid(self, name: str) -> str | None:
        with contextlib.suppress(Exception):
            return str(self.kube.get("Pod", self.cfg.namespace, name)["metadata"].get("uid"))
        return None

    def pod_ready(self, name: str) -> bool:
        with contextlib.suppress(Exception):
            pod = self.kube.get("Pod", self.cfg.namespace, name)
            return _is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
        return False

    def roles(self) -> dict[str, PodRole]:
        """For the invariant sampler: every pod's Memgraph role, role label, Ready and owned replicas.

        A MAIN owns the replicas whose stored main UUID is its own: a replica accepts data and heartbeats
        only from that MAIN (reference memgraph-replication.md 3.3). A MAIN's SHOW REPLICAS may still list
        others -- a restored or thawed old MAIN shows its old registrations, with a cached status, until
        a heartbeat is refused or its guard demotes it -- but it feeds none of them.
        """
        pods = {p["metadata"]["name"]: p for p in self._list_pods()}
        runtimes = self.runtimes
        states: dict[str, dict[str, Any]] = {}
        for name in pods:
            rt = runtimes.get(name)
            if rt is not None and rt.memgraph.alive and not rt.frozen and "memgraph" not in rt.hung:
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
            ready = _is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
            out[name] = PodRole(role, label, ready, replicas)
        return out

    def status(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """The cluster status document, asked of any Ready pod's agent (non-leaders forward it); with the
        bearer token when the agents run with HA_STATUS_AUTH=token."""
        reachable = {n for n, st in self.nodes.kubelet_states().items()
                     if st in (KubeletState.RUNNING, KubeletState.DEAD)}
        env = self.cfg.extra_agent_env
        token = env.get("HA_API_TOKEN", "") if env.get("HA_STATUS_AUTH") == "token" else ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        last: Exception | None = None
        for inc in self.incarnations():
            rt = inc.runtime
            if (rt.terminating or rt.frozen or inc.node not in reachable or "agent" in rt.hung
                    or rt.name in self.cut_pods):
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


def _is_ready(pod: Any) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
