"""The StatefulSet controller of the emulated cluster: one pod object per ordinal, from the API alone.

Role: keep pods `<name>-0..N-1` in the API server as the StatefulSet controller does (reference
kubernetes-and-helm.md B.4): with `OrderedReady` (the chart's policy) a missing pod is created only
when every lower ordinal is Running and Ready; with `Parallel` every missing pod at once. A pod is
replaced only when its object is gone from the API server -- a Terminating pod (deletionTimestamp set)
blocks its replacement until its kubelet has finalised it or it is force deleted, as "A StatefulSet
replacement pod (same name, new UID) is created only after the old one has fully terminated" -- whatever
still runs of the old incarnation on a lost node. Each new pod gets a new IP, is bound to a node
(`sim.nodeloop.NodeLifecycle.schedule`; none schedulable: it waits) and handed to that node's kubelet
(`sim.kubelet_loop.Kubelets.bind`) with its runtime.

Must never: create a pod whose name is still in the API server, or wait without a bound.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sim.loop import Loop

log = logging.getLogger(__name__)


class StatefulSetController:
    """See the module docstring. `create(name, node)` makes the pod object and its runtime."""

    def __init__(self, name: str, replicas: int, parallel: bool, list_pods: Callable[[], list[Any]],
                 schedule: Callable[[str], str | None], create: Callable[[str, str], None],
                 held: set[str] | None = None) -> None:
        self.name, self.replicas, self.parallel = name, replicas, parallel
        self.list_pods, self.schedule, self.create = list_pods, schedule, create
        self.held = held if held is not None else set()  # pods a fault keeps from being re-created for now
        self._creating: set[str] = set()
        self._lock = threading.Lock()
        self._loop = Loop("sts-controller", self.reconcile)

    def start(self) -> StatefulSetController:
        self._loop.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self._loop.stop()
        done = threading.Event()
        for _ in range(int(timeout_s / 0.05)):  # a pod being created in parallel must finish starting first
            with self._lock:
                if not self._creating:
                    break
            done.wait(0.05)

    def creating(self) -> bool:
        with self._lock:
            return bool(self._creating)

    def reconcile(self) -> None:
        existing = {p["metadata"]["name"]: p for p in self.list_pods()}
        for ordinal in range(self.replicas):
            name = f"{self.name}-{ordinal}"
            if name in existing:
                if not self.parallel and not _running_and_ready(existing[name]):
                    return  # OrderedReady: wait for this one before creating the next
                continue
            with self._lock:
                busy = name in self._creating or name in self.held
            if busy:
                if self.parallel:
                    continue
                return
            node = self.schedule(name)
            if node is None:
                return  # Pending: nothing schedulable
            if self.parallel:
                with self._lock:
                    self._creating.add(name)
                threading.Thread(target=self._create, args=(name, node), daemon=True).start()
                continue
            self._create(name, node)
            return

    def _create(self, name: str, node: str) -> None:
        try:
            self.create(name, node)
        except Exception as exc:
            log.warning("pod %s not created: %s: %s", name, type(exc).__name__, exc)
        finally:
            with self._lock:
                self._creating.discard(name)


def _running_and_ready(pod: Any) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
