"""The emulated cluster: a Memgraph StatefulSet on the Kubernetes emulator, with real agents.

Role: play the StatefulSet controller (pods 0..N-1, OrderedReady creation, recreate a deleted pod with
the same name, a new IP and the same PVC directories) and kubelet (start containers through
`sim.kubelet.PodRuntime`, keep each pod's Ready condition equal to its probes, run the termination
sequence when the API server marks a pod for deletion, then finalise the pod object). The client Service
is resolved at connect time to a Ready pod labelled `memgraph-ha.io/role=main`, as kube-proxy would.
The controller and kubelet work on the emulator's store directly (as the real ones are trusted
components that write status); the agents and every test client go through the real `kubernetes` client
over HTTP, so they see what they would see in a cluster.

Must never: touch a product module (it only starts `python -m agent` and `hooks/prestop.py`), or leave a
process running after `stop()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim import manifests
from sim.kube.server import KubeEmulator
from sim.kubelet import PodRuntime, PodTemplate, TerminationRecord
from sim.network import Network

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
    drain_s: float = 0.5
    extra_agent_env: dict[str, str] = field(default_factory=dict)
    # StatefulSet podManagementPolicy: the chart's OrderedReady, or Parallel (every missing pod is created
    # at once, without waiting for the lower ordinals; the scenario suite uses it to start faster)
    pod_management: str = "OrderedReady"


class SimCluster:
    def __init__(self, workdir: Path, config: ClusterConfig | None = None) -> None:
        self.cfg = config or ClusterConfig()
        self.workdir = workdir
        self.rng = random.Random(self.cfg.seed)
        for sub in ("pvc", "logs"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        self.kube = KubeEmulator(host="127.0.0.1", port=0)
        self.kubeconfig = workdir / "kubeconfig"
        self.network = Network(
            workdir / "hosts", f"{self.cfg.name}-headless", self.cfg.namespace, self.cfg.seed
        )
        self.runtimes: dict[str, PodRuntime] = {}
        self.terminations: list[TerminationRecord] = []
        self.dual_main_seen: list[tuple[float, list[str]]] = []
        self.skip_hook_once: set[str] = set()
        self.held_pods: set[str] = set()  # deleted pods the StatefulSet controller must not re-create yet
        self._creating: set[str] = set()  # Parallel pod management: creations under way
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self, wait_ready_s: float = 60.0) -> None:
        self.kube.start()
        self.kube.write_kubeconfig(self.kubeconfig)
        bolt, repl, agent = self.network.pick_ports(3)
        self.ports = {"bolt": bolt, "replication": repl, "agent": agent}
        self.cfg.template.agent_env = self._agent_env()
        for obj in manifests.objects(self.cfg, self.ports):
            self.kube.create(obj)
        for target, name in ((self._controller, "sts-controller"), (self._kubelet, "kubelet")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self.wait_ready(wait_ready_s)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        deadline = time.monotonic() + 30.0  # a pod being created in parallel must finish starting first
        while self._creating and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            runtimes = list(self.runtimes.values())
        for rt in runtimes:
            with contextlib.suppress(Exception):
                rt.terminate(grace_s=2.0, run_hook=False)
        self.kube.stop()

    def __enter__(self) -> SimCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _agent_env(self) -> dict[str, str]:
        c = self.cfg
        env = {
            "POD_NAMESPACE": c.namespace,
            "KUBECONFIG": str(self.kubeconfig),
            "HA_STATEFULSET": c.name,
            "HA_POD_SELECTOR": manifests.selector(c),
            "HA_HEADLESS_SERVICE": f"{c.name}-headless",
            "HA_LEASE_NAME": f"{c.name}-ha",
            "HA_LEASE_DURATION_SECONDS": str(c.lease_duration_s),
            "HA_RENEW_DEADLINE_SECONDS": str(c.renew_deadline_s),
            "HA_RETRY_PERIOD_SECONDS": str(c.retry_period_s),
            "HA_RECONCILE_INTERVAL_SECONDS": str(c.reconcile_interval_s),
            "HA_FAILOVER_AFTER_SECONDS": str(c.failover_after_s),
            "HA_SYNC_MODE": c.sync_mode,
            "HA_PRESTOP_BUDGET_SECONDS": str(c.template.prestop_budget_s),
            "HA_DRAIN_SECONDS": str(c.drain_s),
            "HA_LOG_FORMAT": "logfmt",
        }
        if c.memgraph_auth:
            env["MEMGRAPH_USER"], env["MEMGRAPH_PASSWORD"] = c.memgraph_auth
        env.update(c.extra_agent_env)
        return env

    # ---- StatefulSet controller -------------------------------------------------------------------

    def _controller(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self._reconcile_pods()
            except Exception as exc:
                log.debug("sts controller: %s: %s", type(exc).__name__, exc)

    def _reconcile_pods(self) -> None:
        existing = {p["metadata"]["name"]: p for p in self._list_pods()}
        parallel = self.cfg.pod_management == "Parallel"
        for ordinal in range(self.cfg.replicas):
            name = f"{self.cfg.name}-{ordinal}"
            if name in existing:
                if not _is_ready(existing[name]) and not parallel:
                    return  # OrderedReady: wait for this one before creating the next
                continue
            with self._lock:
                busy = name in self.runtimes  # still terminating
            if busy or name in self.held_pods:  # held: a fault keeps this pod away for now
                if parallel:
                    continue
                return
            if parallel:
                with self._lock:
                    if name in self._creating:
                        continue
                    self._creating.add(name)
                threading.Thread(target=self._create_parallel, args=(name,), daemon=True).start()
                continue
            self._create_pod(name)
            return

    def _create_parallel(self, name: str) -> None:
        try:
            self._create_pod(name)
        except Exception as exc:
            log.warning("pod %s not created: %s: %s", name, type(exc).__name__, exc)
        finally:
            with self._lock:
                self._creating.discard(name)

    def _create_pod(self, name: str) -> None:
        ip = self.network.allocate_ip()
        created = self.kube.create(manifests.pod(self.cfg, name, str(uuid.uuid4()), ip), keep_status=True)
        uid = str(created["metadata"]["uid"])  # the API server assigns the uid
        rt = PodRuntime(
            name,
            uid,
            ip,
            self.ports,
            self.cfg.template,
            self.workdir / "pvc" / name,
            self.workdir / "logs",
            self.network.hosts_file,
            self.cfg.memgraph_auth,
        )
        with self._lock:
            self.runtimes[name] = rt
        self.network.set_pod(name, ip)
        try:
            rt.start()
        except Exception as exc:
            log.warning("pod %s failed to start: %s", name, exc)

    # ---- kubelet: readiness and termination -----------------------------------------------------

    def _kubelet(self) -> None:
        while not self._stop.wait(0.1):
            try:
                pods = self._list_pods()
                for pod in pods:
                    self._sync_pod(pod)
                self._reap_removed({(p["metadata"]["name"], p["metadata"].get("uid")) for p in pods})
            except Exception as exc:
                log.debug("kubelet: %s: %s", type(exc).__name__, exc)

    def _reap_removed(self, present: set[tuple[str, Any]]) -> None:
        """A pod removed from the API at once (force delete, grace 0): kill its containers, no preStop."""
        with self._lock:
            runtimes = list(self.runtimes.items())
        gone = [rt for n, rt in runtimes if (n, rt.uid) not in present and not rt.terminating]
        for rt in gone:
            if self.pod_uid(rt.name) == rt.uid:
                continue  # listed again meanwhile (a racing create): not gone
            rt.terminating = True
            self.skip_hook_once.add(rt.name)
            threading.Thread(target=self._terminate, args=(rt, 0.0), daemon=True).start()

    def _sync_pod(self, pod: Any) -> None:
        meta = pod["metadata"]
        name = meta["name"]
        with self._lock:
            rt = self.runtimes.get(name)
        if rt is None or rt.uid != meta.get("uid"):
            return
        if meta.get("deletionTimestamp"):
            if not rt.terminating:
                rt.terminating = True
                grace = float(meta.get("deletionGracePeriodSeconds", self.cfg.template.grace_s))
                threading.Thread(target=self._terminate, args=(rt, grace), daemon=True).start()
            return
        if rt.status_stale():
            return  # node loss: the status stays as last reported until the node controller notices
        ready = rt.ready()
        if not ready and _is_ready(pod) and not rt.frozen and rt.failing_for() < rt.t.ready_failure_s:
            return  # the probe's failureThreshold is not reached yet
        if ready != _is_ready(pod):
            self.kube.patch_status("Pod", self.cfg.namespace, name, manifests.ready_status(ready))

    def _terminate(self, rt: PodRuntime, grace: float) -> None:
        run_hook = rt.name not in self.skip_hook_once
        self.skip_hook_once.discard(rt.name)
        rec = rt.terminate(grace, run_hook=run_hook and grace > 0)
        self.terminations.append(rec)
        self.network.set_pod(rt.name, None)
        try:
            self.kube.finalize_pod(self.cfg.namespace, rt.name)
        except Exception as exc:
            log.debug("finalise %s: %s", rt.name, exc)
        with self._lock:
            if self.runtimes.get(rt.name) is rt:
                del self.runtimes[rt.name]

    # ---- what tests and the demo use ------------------------------------------------------------

    def _list_pods(self) -> list[Any]:
        return list(self.kube.list("Pod", self.cfg.namespace, label_selector=manifests.selector(self.cfg)))

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
        """The client Service: a Ready pod labelled role=main (kube-proxy picks one at random)."""
        with self._lock:
            runtimes = dict(self.runtimes)
        try:
            pods = self._list_pods()
        except Exception:
            return None
        mains = [
            p["metadata"]["name"]
            for p in pods
            if (p["metadata"].get("labels") or {}).get(ROLE_LABEL) == "main"
            and _is_ready(p)
            and not p["metadata"].get("deletionTimestamp")
            and p["metadata"]["name"] in runtimes
        ]
        if len(mains) > 1:
            self.dual_main_seen.append((time.monotonic(), mains))
        if not mains:
            return None
        return runtimes[self.rng.choice(mains)].ip, self.ports["bolt"]

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
            return _is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
        return False

    def roles(self) -> dict[str, tuple[str | None, str | None, bool, tuple[str, ...]]]:
        """For the invariant sampler: pod -> (Memgraph role, role label, Ready, replicas the MAIN owns).

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
        out: dict[str, tuple[str | None, str | None, bool, tuple[str, ...]]] = {}
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
            out[name] = (role, label, ready, replicas)
        return out

    def status(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """The cluster status document, asked of any Ready pod's agent (non-leaders forward it)."""
        with self._lock:
            runtimes = list(self.runtimes.values())
        last: Exception | None = None
        for rt in runtimes:
            if rt.terminating or rt.frozen:
                continue
            try:
                with urllib.request.urlopen(rt.agent_url + "/api/v1/status", timeout=timeout_s) as resp:
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
