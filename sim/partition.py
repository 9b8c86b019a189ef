"""Silent network partitions of one pod, with nftables inside the pod's namespace; latency if possible.

Role: `Cut` describes what is dropped around one pod -- everything, its peers only (every other pod
address of the run, present and future incarnations), the API server only (the bridge address on the
API port), or an explicit list of peer addresses (e.g. a replica from its MAIN) -- in one direction
(`in`: packets arriving at the pod, `out`: packets it sends) or both, optionally only TCP to or from
given ports (the replication port: a cut replication link). A node partition (`node`) is the node's
uplink cut: traffic between the node and its own pods does not cross it, so the kubelet's probes, which
come from the node's address on the bridge (`Topology.node_ip`), still reach the pod. `apply(net, cut)`
loads one table `mgh<run>part` into the pod's namespace (`ip netns exec <ns> nft -f -`); `heal(net)`
deletes it. Packets are dropped, never rejected: a connect hangs until its own timeout, an established
connection stops mid-stream, nothing is refused -- as across a real partition (reference
bolt-and-kube-emulation.md section 5: "a TCP connect across a downed link times out"). Loopback inside
the pod is never cut (a node partition leaves localhost alone), nor the emulator's admin port from the
bridge (test instrumentation: the invariant sampler reads a partitioned Memgraph's role through it; no
product traffic uses that port).

`netem_reason()` probes once whether the kernel has `sch_netem` (tc netem delay); `add_latency` raises
`Unsupported` with that reason when it has not (this machine's kernel is built without it).

Needs the Debian package `nftables` (the `nft` command); `make net-setup` installs it when missing.

Must never: leave its table behind after `heal` (the table dies with the namespace anyway), reject a
packet, or touch a namespace or table without the project's prefix.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
from dataclasses import dataclass

from sim.netns import NetnsError, PodNet, ip

log = logging.getLogger(__name__)

SCOPES = ("all", "peers", "api", "hosts")
DIRECTIONS = ("in", "out", "both")


class Unsupported(RuntimeError):
    """The kernel or the machine cannot do this (the message says why)."""


@dataclass(frozen=True)
class Cut:
    """What to drop around one pod. `hosts` lists peer addresses for scope "hosts"."""

    scope: str = "all"
    direction: str = "both"
    hosts: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()  # only TCP to or from these ports (e.g. the replication port)
    node: bool = False  # a node partition: the node's own traffic to its pods (kubelet probes) flows

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope {self.scope!r} not in {SCOPES}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction {self.direction!r} not in {DIRECTIONS}")
        if self.scope == "hosts" and not self.hosts:
            raise ValueError("scope 'hosts' needs at least one address")
        for h in self.hosts:
            ipaddress.ip_address(h)
        if self.ports and self.scope not in ("peers", "hosts"):
            raise ValueError("ports narrow a cut from peers or hosts only")

    def describe(self) -> str:
        what = {"all": "everything", "peers": "its peers", "api": "the API server",
                "hosts": ", ".join(self.hosts)}[self.scope]
        way = {"in": "incoming only", "out": "outgoing only", "both": "both directions"}[self.direction]
        only = f", TCP port {'/'.join(map(str, self.ports))} only" if self.ports else ""
        node = ", its node's probes still reach it" if self.node else ""
        return f"cut from {what} ({way}{only}{node})"


@dataclass(frozen=True)
class Topology:
    """The addresses a rule set needs: the bridge, the pod range, the API and admin ports."""

    bridge_ip: str
    pod_first: str
    pod_last: str
    api_port: int
    admin_port: int
    node_ip: str = ""  # where the kubelets' probes come from (the node's end of the pod network)


def table_name(net: PodNet) -> str:
    run = net.ns.split("-")[1]
    return f"mgh{run}part"


def ruleset(net: PodNet, cut: Cut, topo: Topology) -> str:
    """The nftables script for `cut` around the pod of `net` (pure; see `apply`)."""
    match_in, match_out = _matches(cut, topo)
    lines = [f"table inet {table_name(net)} {{"]
    for chain, hook, iface, exempt, match, on in (
        ("incoming", "input", "iifname", f"ip saddr {topo.bridge_ip} tcp dport {topo.admin_port}",
         match_in, cut.direction in ("in", "both")),
        ("outgoing", "output", "oifname", f"ip daddr {topo.bridge_ip} tcp sport {topo.admin_port}",
         match_out, cut.direction in ("out", "both")),
    ):
        lines += [f"  chain {chain} {{", f"    type filter hook {hook} priority 0; policy accept;",
                  f'    {iface} "lo" accept', f"    {exempt} accept"]
        if cut.node and topo.node_ip:  # node-local traffic does not cross the cut uplink
            lines.append(f"    ip {'saddr' if chain == 'incoming' else 'daddr'} {topo.node_ip} accept")
        if on and cut.ports:  # the port on either end: requests to it and answers from it
            ports = "{ " + ", ".join(map(str, cut.ports)) + " }"
            lines += [f"    {match} tcp dport {ports} drop", f"    {match} tcp sport {ports} drop"]
        elif on:
            lines.append(f"    {match} drop" if match else "    drop")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _matches(cut: Cut, t: Topology) -> tuple[str, str]:
    if cut.scope == "all":
        return "", ""
    if cut.scope == "peers":
        rng = f"{t.pod_first}-{t.pod_last}"
        return f"ip saddr {rng}", f"ip daddr {rng}"
    if cut.scope == "api":
        return (f"ip saddr {t.bridge_ip} tcp sport {t.api_port}",
                f"ip daddr {t.bridge_ip} tcp dport {t.api_port}")
    hosts = "{ " + ", ".join(cut.hosts) + " }"
    return f"ip saddr {hosts}", f"ip daddr {hosts}"


def _nft(net: PodNet, args: list[str], script: str | None = None, check: bool = True) -> None:
    if not net.ns.startswith("mgh-"):
        raise ValueError(f"refusing to touch namespace {net.ns!r}: not the project's")
    cmd = [*net.exec_prefix(), "nft", *args]
    try:
        done = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"{' '.join(cmd)}: no answer within 10s") from exc
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")


def apply(net: PodNet, cut: Cut, topo: Topology) -> None:
    """Replace the pod's partition table by the rules of `cut` (one atomic nft transaction)."""
    if nft_reason() is not None:
        raise Unsupported(str(nft_reason()))
    heal(net)
    _nft(net, ["-f", "-"], ruleset(net, cut, topo))
    log.info("event=partition_applied ns=%s cut=%r", net.ns, cut.describe())


def heal(net: PodNet) -> None:
    """Remove the pod's partition table (nothing to do when there is none)."""
    _nft(net, ["delete", "table", "inet", table_name(net)], check=False)


_NFT: list[str | None] = []
_NETEM: list[str | None] = []


def nft_reason() -> str | None:
    """None when `nft` is installed, else why partitions cannot be made."""
    if not _NFT:
        _NFT.append(None if shutil.which("nft") else
                    "the `nft` command is missing (Debian package nftables; `make net-setup` installs it)")
    return _NFT[0]


def netem_reason(net: PodNet | None = None) -> str | None:
    """None when `tc ... netem` works in a pod namespace, else the reason (probed once, on `net`)."""
    if _NETEM:
        return _NETEM[0]
    if net is None:
        return "not probed yet (needs a pod namespace)"
    if shutil.which("tc") is None:
        reason: str | None = "the `tc` command is missing (iproute2)"
    else:
        done = subprocess.run(["tc", "-n", net.ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay",
                               "1ms"], capture_output=True, text=True, timeout=10, check=False)
        reason = None if done.returncode == 0 else (
            f"the kernel has no netem qdisc (tc said: {done.stderr.strip() or done.returncode})")
        subprocess.run(["tc", "-n", net.ns, "qdisc", "del", "dev", "lo", "root"], capture_output=True,
                       timeout=10, check=False)
    _NETEM.append(reason)
    return reason


def add_latency(net: PodNet, ms: float) -> None:
    """Delay every packet the pod sends on eth0 by `ms` (tc netem). Raises Unsupported without netem."""
    reason = netem_reason(net)
    if reason is not None:
        raise Unsupported(reason)
    ip("-n", net.ns, "link", "show", "eth0")
    subprocess.run(["tc", "-n", net.ns, "qdisc", "replace", "dev", "eth0", "root", "netem", "delay",
                    f"{ms:g}ms"], capture_output=True, timeout=10, check=True)


def clear_latency(net: PodNet) -> None:
    subprocess.run(["tc", "-n", net.ns, "qdisc", "del", "dev", "eth0", "root"], capture_output=True,
                   timeout=10, check=False)
