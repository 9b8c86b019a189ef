"""The test bed's network for one run: pods in network namespaces, or on loopback where that is refused.

Role: open a run (`sim.runlease`: id and locks; `sim.reaper`: the watchdog, started before any object
exists; a sweep of stale runs first), choose the mode -- `netns` when this process may make network
namespaces (root, `ip netns` works; `sim.netns`), else `loopback` with one notice line saying why --
and hand the cluster what differs between the modes: the API server's address (the bridge, or
127.0.0.1), the cluster's ports (Memgraph's and the chart's real ones inside namespaces; free ports on
a per-run 127.x block on loopback), Service addresses, and one `PodSandbox` per pod incarnation with a
new address each time. `close()` removes every object of the run and stops the reaper.

Must never: create a network object before the reaper runs, or fall back to loopback silently.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from pathlib import Path

from sim import netns, partition
from sim.network import Network
from sim.reaper import Reaper, sweep_stale
from sim.runlease import RunLease, new_run
from sim.sandbox import ADMIN_PORT, PodSandbox

log = logging.getLogger(__name__)

MODES = ("auto", "netns", "loopback")
NETNS_PORTS = {"bolt": 7687, "replication": 10000, "agent": 8080}  # as the chart and Memgraph
API_PORT = 6443
_NOTICE_SHOWN: list[str] = []


class Bed:
    """See the module docstring. Use `Bed.open(...)`, then `close()` (also on failure)."""

    def __init__(self, lease: RunLease, mode: str, reason: str | None, workdir: Path,
                 seed: int | None) -> None:
        self.lease, self.mode, self.reason = lease, mode, reason
        self.run_id = lease.run_id
        self.reaper: Reaper | None = None
        self.net: netns.RunNet | None = None
        self.loop: Network | None = None
        self.hosts_file = workdir / "hosts"
        self._reaper_log = workdir / "reaper.log"
        self._seed = seed
        self.boxes: dict[str, PodSandbox] = {}
        self.ports: dict[str, int] = {}
        self.node_ip = ""  # the nodes' own address on the pod network: where kubelet probes come from

    @classmethod
    def open(cls, workdir: Path, seed: int | None = None, network: str = "auto") -> Bed:
        if network not in MODES:
            raise ValueError(f"network {network!r} not in {MODES}")
        reason = netns.probe() if network != "loopback" else "loopback requested"
        if network == "netns" and reason is not None:
            raise netns.NetnsError(f"network namespaces were required but cannot be made: {reason}")
        with contextlib.suppress(Exception):
            sweep_stale(with_network=reason is None)
        lease = new_run()
        log.info("event=run_open run=%s mode=%s", lease.run_id, "netns" if reason is None else "loopback")
        bed = cls(lease, "netns" if reason is None else "loopback", reason, workdir, seed)
        try:
            bed._setup()
        except BaseException:
            bed.close()
            raise
        return bed

    def _setup(self) -> None:
        if self.mode == "netns":
            self.lease.take_subnet(netns.addresses_in_use())
            self.reaper = Reaper.start(self.lease, with_network=True, log_path=self._reaper_log)
            self.net = netns.RunNet(self.lease)
            self.net.up()
            self.node_ip = self.net.allocate_vip()
            self.ports = dict(NETNS_PORTS)
            return
        self.reaper = Reaper.start(self.lease, with_network=False, log_path=self._reaper_log)
        if self.reason != "loopback requested" and self.reason not in _NOTICE_SHOWN:
            _NOTICE_SHOWN.append(self.reason or "")
            log.warning("network=loopback: network namespaces unavailable (%s); pods share loopback and "
                        "partitions cannot be made", self.reason)
        self.loop = Network(self.hosts_file, "unused", "unused", self._seed)
        bolt, repl, agent = self.loop.pick_ports(3)
        self.ports = {"bolt": bolt, "replication": repl, "agent": agent}

    # ---- addresses --------------------------------------------------------------------------------

    @property
    def namespaced(self) -> bool:
        return self.net is not None

    @property
    def api_host(self) -> str:
        return self.net.bridge_ip if self.net is not None else "127.0.0.1"

    @property
    def api_port(self) -> int:
        return API_PORT if self.net is not None else 0

    def allocate_vip(self) -> str:
        if self.net is not None:
            return self.net.allocate_vip()
        assert self.loop is not None
        return self.loop.allocate_ip()

    def new_pod(self, pod: str) -> PodSandbox:
        """The sandbox of a new incarnation of `pod` (a new address; with namespaces a new namespace)."""
        if self.net is not None:
            pnet = self.net.add_pod(pod)
            box = PodSandbox(pod, pnet.ip, self.run_id, pnet, probe_source=self.node_ip)
        else:
            assert self.loop is not None
            box = PodSandbox(pod, self.loop.allocate_ip(), self.run_id)
        self.boxes[box.ip] = box
        return box

    def release_pod(self, box: PodSandbox) -> None:
        """The incarnation is over: its namespace (and anything still inside) goes."""
        self.boxes.pop(box.ip, None)
        if self.net is not None and box.net is not None:
            self.net.remove_pod(box.net)

    def topology(self, api_port: int) -> partition.Topology:
        if self.net is None:
            raise partition.Unsupported(f"no network namespaces ({self.reason})")
        hosts = self.net.network
        return partition.Topology(self.net.bridge_ip, str(hosts.network_address + netns.FIRST_POD_HOST),
                                  str(hosts.broadcast_address - 1), api_port, ADMIN_PORT, self.node_ip)

    def in_run(self, host: str) -> bool:
        """True for an address of this run (its /24, or its loopback block)."""
        if self.net is not None:
            return ipaddress.ip_address(host) in self.net.network
        return ipaddress.ip_address(host).is_loopback

    def summary(self) -> str:
        if self.net is not None:
            return (f"network=netns namespaces={self.net.made} run={self.run_id} "
                    f"subnet={self.net.network} bridge={self.net.bridge}")
        return f"network=loopback run={self.run_id} ({self.reason})"

    # ---- tear-down --------------------------------------------------------------------------------

    def close(self) -> None:
        """Remove every namespace, link and hosts file of the run, then stop the reaper (which checks
        again) and release the run's locks."""
        try:
            if self.net is not None:
                self.net.close()
        finally:
            if self.reaper is not None:
                self.reaper.close()
            self.lease.close()
