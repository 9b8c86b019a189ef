"""Cluster DNS as CoreDNS serves it, delivered through hosts files.

Role: render what a pod can resolve -- `localhost`; its own `<hostname>.<subdomain>.<ns>.svc.<domain>`
(the kubelet writes that into every pod's /etc/hosts); `kubernetes.default.svc` (the API server);
every ClusterIP Service name (`<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, `<svc>.<ns>.svc.<domain>`) to
its cluster IP; and, for each headless Service, `<hostname>.<svc>` and `<hostname>.<svc>.<ns>.svc.<domain>`
for every endpoint CoreDNS answers for (`endpoints.dns_published`: `ready`, which is true for every
selected pod with publishNotReadyAddresses and false for a terminating pod without it: seed 001
incident 3) -- taken from the *delayed* EndpointSlice view, so a name appears and disappears after the
same propagation delay as kube-proxy's routes -- and keep a set of hosts files in step: every pod
namespace's `/etc/netns/<ns>/hosts` (rewritten in place; `ip netns exec` bind-mounted it) or, without
namespaces, the one file the Memgraph emulators read with `--hosts-file`.

Not modelled: CoreDNS's cache (up to the record TTL, 5 s by default) on top of the delay.

Must never: write a file it was not given, or publish a name CoreDNS would not answer.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from sim.endpoints import EndpointsController, dns_published
from sim.netns import write_in_place
from sim.poller import Poller

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwnName:
    """The pod's own entry the kubelet writes (None for the shared file of the loopback mode)."""

    ip: str
    hostname: str
    subdomain: str


class ClusterDNS(Poller):
    """Keeps hosts files equal to what CoreDNS would answer now; see the module docstring."""

    def __init__(self, controller: EndpointsController, namespace: str, api_ip: str,
                 domain: str = "cluster.local", poll_s: float = 0.05) -> None:
        self.controller, self.namespace, self.api_ip, self.domain = controller, namespace, api_ip, domain
        self.poll_s, self.poll_name = poll_s, "cluster-dns"
        self._lock = threading.Lock()
        self._targets: dict[Path, OwnName | None] = {}
        self._written: dict[Path, str] = {}

    def fqdn(self, name: str, service: str) -> str:
        return f"{name}.{service}.{self.namespace}.svc.{self.domain}"

    def render(self, own: OwnName | None = None) -> str:
        ns, dom = self.namespace, self.domain
        lines = ["# cluster DNS of the emulated cluster (sim.dns): what CoreDNS answers now",
                 "127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        if own is not None:
            fq = self.fqdn(own.hostname, own.subdomain) if own.subdomain else own.hostname
            lines.append(f"{own.ip} {fq} {own.hostname}")
        lines.append(f"{self.api_ip} kubernetes kubernetes.default kubernetes.default.svc "
                     f"kubernetes.default.svc.{dom}")
        for svc in sorted(self.controller.services().values(), key=lambda s: s.name):
            if svc.cluster_ip is not None:
                n = svc.name
                lines.append(f"{svc.cluster_ip} {n} {n}.{ns} {n}.{ns}.svc {n}.{ns}.svc.{dom}")
                continue
            for ep in dns_published(self.controller.view(svc.name)):
                if ep.hostname:
                    lines.append(f"{ep.ip} {ep.hostname}.{svc.name} {self.fqdn(ep.hostname, svc.name)}")
        return "\n".join(lines) + "\n"

    def resolve(self, name: str, own: OwnName | None = None) -> str | None:
        """The address `name` resolves to right now (first match, as libc reads a hosts file)."""
        for line in self.render(own).splitlines():
            fields = line.split("#", 1)[0].split()
            if name in fields[1:]:
                return fields[0]
        return None

    # ---- files ----------------------------------------------------------------------------------

    def add_target(self, path: Path, own: OwnName | None = None) -> None:
        """Keep `path` up to date from now on (written at once)."""
        with self._lock:
            self._targets[path] = own
        self.refresh()

    def remove_target(self, path: Path) -> None:
        with self._lock:
            self._targets.pop(path, None)
            self._written.pop(path, None)

    def refresh(self) -> None:
        """Rewrite every target whose content changed."""
        with self._lock:
            targets = dict(self._targets)
        for path, own in targets.items():
            text = self.render(own)
            if self._written.get(path) == text:
                continue
            try:
                write_in_place(path, text)
            except OSError as exc:  # a pod namespace removed meanwhile: its file went with it
                log.debug("event=hosts_write_failed path=%s error=%s", path, exc)
                continue
            with self._lock:
                if path in self._targets:
                    self._written[path] = text

    def poll_once(self) -> None:
        self.refresh()
