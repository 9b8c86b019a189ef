"""Kubernetes edge of the coordinator: a pod watch cache, label patches, Events, the desired size.

Role: implement `coordinator.ports.KubePort` over the official `kubernetes` client. Pods come from a
list + watch (resumed from the last resourceVersion, relisted on 410 Gone, resynced periodically), so a
reconcile cycle reads memory, not the API server; every call carries a request timeout.

Must never: block a reconcile cycle on the API server for longer than its timeout, raise out of the
watch thread, or write anything but pod labels, the re-seed stamp (then the deletion of that pod
incarnation, which the planner decides, I4) and Events.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from coordinator.core import datadir
from coordinator.core.model import PodView, pod_ordinal

log = logging.getLogger(__name__)


def pod_view(pod: Any) -> PodView:
    """PodView from a V1Pod."""
    meta, status = pod.metadata, pod.status
    ready = False
    if status is not None and status.conditions:
        ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions)
    labels = tuple(sorted((meta.labels or {}).items()))
    restarts, report = _container_facts(status)
    return PodView(
        name=meta.name,
        ordinal=pod_ordinal(meta.name),
        ip=(status.pod_ip or "") if status is not None else "",
        uid=meta.uid or "",
        ready=ready,
        phase=(status.phase or "") if status is not None else "",
        terminating=meta.deletion_timestamp is not None,
        labels=labels,
        restarts=restarts,
        data=report,
    )


def _container_facts(status: Any) -> tuple[int, datadir.DataReport | None]:
    """(restartCount of the memgraph container, the re-seed init container's report) from a pod status."""
    if status is None:
        return 0, None
    restarts = sum(int(c.restart_count or 0) for c in status.container_statuses or [] if c.name == "memgraph")
    report = None
    for c in status.init_container_statuses or []:
        terminated = c.state.terminated if c.name == datadir.INIT_CONTAINER and c.state is not None else None
        if terminated is not None:
            report = datadir.decode(terminated.message)
    return restarts, report


class KubeOps:
    """Pods of one StatefulSet (watch cache), their labels, Events, and the StatefulSet's size."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        statefulset: str,
        selector: str,
        component: str = "memgraph-ha",
        request_timeout: float = 5.0,
        resync_s: float = 60.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.namespace = namespace
        self.statefulset = statefulset
        self.selector = selector
        self.component = component
        self.timeout = request_timeout
        self.resync_s = resync_s
        self.on_change = on_change
        self._pods: dict[str, PodView] = {}
        self._synced = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._replicas: tuple[float, int | None] = (0.0, None)

    # ---- watch cache --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.timeout + 2)

    def wait_synced(self, timeout_s: float) -> bool:
        return self._synced.wait(timeout_s)

    def list_pods(self) -> list[PodView]:
        """Pods as of the watch cache; a direct list when the cache has not synced yet."""
        if not self._synced.is_set():
            self._relist()
        with self._lock:
            return sorted(self._pods.values(), key=lambda p: p.ordinal)

    def _relist(self) -> str:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=self.selector, _request_timeout=self.timeout
        )
        views = [pod_view(p) for p in pods.items]
        with self._lock:
            self._pods = {v.name: v for v in views}
        self._synced.set()
        return str(pods.metadata.resource_version or "") if pods.metadata else ""

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                rv = self._relist()
                self._notify()
                self._watch_from(rv)
                backoff = 0.5
            except Exception as exc:  # keep the thread alive whatever the API does
                self._synced.clear()
                log.warning("pod watch failed, retrying in %.1fs: %s: %s", backoff, type(exc).__name__, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _watch_from(self, rv: str) -> None:
        deadline = time.monotonic() + self.resync_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            w = watch.Watch()
            timeout = max(1, int(min(self.resync_s, deadline - time.monotonic())))
            try:
                for event in w.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=self.selector,
                    resource_version=rv,
                    timeout_seconds=timeout,
                    allow_watch_bookmarks=True,
                    _request_timeout=(self.timeout, timeout + self.timeout),
                ):
                    if self._stop.is_set():
                        w.stop()
                        return
                    rv = self._apply(event, rv)
            except ApiException as exc:
                if exc.status == 410:
                    log.info("pod watch expired (410 Gone), relisting")
                    return
                raise

    def _apply(self, event: Mapping[str, Any], rv: str) -> str:
        kind, obj = event["type"], event["object"]
        if kind == "BOOKMARK":
            return str(obj["metadata"]["resourceVersion"]) if isinstance(obj, dict) else rv
        if kind == "ERROR":
            raise ApiException(status=int(obj.get("code", 500)) if isinstance(obj, dict) else 500)
        view = pod_view(obj)
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(view.name, None)
            else:
                self._pods[view.name] = view
        self._notify()
        return str(obj.metadata.resource_version or rv)

    def _notify(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                log.exception("pod change callback failed")

    # ---- reads and writes ---------------------------------------------------------------------

    def expected_replicas(self) -> int | None:
        """spec.replicas of the StatefulSet (cached 10 s); None when it cannot be read."""
        at, value = self._replicas
        if value is not None and time.monotonic() - at < 10.0:
            return value
        try:
            sts = self.apps.read_namespaced_stateful_set(
                self.statefulset, self.namespace, _request_timeout=self.timeout
            )
            value = int(sts.spec.replicas if sts.spec.replicas is not None else 1)
        except Exception as exc:
            log.warning("cannot read statefulset %s: %s: %s", self.statefulset, type(exc).__name__, exc)
            return value
        self._replicas = (time.monotonic(), value)
        return value

    def patch_labels(self, pod: str, labels: Mapping[str, str | None]) -> None:
        """Set or (value None) remove labels on a pod: a merge patch of metadata.labels."""
        self.core.patch_namespaced_pod(
            pod, self.namespace, {"metadata": {"labels": dict(labels)}}, _request_timeout=self.timeout
        )
        self._patch_cache(pod, labels)

    def _patch_cache(self, pod: str, labels: Mapping[str, str | None]) -> None:
        with self._lock:
            view = self._pods.get(pod)
            if view is None:
                return
            merged = dict(view.labels)
            for k, v in labels.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            self._pods[pod] = PodView(**{**view.__dict__, "labels": tuple(sorted(merged.items()))})

    def reseed_pod(self, pod: str, uid: str, generation: int) -> None:
        """Stamp the pod with the generation its re-seed acts for, then delete that incarnation only
        (precondition on its uid): the StatefulSet re-creates it and its init container archives its files."""
        body = {"metadata": {"annotations": {datadir.RESEED_ANNOTATION: str(generation)}}}
        self.core.patch_namespaced_pod(pod, self.namespace, body, _request_timeout=self.timeout)
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
        self.core.delete_namespaced_pod(pod, self.namespace, body=options, _request_timeout=self.timeout)

    def emit_event(self, reason: str, message: str, pod: str = "", warning: bool = False) -> None:
        """A core/v1 Event on the pod (or the StatefulSet when no pod is named)."""
        now = dt.datetime.now(dt.UTC)
        kind, name = ("Pod", pod) if pod else ("StatefulSet", self.statefulset)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{name}.{uuid.uuid4().hex[:12]}", namespace=self.namespace),
            involved_object=client.V1ObjectReference(
                kind=kind,
                name=name,
                namespace=self.namespace,
                api_version="v1" if pod else "apps/v1",
            ),
            reason=reason,
            message=message[:1000],
            type="Warning" if warning else "Normal",
            source=client.V1EventSource(component=self.component),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        self.core.create_namespaced_event(self.namespace, body, _request_timeout=self.timeout)
