"""The leader's pod view, with the deletions it learned from a quorum read before its pod watch shows them.

Role: wrap the coordinator's `KubePort` so that a pod incarnation the leader has read from the API server
as terminating (a hand-over request of that pod's agent, agent/handover.py, or a leading MAIN's own
preStop) counts as terminating in every later view -- the planner's and the switchover's -- even while
the pod watch still shows the pod as it was (a lagging watch cache). Without it, a leader whose watch is
late registers the departing pod as a replica of the new MAIN right after the hand-over; its re-created
incarnation then has a new address, and the DROP REPLICA of the old, silent one holds the MAIN's
replication lock, and its commits, for seconds (reference kubernetes-and-helm.md, memgraph#1526;
measured 1.7-2.4 s of write stall per switchover on the bench's hook-only phase before this).

An entry lasts until the view itself shows that incarnation terminating, another incarnation under
the name, or no such pod: then the watch has caught up. A deletion is never undone in Kubernetes, so an
entry can only be early, never wrong.

Must never: mark a pod terminating that was not read so, or touch any other incarnation of its name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import replace

from coordinator.core.model import PodView
from coordinator.edge.logs import log_event
from coordinator.ports import KubePort

log = logging.getLogger(__name__)


class KnownDeletions:
    """A `KubePort` that adds the known deletions to `inner`'s pod list; everything else is `inner`'s."""

    def __init__(self, inner: KubePort) -> None:
        self.inner = inner
        self._uids: dict[str, str] = {}  # pod name -> the incarnation read as terminating
        self._lock = threading.Lock()

    def note(self, pod: str, uid: str) -> None:
        with self._lock:
            new = self._uids.get(pod) != uid
            self._uids[pod] = uid
        if new:
            log_event(log, "pod known to be terminating ahead of the pod watch", pod=pod, uid=uid)

    def list_pods(self) -> list[PodView]:
        pods = self.inner.list_pods()
        with self._lock:
            if not self._uids:
                return pods
            listed = {p.name for p in pods}
            for name in [n for n in self._uids if n not in listed]:
                del self._uids[name]
            out: list[PodView] = []
            for p in pods:
                uid = self._uids.get(p.name)
                if uid is not None and (p.uid != uid or p.terminating):
                    del self._uids[p.name]  # the view caught up, or shows another incarnation
                elif uid is not None:
                    p = replace(p, terminating=True)
                out.append(p)
            return out

    def expected_replicas(self) -> int | None:
        return self.inner.expected_replicas()

    def patch_labels(self, pod: str, labels: Mapping[str, str | None]) -> None:
        self.inner.patch_labels(pod, labels)

    def emit_event(self, reason: str, message: str, pod: str = "", warning: bool = False) -> None:
        self.inner.emit_event(reason, message, pod, warning)

    def reseed_pod(self, pod: str, uid: str, generation: int) -> None:
        self.inner.reseed_pod(pod, uid, generation)
