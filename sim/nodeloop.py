"""The control plane's side of nodes: the node lifecycle controller, the scheduler, the attach-detach
controller, applied to the Kubernetes API emulator.

Role: run `sim.nodes.NodeController` on the real clock (its time scale applied) and apply what it decides
to the pods in the API store, as kube-controller-manager does: a node declared unreachable has its pods
marked not Ready (`MarkPodsNotReady`: the pod's Ready condition False; the node's own Ready is Unknown),
and once the `node.kubernetes.io/unreachable` toleration (300 s) has run out its pods are deleted
gracefully -- they stay Terminating, since only their kubelet finalises them (or a force delete). Bind
new pods to a node (the chart's `haAgent.podAntiAffinity: preferred`: the reachable node with the fewest
pods of the StatefulSet, then by name); the cluster has one node per replica and one spare. Hold a pod's
volumes for the incarnation that has them until it is gone, or until the attach-detach controller
force-detaches them 6 minutes after that incarnation was removed from the API (its node unreachable):
`attach_wait` says how long a new incarnation still waits for them.

Must never: change a pod's status while its node's kubelet reports (the kubelet owns it), remove a pod
object (only delete it gracefully), or let two incarnations hold the same volume.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.kube.server import KubeEmulator
from sim.loop import Loop
from sim.nodes import KubeletState, Node, NodeController, NodeEvent, NodeTimings

log = logging.getLogger(__name__)


@dataclass
class VolumeHold:
    holder_uid: str
    released_at: float | None = None  # the holder's pod object left the API (force delete): detach clock


class NodeLifecycle:
    """See the module docstring. `start()` runs the controller on a thread; `stop()` ends it."""

    def __init__(self, kube: KubeEmulator, namespace: str, list_pods: Callable[[], list[Any]],
                 node_names: list[str], timings: NodeTimings, seed: int | None = None) -> None:
        self.kube, self.ns, self.list_pods = kube, namespace, list_pods
        self.timings = timings
        self.ctl = NodeController(timings, time.monotonic(), random.Random(seed))
        for name in node_names:
            self.ctl.add(name, time.monotonic())
        self.volumes: dict[str, VolumeHold] = {}  # pod name (its claims) -> the incarnation holding them
        # pods bound by `schedule` whose object may not be in the API yet (kube-scheduler's "assumed" pods:
        # with Parallel pod management the next pod is scheduled before the previous one's object exists)
        self._assumed: dict[str, str] = {}
        self.events: list[tuple[float, str, NodeEvent]] = []
        self._lock = threading.RLock()
        self._loop = Loop("node-lifecycle", lambda: self.tick(time.monotonic()))

    def start(self) -> NodeLifecycle:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()

    def tick(self, now: float) -> None:
        with self._lock:
            events = self.ctl.tick(now)
        for node, event in events:
            self.events.append((now, node, event))
            log.info("node lifecycle: %s %s", node, event.value)
            if event is NodeEvent.UNREACHABLE:
                self._mark_pods_not_ready(node)
            elif event is NodeEvent.EVICT:
                self._evict(node)

    def _pods_on(self, node: str) -> list[Any]:
        return [p for p in self.list_pods() if (p.get("spec") or {}).get("nodeName") == node]

    def _mark_pods_not_ready(self, node: str) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for pod in self._pods_on(node):
            conds = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
            for c in conds:
                if c.get("type") == "Ready" and c.get("status") != "False":
                    c.update(status="False", lastTransitionTime=now)
            with contextlib.suppress(Exception):
                self.kube.patch_status("Pod", self.ns, pod["metadata"]["name"], {"conditions": conds})

    def _evict(self, node: str) -> None:
        for pod in self._pods_on(node):
            if not pod["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(Exception):
                    self.kube.delete("Pod", self.ns, pod["metadata"]["name"])

    # ---- nodes ------------------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        with self._lock:
            return self.ctl.nodes[name]

    def set_kubelet(self, node: str, state: KubeletState) -> None:
        with self._lock:
            self.ctl.set_kubelet(node, state, time.monotonic())

    def schedule(self, pod: str) -> str | None:
        """The node a new pod is bound to (None: nothing schedulable, the pod stays Pending)."""
        with self._lock:
            candidates = self.ctl.schedulable()
        if not candidates:
            return None
        load = {n: 0 for n in candidates}
        with self._lock:
            where = dict(self._assumed)
        where.update({p["metadata"]["name"]: (p.get("spec") or {}).get("nodeName") for p in self.list_pods()})
        for name, n in where.items():
            if n in load and name != pod:
                load[n] += 1
        chosen = min(candidates, key=lambda n: (load[n], n))
        with self._lock:
            self._assumed[pod] = chosen
        return chosen

    # ---- volumes ----------------------------------------------------------------------------------

    def claim(self, pod: str, uid: str) -> None:
        with self._lock:
            self.volumes[pod] = VolumeHold(uid)

    def released(self, pod: str, uid: str, now: float | None = None) -> None:
        """The incarnation `uid` left the API while its kubelet could not finish it (force delete)."""
        with self._lock:
            hold = self.volumes.get(pod)
            if hold is not None and hold.holder_uid == uid and hold.released_at is None:
                hold.released_at = time.monotonic() if now is None else now

    def detached(self, pod: str, uid: str) -> None:
        """The incarnation `uid` is gone for good: its volumes are free."""
        with self._lock:
            hold = self.volumes.get(pod)
            if hold is not None and hold.holder_uid == uid:
                del self.volumes[pod]

    def attach_wait(self, pod: str, uid: str, now: float | None = None) -> float | None:
        """How long incarnation `uid` of `pod` still waits for its volumes: 0 when free or its own; the
        seconds left until the force detach; None while the holder is still in the API (no detach yet)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hold = self.volumes.get(pod)
            if hold is None or hold.holder_uid == uid:
                return 0.0
            if hold.released_at is None:
                return None
            return max(0.0, hold.released_at + self.timings.force_detach_s - now)

    def force_detach_due(self, pod: str, uid: str, now: float | None = None) -> bool:
        wait = self.attach_wait(pod, uid, now)
        return wait is not None and wait <= 0.0

    def kubelet_states(self) -> dict[str, KubeletState]:
        with self._lock:
            return {n: node.kubelet for n, node in self.ctl.nodes.items()}
