"""EndpointSlices as the control plane computes them, and as kube-proxy and CoreDNS see them: late.

Role: the EndpointSlice controller's rule for one pod in one Service (Kubernetes `podToEndpoint`:
`serving` = the pod's Ready condition, `terminating` = deletionTimestamp set, `ready` =
publishNotReadyAddresses or (serving and not terminating); a pod without an IP is not an endpoint),
computed from the Kubernetes emulator's store every `poll_s`, and `view(service)`: the endpoints as
they were `delay_s` ago (default 1 s), which is what a consumer of the EndpointSlice watch acts on after
the controller, the API server, the watch and kube-proxy's own sync period (reference
kubernetes-and-helm.md B.2: terminating endpoints are marked `ready: false` at once, so Services stop
routing new traffic to them -- after this propagation). Two readers: `sim.kubeproxy` (which endpoint a
NEW connection goes to, KEP-1669: ready endpoints, else serving terminating ones) and `sim.dns` (which
names CoreDNS answers: endpoints whose `ready` is true).

Must never: show a consumer a change before `delay_s` has passed, or write to the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.poller import Poller

log = logging.getLogger(__name__)

DEFAULT_DELAY_S = 1.0


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target: int | str  # a number, or the name of a container port


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    cluster_ip: str | None  # None: headless (clusterIP None)
    ports: tuple[ServicePort, ...]
    selector: tuple[tuple[str, str], ...]
    publish_not_ready: bool = False

    @property
    def headless(self) -> bool:
        return self.cluster_ip is None


@dataclass(frozen=True)
class Endpoint:
    """One pod in one Service's EndpointSlice (conditions as the controller writes them)."""

    pod: str
    uid: str
    ip: str
    ready: bool
    serving: bool
    terminating: bool
    hostname: str = ""  # spec.hostname when spec.subdomain names this Service (per-pod DNS)
    ports: tuple[tuple[str, int], ...] = ()  # container ports by name

    def port_for(self, target: int | str) -> int | None:
        if isinstance(target, int):
            return target
        return dict(self.ports).get(target)


def service_spec(obj: Mapping[str, Any]) -> ServiceSpec:
    spec = obj.get("spec") or {}
    cip = spec.get("clusterIP")
    ports = tuple(
        ServicePort(str(p.get("name", "")), int(p["port"]), _target(p.get("targetPort", p["port"])))
        for p in spec.get("ports") or []
    )
    return ServiceSpec(
        str(obj["metadata"]["name"]),
        None if cip in (None, "", "None") else str(cip),
        ports,
        tuple(sorted((spec.get("selector") or {}).items())),
        bool(spec.get("publishNotReadyAddresses", False)),
    )


def _target(value: Any) -> int | str:
    return int(value) if isinstance(value, int) or str(value).isdigit() else str(value)


def _ready(pod: Mapping[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _container_ports(pod: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    spec = pod.get("spec") or {}
    out = []
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for p in c.get("ports") or []:
            if p.get("name"):
                out.append((str(p["name"]), int(p["containerPort"])))
    return tuple(out)


def endpoints_for(svc: ServiceSpec, pods: list[Mapping[str, Any]]) -> tuple[Endpoint, ...]:
    """The Service's endpoints: every selected pod with an IP (Kubernetes `podToEndpoint`)."""
    out = []
    for pod in pods:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        if not svc.selector or any(labels.get(k) != v for k, v in svc.selector):
            continue
        status = pod.get("status") or {}
        ip = status.get("podIP")
        if not ip or status.get("phase") in ("Succeeded", "Failed"):
            continue
        serving = _ready(pod)
        terminating = bool(meta.get("deletionTimestamp"))
        spec = pod.get("spec") or {}
        hostname = str(spec.get("hostname") or "") if spec.get("subdomain") == svc.name else ""
        out.append(Endpoint(str(meta["name"]), str(meta.get("uid", "")), str(ip),
                            svc.publish_not_ready or (serving and not terminating), serving, terminating,
                            hostname, _container_ports(pod)))
    return tuple(sorted(out, key=lambda e: e.pod))


def proxy_candidates(endpoints: tuple[Endpoint, ...]) -> list[Endpoint]:
    """Where kube-proxy sends a NEW connection (KEP-1669, GA in 1.28): the ready endpoints that are not
    terminating; if there are none, the serving endpoints that are terminating; else nowhere."""
    ready = [e for e in endpoints if e.ready and not e.terminating]
    if ready:
        return ready
    return [e for e in endpoints if e.serving and e.terminating]


def dns_published(endpoints: tuple[Endpoint, ...]) -> list[Endpoint]:
    """Endpoints CoreDNS answers for (its `endpointsliceReady`: the `ready` condition)."""
    return [e for e in endpoints if e.ready]


@dataclass
class _History:
    entries: list[tuple[float, tuple[Endpoint, ...]]] = field(default_factory=list)


class EndpointsController(Poller):
    """Computes every Service's endpoints from the store and serves them `delay_s` late."""

    def __init__(self, list_pods: Callable[[], list[Any]], list_services: Callable[[], list[Any]],
                 revision: Callable[[], int], delay_s: float = DEFAULT_DELAY_S,
                 clock: Callable[[], float] = time.monotonic, poll_s: float = 0.05) -> None:
        self._list_pods, self._list_services, self._revision = list_pods, list_services, revision
        self.delay_s, self._clock = delay_s, clock
        self.poll_s, self.poll_name = poll_s, "endpointslice-controller"
        self._lock = threading.Lock()
        self._services: dict[str, ServiceSpec] = {}
        self._history: dict[str, _History] = {}
        self._seen_rev = -1
        self.changes = 0  # bumped whenever a recorded endpoint set changes

    def start(self) -> EndpointsController:
        self.observe()
        super().start()
        return self

    def poll_once(self) -> None:
        self.observe()

    def observe(self) -> None:
        """Recompute (when the store changed) and record the endpoint sets with the current time."""
        rev = self._revision()
        if rev == self._seen_rev:
            return
        services = {s.name: s for s in (service_spec(o) for o in self._list_services())}
        pods = self._list_pods()
        now = self._clock()
        with self._lock:
            self._seen_rev = rev
            self._services = services
            for name, svc in services.items():
                eps = endpoints_for(svc, pods)
                hist = self._history.setdefault(name, _History())
                if not hist.entries or hist.entries[-1][1] != eps:
                    hist.entries.append((now, eps))
                    self.changes += 1
                self._prune(hist, now)

    def _prune(self, hist: _History, now: float) -> None:
        cutoff = now - self.delay_s
        while len(hist.entries) >= 2 and hist.entries[1][0] <= cutoff:
            hist.entries.pop(0)

    def services(self) -> dict[str, ServiceSpec]:
        with self._lock:
            return dict(self._services)

    def current(self, service: str) -> tuple[Endpoint, ...]:
        """The endpoints as the controller computed them last (no delay; for tests and evidence)."""
        with self._lock:
            hist = self._history.get(service)
            return hist.entries[-1][1] if hist and hist.entries else ()

    def view(self, service: str) -> tuple[Endpoint, ...]:
        """The endpoints as consumers see them now: the newest set recorded at least `delay_s` ago."""
        cutoff = self._clock() - self.delay_s
        with self._lock:
            hist = self._history.get(service)
            seen: tuple[Endpoint, ...] = ()
            for t, eps in hist.entries if hist else []:
                if t > cutoff:
                    break
                seen = eps
            return seen
