"""Loopback addressing for the emulated cluster: one 127.x.y.z address per pod, and DNS by hosts file.

Role: hand out pod IPs from a /24 inside 127.0.0.0/8 chosen per cluster (so two clusters on one machine
do not collide), never reusing an address within a cluster (a recreated pod gets a new IP, as in
Kubernetes), pick the cluster-wide ports (Bolt, replication, agent) free on those addresses, and keep a
hosts file mapping `<pod>.<headless service>` (and its FQDN) to the current IP, which the Memgraph
emulator re-reads on every connect.

Must never: hand out an address outside 127.0.0.0/8 or the same address twice.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

from sim.proc import check_loopback


class Network:
    def __init__(self, hosts_file: Path, headless: str, namespace: str, seed: int | None = None) -> None:
        rng = random.Random(seed)
        self._prefix = f"127.{rng.randint(10, 250)}.{rng.randint(1, 250)}"
        self._next = 1
        self._lock = threading.Lock()
        self.hosts_file = hosts_file
        self.headless = headless
        self.namespace = namespace
        self._names: dict[str, str] = {}
        self._write()

    def allocate_ip(self) -> str:
        with self._lock:
            if self._next > 254:
                raise RuntimeError("address block exhausted (254 pod incarnations)")
            ip = check_loopback(f"{self._prefix}.{self._next}")
            self._next += 1
            return ip

    def pick_ports(self, count: int, probe_ips: int = 8) -> list[int]:
        """`count` distinct ports free on the first `probe_ips` addresses of this block."""
        ips = [f"{self._prefix}.{i}" for i in range(1, probe_ips + 1)]
        ports: list[int] = []
        for _ in range(200):
            with socket.socket() as s:
                s.bind((ips[0], 0))
                port = int(s.getsockname()[1])
            if port in ports or not all(_free(ip, port) for ip in ips):
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
        raise RuntimeError("could not find free ports on the pod address block")

    def set_pod(self, pod: str, ip: str | None) -> None:
        """Point the pod's DNS names at `ip` (None removes them, as when a pod is gone)."""
        with self._lock:
            if ip is None:
                self._names.pop(pod, None)
            else:
                self._names[pod] = ip
            self._write()

    def fqdn(self, pod: str) -> str:
        return f"{pod}.{self.headless}.{self.namespace}.svc.cluster.local"

    def _write(self) -> None:
        lines = ["# written by sim.network: pod DNS of the emulated cluster"]
        for pod, ip in sorted(self._names.items()):
            lines.append(f"{ip} {pod}.{self.headless} {self.fqdn(pod)}")
        tmp = self.hosts_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.hosts_file)


def _free(ip: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True
