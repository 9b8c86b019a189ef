"""The network side of one emulated cluster: the bed, Service addresses, kube-proxy and cluster DNS.

Role: what `sim.cluster.SimCluster` needs from the network, in one object -- open the run's bed
(`sim.bed`: namespaces or loopback, the reaper), give every ClusterIP Service of the manifests an
address (as the API server's allocator would), run the EndpointSlice controller (`sim.endpoints`, with
the propagation delay), kube-proxy (`sim.kubeproxy`) and cluster DNS (`sim.dns`), make and release one
pod sandbox per pod incarnation (with its hosts file kept in step with DNS), and answer where a client
connection went. Records every NEW connection of the write Service routed while two pods were
candidates (`dual_main_seen`).

Must never: leave a namespace, link, hosts file or listener after `stop()`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.bed import Bed
from sim.dns import ClusterDNS, OwnName
from sim.endpoints import Endpoint, EndpointsController
from sim.kubeproxy import ServiceProxy
from sim.sandbox import PodSandbox

log = logging.getLogger(__name__)


class ClusterNetwork:
    def __init__(self, workdir: Path, namespace: str, write_service: str, headless: str,
                 seed: int | None, mode: str, delay_s: float) -> None:
        self.namespace, self.write_service, self.headless = namespace, write_service, headless
        self.rng = random.Random(seed)
        self.bed = Bed.open(workdir, seed, mode)
        self.delay_s = delay_s
        self.services: dict[str, tuple[str, int]] = {}  # Service name -> (cluster IP, first port)
        self.endpoints: EndpointsController | None = None
        self.proxy: ServiceProxy | None = None
        self.dns: ClusterDNS | None = None
        self.dual_main_seen: list[tuple[float, list[str]]] = []

    def assign_cluster_ips(self, objects: list[dict[str, Any]]) -> None:
        """Give every ClusterIP Service among `objects` an address of its own (in place)."""
        for obj in objects:
            if obj["kind"] == "Service" and obj["spec"].get("clusterIP") != "None":
                obj["spec"]["clusterIP"] = self.bed.allocate_vip()
                self.services[obj["metadata"]["name"]] = (obj["spec"]["clusterIP"],
                                                          int(obj["spec"]["ports"][0]["port"]))

    def start(self, list_pods: Callable[[], list[Any]], list_services: Callable[[], list[Any]],
              revision: Callable[[], int]) -> None:
        """Start the EndpointSlice controller, kube-proxy on every Service address, and DNS."""
        self.endpoints = EndpointsController(list_pods, list_services, revision, self.delay_s).start()
        self.proxy = ServiceProxy(self.endpoints, random.Random(self.rng.random()), on_pick=self._on_pick)
        self.proxy.sync()
        self.dns = ClusterDNS(self.endpoints, self.namespace, self.bed.api_host).start()
        if not self.bed.namespaced:
            self.dns.add_target(self.bed.hosts_file)  # the file the emulators read with --hosts-file

    def stop(self) -> None:
        for part in (self.proxy, self.dns, self.endpoints):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()

    def close(self) -> None:
        """Remove every object of the run (after the pods' processes were stopped)."""
        self.stop()
        self.bed.close()

    # ---- pods -----------------------------------------------------------------------------------

    def new_pod(self, name: str) -> PodSandbox:
        """A sandbox for a new incarnation of `name`; its hosts file is written before anything runs."""
        box = self.bed.new_pod(name)
        if box.net is not None and self.dns is not None:
            self.dns.add_target(box.net.hosts_file, OwnName(box.ip, name, self.headless))
        return box

    def release(self, box: PodSandbox) -> None:
        if self.dns is not None and box.net is not None:
            self.dns.remove_target(box.net.hosts_file)
        try:
            self.bed.release_pod(box)
        except Exception as exc:
            log.warning("event=sandbox_not_released pod=%s error=%s detail=%s", box.pod,
                        type(exc).__name__, exc)

    # ---- clients --------------------------------------------------------------------------------

    def service(self, name: str) -> tuple[str, int] | None:
        return self.services.get(name)

    def backend_of(self, client_port: int) -> str | None:
        """`pod/uid` a client connection from `client_port` reached through a Service (None: unknown)."""
        conn = self.proxy.backend_of(client_port) if self.proxy is not None else None
        return f"{conn.backend_pod}/{conn.backend_uid}" if conn is not None and conn.backend_pod else None

    def _on_pick(self, service: str, candidates: list[Endpoint], chosen: Endpoint) -> None:
        if service == self.write_service and len(candidates) > 1:
            self.dual_main_seen.append((time.monotonic(), [e.pod for e in candidates]))
