"""The kubelet loop of the emulated cluster: keep each pod's Ready condition and run its termination.

Role: every 0.1 s, for every pod of the StatefulSet in the Kubernetes emulator (reference
kubernetes-and-helm B.1, B.2): a pod marked for deletion (deletionTimestamp) is terminated by its
`sim.kubelet.PodRuntime` -- preStop, SIGTERM, SIGKILL at the end of its grace period -- and then
finalised in the API; a pod removed from the API at once (force delete) has its containers killed
without preStop; otherwise its Ready condition follows its probes, turning NotReady only after the
probes failed for the template's failure window, and not at all while the node is lost (a stale status
stays until the node controller notices); the Ready patch carries the containers' statuses (READY and
RESTARTS in `kubectl get pods`). It also projects each pod's ServiceAccount token: a token bound to the
pod, in a token file and a kubeconfig that reads it (the agent's KUBECONFIG). It writes pod status in
the emulator's store directly, as the real kubelet is a trusted component.

Must never: run a preStop hook for a pod that was force-deleted, act on a runtime whose uid is not the
pod's, or raise out of its loop.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import manifests
from sim.kubelet import PodRuntime
from sim.statefulset import is_ready, list_pods

if TYPE_CHECKING:
    from sim.cluster import SimCluster

log = logging.getLogger(__name__)
PERIOD_S = 0.1


class KubeletLoop:
    def __init__(self, cluster: SimCluster) -> None:
        self.c = cluster

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(PERIOD_S):
            try:
                pods = list_pods(self.c)
                for pod in pods:
                    self.sync_pod(pod)
                self.reap_removed({(p["metadata"]["name"], p["metadata"].get("uid")) for p in pods})
            except Exception as exc:
                log.debug("kubelet: %s: %s", type(exc).__name__, exc)

    def service_account_kubeconfig(self, name: str, uid: str) -> Path:
        """The kubelet's projected token for the pod's ServiceAccount, as a token file and a kubeconfig
        that reads it (the agent's KUBECONFIG): the agent is that ServiceAccount, bound to this pod."""
        c = self.c
        d = c.workdir / "serviceaccount" / f"{name}.{uid[:8]}"
        d.mkdir(parents=True, exist_ok=True)
        token = d / "token"
        token.touch(mode=0o600)
        token.write_text(c.kube.issue_token(c.cfg.namespace, c.cfg.name, name, uid))
        return c.kube.write_kubeconfig(d / "kubeconfig", c.cfg.namespace, token_file=token)

    def reap_removed(self, present: set[tuple[str, Any]]) -> None:
        """A pod removed from the API at once (force delete, grace 0): kill its containers, no preStop."""
        c = self.c
        with c._lock:
            runtimes = list(c.runtimes.items())
        gone = [rt for n, rt in runtimes if (n, rt.uid) not in present and not rt.terminating]
        for rt in gone:
            if c.pod_uid(rt.name) == rt.uid:
                continue  # listed again meanwhile (a racing create): not gone
            rt.terminating = True
            c.skip_hook_once.add(rt.name)
            threading.Thread(target=self.terminate, args=(rt, 0.0), daemon=True).start()

    def sync_pod(self, pod: Any) -> None:
        c = self.c
        meta = pod["metadata"]
        name = meta["name"]
        with c._lock:
            rt = c.runtimes.get(name)
        if rt is None or rt.uid != meta.get("uid"):
            return
        if meta.get("deletionTimestamp"):
            if not rt.terminating:
                rt.terminating = True
                grace = float(meta.get("deletionGracePeriodSeconds", c.cfg.template.grace_s))
                threading.Thread(target=self.terminate, args=(rt, grace), daemon=True).start()
            return
        if rt.status_stale():
            return  # node loss: the status stays as last reported until the node controller notices
        ready = rt.ready()
        lost = rt.frozen or rt.node_cut
        if (not ready and is_ready(pod) and not lost and rt.containers_running()
                and rt.failing_for() < rt.t.ready_failure_s):
            return  # the probe's failureThreshold is not reached yet (a stopped container counts at once)
        shown = {c.get("name"): c.get("restartCount", 0)
                 for c in (pod.get("status") or {}).get("containerStatuses") or []}
        restarted = any(name in shown and shown[name] != n for name, n in rt.restarts.items())
        if ready != is_ready(pod) or restarted:  # a container restart is posted at once, Ready or not
            status = manifests.ready_status(ready, pod.get("spec"), rt.restarts, rt.init_statuses)
            c.kube.patch_status("Pod", c.cfg.namespace, name, status)

    def terminate(self, rt: PodRuntime, grace: float) -> None:
        c = self.c
        run_hook = rt.name not in c.skip_hook_once
        c.skip_hook_once.discard(rt.name)
        rec = rt.terminate(grace, run_hook=run_hook and grace > 0)
        c.terminations.append(rec)
        c.cut_pods.pop(rt.name, None)
        if c.net is not None:
            c.net.release(rt.box)  # namespace, veth and hosts file of this incarnation
        try:
            c.kube.finalize_pod(c.cfg.namespace, rt.name)
        except Exception as exc:
            log.debug("finalise %s: %s", rt.name, exc)
        with c._lock:
            if c.runtimes.get(rt.name) is rt:
                del c.runtimes[rt.name]
