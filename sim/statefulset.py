"""The StatefulSet controller of the emulated cluster: pods 0..N-1, created in order, recreated by name.

Role: every 0.1 s, compare the StatefulSet's pods in the Kubernetes emulator with `replicas` and create
the missing ones (reference kubernetes-and-helm B.1): OrderedReady creates the lowest missing ordinal
only once every lower pod is Ready; Parallel creates every missing pod at once. A re-created pod keeps
its name and its PVC directory and gets a new uid and a new sandbox (`sim.clusternet`: a new network
namespace and address per incarnation); a pod still terminating, or held away by
a fault (`SimCluster.held_pods`), is not re-created yet. Creating a pod starts its containers
(`sim.kubelet.PodRuntime`). It works on the emulator's store directly, as the real controller is a
trusted component.

Must never: create a second pod of one ordinal, create a pod while its previous incarnation still runs,
or raise out of its loop.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from sim import manifests
from sim.init_containers import InitContainers
from sim.kubelet import PodRuntime

if TYPE_CHECKING:
    from sim.cluster import SimCluster

log = logging.getLogger(__name__)
PERIOD_S = 0.1


def is_ready(pod: Any) -> bool:
    """The pod object's Ready condition is True."""
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def list_pods(cluster: SimCluster) -> list[Any]:
    """The StatefulSet's pods as the API server stores them."""
    cfg = cluster.cfg
    return list(cluster.kube.list("Pod", cfg.namespace, label_selector=manifests.selector(cfg)))


class StatefulSetController:
    def __init__(self, cluster: SimCluster) -> None:
        self.c = cluster
        self._creating: set[str] = set()  # Parallel pod management: creations under way

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(PERIOD_S):
            try:
                self.reconcile()
            except Exception as exc:
                log.debug("sts controller: %s: %s", type(exc).__name__, exc)

    def creating(self) -> bool:
        """A pod is being created in parallel right now (the facade waits for it before stopping)."""
        with self.c._lock:
            return bool(self._creating)

    def reconcile(self) -> None:
        c = self.c
        existing = {p["metadata"]["name"]: p for p in list_pods(c)}
        parallel = c.cfg.pod_management == "Parallel"
        for ordinal in range(c.cfg.replicas):
            name = f"{c.cfg.name}-{ordinal}"
            if name in existing:
                if not is_ready(existing[name]) and not parallel:
                    return  # OrderedReady: wait for this one before creating the next
                continue
            with c._lock:
                busy = name in c.runtimes  # still terminating
            if busy or name in c.held_pods:  # held: a fault keeps this pod away for now
                if parallel:
                    continue
                return
            if parallel:
                with c._lock:
                    if name in self._creating:
                        continue
                    self._creating.add(name)
                threading.Thread(target=self._create_parallel, args=(name,), daemon=True).start()
                continue
            self.create_pod(name)
            return

    def _create_parallel(self, name: str) -> None:
        try:
            self.create_pod(name)
        except Exception as exc:
            log.warning("pod %s not created: %s: %s", name, type(exc).__name__, exc)
        finally:
            with self.c._lock:
                self._creating.discard(name)

    def _run_init_containers(self, rt: PodRuntime, start_deadline_s: float = 60.0) -> None:
        """The ordinary init containers first (the chart's reseed); their terminated states go into the
        pod status at once, as the kubelet's status manager posts them before the main containers run."""
        c = self.c
        if not c.cfg.template.with_reseed_init:
            return
        init = InitContainers(rt.name, rt.uid, rt.agent_env(), rt.lib_dir, c.workdir / "logs", rt.box.start)
        init.run(time.monotonic() + start_deadline_s)
        rt.init_statuses = init.statuses()
        c.kube.patch_status("Pod", c.cfg.namespace, rt.name, {"initContainerStatuses": rt.init_statuses})

    def create_pod(self, name: str) -> None:
        c = self.c
        assert c.net is not None
        box = c.net.new_pod(name)  # the pod sandbox: a new namespace and address per incarnation
        try:
            obj = manifests.pod(c.cfg, name, str(uuid.uuid4()), box.ip)
            created = c.kube.create(obj, keep_status=True)
        except BaseException:
            c.net.release(box)
            raise
        uid = str(created["metadata"]["uid"])  # the API server assigns the uid
        rt = PodRuntime(
            name,
            uid,
            box,
            c.ports,
            c.cfg.template,
            c.workdir / "pvc" / name,
            c.workdir / "logs",
            c.net.bed.hosts_file,
            c.cfg.memgraph_auth,
        )
        if c.cfg.template.with_agent:
            rt.extra_env["KUBECONFIG"] = str(c.kubelet.service_account_kubeconfig(name, uid))
        with c._lock:
            c.runtimes[name] = rt
        try:
            self._run_init_containers(rt)
            rt.start()
        except Exception as exc:
            log.warning("pod %s failed to start: %s", name, exc)
