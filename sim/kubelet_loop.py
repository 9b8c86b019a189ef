"""The kubelets of the emulated cluster: admit pods, report their status, terminate and finalise them.

Role: for every pod incarnation bound to a node, run its pod worker (`sim.podworker`: probes, restarts)
over its runtime (`sim.kubelet.PodRuntime`), and do what the node's kubelet does with the API server,
when its node lets it (`sim.nodes`: a RUNNING kubelet reports; a PARTITIONED one acts locally but neither
sees nor writes the API; a FROZEN or DEAD one does nothing):
- the status: every container's state, readiness and restart count and the pod's Ready condition,
  written when it differs from what the API server holds (so a node back from a partition overwrites
  the node controller's not-Ready);
- a `deletionTimestamp` starts the termination (preStop, SIGTERM, SIGKILL at the grace period); once the
  containers stopped, the kubelet removes the pod object (a kubelet that cannot reach the API server
  removes it when it can again: until then the pod stays Terminating);
- a pod object that is gone while its containers run (force delete) has its containers killed at once
  without preStop -- by its kubelet, so only when that kubelet acts: an incarnation on a lost node runs
  on (or stays frozen) beside its replacement until its node returns; the volume's force detach ends
  only its Memgraph (the agent keeps nothing on that volume and runs on). Kinder than a real kubelet in
  one point: back on its node, a real one terminates such an incarnation with its grace period and
  preStop hooks (the pod it still holds has no deletion grace), this one kills it at once;
- a new incarnation's containers start only once its volumes are attached (`sim.nodeloop`).

Must never: write the API for a node that does not report, finalise a pod whose containers still run,
or start a container whose volume another incarnation holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.backoff import BackoffTimings
from sim.init_containers import InitContainers
from sim.kube.server import KubeEmulator
from sim.kubelet import PodRuntime, TerminationRecord
from sim.loop import Loop
from sim.nodeloop import NodeLifecycle
from sim.nodes import KubeletState
from sim.podworker import PodWorker

log = logging.getLogger(__name__)


@dataclass
class Incarnation:
    runtime: PodRuntime
    worker: PodWorker
    node: str
    admitted: bool = False  # volumes attached, worker started
    terminating: bool = False
    removed: bool = False  # the pod object left the API while the containers ran (force delete)
    detached: bool = False  # its volume was force-detached from its unreachable node (Memgraph killed)
    done: threading.Event = field(default_factory=threading.Event)


class Kubelets:
    """See the module docstring."""

    def __init__(self, kube: KubeEmulator, namespace: str, list_pods: Callable[[], list[Any]],
                 nodes: NodeLifecycle, backoff: BackoffTimings,
                 on_gone: Callable[[PodRuntime], None], skip_hook_once: set[str] | None = None) -> None:
        self.kube, self.ns, self.list_pods, self.nodes = kube, namespace, list_pods, nodes
        self.backoff = backoff
        self.on_gone = on_gone
        self.pods: dict[str, Incarnation] = {}  # uid -> incarnation (several per name after a force delete)
        self.terminations: list[TerminationRecord] = []
        self.skip_hook_once = skip_hook_once if skip_hook_once is not None else set()
        self._lock = threading.RLock()
        self._loop = Loop("kubelets", lambda: self.sync(time.monotonic()))

    def start(self) -> Kubelets:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()
        for inc in self.all():
            inc.worker.stop()

    def bind(self, rt: PodRuntime, node: str) -> Incarnation:
        """A new pod object bound to `node`: its kubelet admits it once its volumes are attached."""
        acts = lambda: self.nodes.node(node).acts  # noqa: E731
        worker = PodWorker(rt.name, list(rt.chart.containers.values()) if rt.t.with_agent
                           else [rt.chart.memgraph], rt, self.backoff, acts=acts)
        inc = Incarnation(rt, worker, node)
        with self._lock:
            self.pods[rt.uid] = inc
        return inc

    def service_account_kubeconfig(self, workdir: Path, account: str, name: str, uid: str) -> Path:
        """The kubelet's projected token for the pod's ServiceAccount, as a token file and a kubeconfig
        that reads it (the agent's KUBECONFIG): the agent is that ServiceAccount, bound to this pod."""
        d = workdir / "serviceaccount" / f"{name}.{uid[:8]}"
        d.mkdir(parents=True, exist_ok=True)
        token = d / "token"
        token.touch(mode=0o600)
        token.write_text(self.kube.issue_token(self.ns, account, name, uid))
        return self.kube.write_kubeconfig(d / "kubeconfig", self.ns, token_file=token)

    def all(self) -> list[Incarnation]:
        with self._lock:
            return list(self.pods.values())

    # ---- the loop -----------------------------------------------------------------------------------

    def sync(self, now: float) -> None:
        objects = {p["metadata"]["uid"]: p for p in self.list_pods()}
        for uid, inc in list(self.pods.items()):
            node = self.nodes.node(inc.node)
            if not inc.admitted:
                self._admit(inc, now)
            if inc.terminating or not node.reports:
                self._finish_if_done(inc, node.reports)
                continue
            pod = objects.get(uid)
            if pod is None:
                self._removed(inc)
            elif pod["metadata"].get("deletionTimestamp"):
                self._terminate(inc, float(pod["metadata"].get("deletionGracePeriodSeconds", 30)))
            elif inc.admitted:
                self._report(inc, pod)
        self._orphans(now)

    def _admit(self, inc: Incarnation, now: float) -> None:
        rt = inc.runtime
        if not self.nodes.node(inc.node).acts or self.nodes.attach_wait(rt.name, rt.uid, now) != 0.0:
            return
        self.nodes.claim(rt.name, rt.uid)
        inc.admitted = True
        threading.Thread(target=self._init_then_start, args=(inc,), name=f"init-{rt.name}",
                         daemon=True).start()

    def _init_then_start(self, inc: Incarnation, start_deadline_s: float = 60.0) -> None:
        """The ordinary init containers first (the chart's reseed, `sim.init_containers`), then the pod
        worker (sidecar, Memgraph). Their terminated states are reported with the pod's status. One that
        does not succeed by the deadline leaves the pod in Init (nothing else starts), as a pod stuck in
        Init:CrashLoopBackOff."""
        rt = inc.runtime
        if rt.t.with_reseed_init:
            init = InitContainers(rt.name, rt.uid, rt.agent_env(), rt.lib_dir, rt.logs, rt.box.start)
            try:
                init.run(time.monotonic() + start_deadline_s)
            except Exception as exc:
                log.warning("kubelet: init containers of %s (%s) failed: %s: %s", rt.name, rt.uid[:8],
                            type(exc).__name__, exc)
                rt.init_statuses = init.statuses()
                return
            rt.init_statuses = init.statuses()
        if not inc.terminating:
            inc.worker.start()

    def _report(self, inc: Incarnation, pod: Any) -> None:
        status = self._status(inc)
        current = pod.get("status") or {}
        if _ready_of(current) != _ready_of(status) or _containers_differ(current, status):
            with contextlib.suppress(Exception):
                if self.kube.get("Pod", self.ns, inc.runtime.name)["metadata"]["uid"] == inc.runtime.uid:
                    self.kube.patch_status("Pod", self.ns, inc.runtime.name, status)

    def _status(self, inc: Incarnation) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ready = inc.admitted and inc.worker.ready()

        def entry(s: Any) -> dict[str, Any]:
            state = ({"running": {"startedAt": now}} if s.running
                     else {"waiting": {"reason": s.waiting_reason}})
            return {"name": s.name, "ready": s.ready, "started": s.started, "restartCount": s.restarts,
                    "image": s.name, "imageID": "", "state": state}

        statuses = inc.worker.status()
        return {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "lastTransitionTime": now}],
            "containerStatuses": [entry(s) for s in statuses if not s.sidecar],
            # the ordinary init containers that ran keep their terminated state, before the sidecars
            "initContainerStatuses": [*inc.runtime.init_statuses, *(entry(s) for s in statuses if s.sidecar)],
        }

    def _terminate(self, inc: Incarnation, grace: float) -> None:
        inc.terminating = True
        run_hook = inc.runtime.name not in self.skip_hook_once
        self.skip_hook_once.discard(inc.runtime.name)

        def run() -> None:
            try:
                rec = inc.runtime.terminate(grace, run_hook=run_hook and grace > 0)
                self.terminations.append(rec)
            finally:
                inc.worker.stop()
                inc.done.set()

        threading.Thread(target=run, name=f"terminate-{inc.runtime.name}", daemon=True).start()

    def _removed(self, inc: Incarnation) -> None:
        """The pod object is gone while its containers run: force deleted. Kill them, no hook."""
        inc.terminating, inc.removed = True, True
        inc.runtime.terminating = True
        inc.worker.stop()
        inc.runtime.kill_all()
        inc.done.set()

    def _finish_if_done(self, inc: Incarnation, reports: bool) -> None:
        """A terminated incarnation: its kubelet removes the object (when it reports), frees the volume."""
        if not inc.done.is_set() or not reports:
            return
        rt = inc.runtime
        if not inc.removed:
            with contextlib.suppress(Exception):
                if self.kube.get("Pod", self.ns, rt.name)["metadata"]["uid"] == rt.uid:
                    self.kube.finalize_pod(self.ns, rt.name)
        with self._lock:
            self.pods.pop(rt.uid, None)
        self.nodes.detached(rt.name, rt.uid)
        self.on_gone(rt)

    def _orphans(self, now: float) -> None:
        """Incarnations whose object left the API while their kubelet could not act: once their node is
        back they are killed (above); meanwhile the attach-detach controller's clock runs, and at the
        force detach their Memgraph loses its volume (killed: its writes would fail, and nothing restarts
        it: the pod worker stops). The detach takes the volume, not the processes: the agent, which keeps
        nothing there, runs on until its kubelet acts again, as the node's processes do in a cluster."""
        names = {p["metadata"]["name"]: p["metadata"]["uid"] for p in self.list_pods()}
        for inc in self.all():
            rt = inc.runtime
            if inc.terminating or inc.detached or self.nodes.node(inc.node).reports:
                continue
            if names.get(rt.name) != rt.uid:
                self.nodes.released(rt.name, rt.uid, now)
                newer = names.get(rt.name)
                if newer and self.nodes.force_detach_due(rt.name, newer, now):
                    log.warning("kubelets: %s (%s) force-detached from its unreachable node; its Memgraph "
                                "is killed, its agent runs on", rt.name, rt.uid[:8])
                    inc.detached = True
                    inc.worker.stop()
                    rt.held.add("memgraph")
                    rt.kill_memgraph()
                    self.nodes.detached(rt.name, rt.uid)

    # ---- faults on kubelets -------------------------------------------------------------------------

    def kubelet_restarted(self, node: str) -> None:
        for inc in self.all():
            if inc.node == node:
                inc.worker.kubelet_restarted()

    def set_kubelet(self, node: str, state: KubeletState) -> None:
        before = self.nodes.node(node).kubelet
        self.nodes.set_kubelet(node, state)
        if before is KubeletState.DEAD and state is KubeletState.RUNNING:
            self.kubelet_restarted(node)


def _ready_of(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _containers_differ(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    def key(s: dict[str, Any]) -> list[tuple[Any, ...]]:
        out = []
        for field_ in ("containerStatuses", "initContainerStatuses"):
            for c in s.get(field_) or []:
                out.append((c.get("name"), c.get("ready"), c.get("started"), c.get("restartCount"),
                            sorted((c.get("state") or {}).keys())))
        return sorted(out)

    return key(current) != key(desired)

