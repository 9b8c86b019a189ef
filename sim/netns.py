"""Linux network namespaces for the emulated cluster: a bridge per run, one namespace per pod incarnation.

Role: the plumbing of reference bolt-and-kube-emulation.md section 5 (checked on this machine): a bridge
`mgh<run>br` in the root namespace holding the run's /24 of 198.18.0.0/15 (`.1` is the bridge itself,
where the Kubernetes API emulator and the Service forwarders listen; `.2-.9` are Service addresses;
`.10-.254` pod addresses, never reused within a run, so every pod incarnation gets a new one), and per
pod incarnation a namespace `mgh-<run>-<pod>-<n>` with `lo` up, a veth pair (`mgh<run>v<n>` on the bridge,
`eth0` inside) and its own `/etc/netns/<ns>/hosts` and `resolv.conf`, which `ip netns exec` bind-mounts
over `/etc/hosts` and `/etc/resolv.conf` of every process of the pod. Because the bind mount pins the
file at exec time, hosts files are rewritten in place (`write_in_place`), never replaced by a rename.
Interface names stay within 15 characters. Also lists and removes the objects of one run (tear-down, the
reaper and the stale sweep).

Pitfalls handled (section 5): `lo` of a new namespace is down; a namespace lives on while a process is
inside (processes are killed first, then the namespace deleted); veth and namespace removal are
asynchronous (the host-side veth is deleted explicitly, and `wait_gone` waits, bounded, for the kernel).
One more, not in section 5: a Linux bridge whose MAC address was never set takes the lowest MAC of its
ports and changes it as ports come and go, without a gratuitous ARP (arp_notify is 0). Once the pod
incarnation whose veth MAC the bridge had taken is deleted, every other pod's ARP entry for `.1` (API
server, Service forwarders) and the node address (kubelet probes) names a MAC nobody answers until the
entry expires (15-45 s, then probes): SYN-ACKs and replies are lost, probes time out, healthy agents are
killed. A real node's bridge does not do this: the CNI bridge plugin sets the bridge's MAC from its IP
address (containernetworking/cni#285, kubernetes#30783), so `up()` sets it the same way (`bridge_mac`).

Must never: create, change or delete an object whose name lacks `mgh` plus the run's id, use an address
outside the run's /24 of 198.18.0.0/15, or run `ip` without a timeout.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sim.runlease import PREFIX, RunLease, run_id_of

log = logging.getLogger(__name__)

NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")
IFNAME_MAX = 15
FIRST_POD_HOST = 10
VIP_HOSTS = range(2, 10)
HOSTS_FILE_SIZE = 16384  # hosts files are padded to this size so a rewrite is one write of equal length
IP = shutil.which("ip") or "/usr/sbin/ip"  # absolute: children may run with a PATH without /usr/sbin


class NetnsError(RuntimeError):
    """An `ip` command failed; the message holds the command and its stderr."""


def ip(*args: str, check: bool = True, timeout_s: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run `ip <args>` (bounded); raise NetnsError on failure when `check`."""
    cmd = [IP, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"{' '.join(cmd)}: no answer within {timeout_s}s") from exc
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def bridge_name(run_id: str) -> str:
    return _ifname(f"{PREFIX}{run_id}br")


def veth_name(run_id: str, host: int) -> str:
    return _ifname(f"{PREFIX}{run_id}v{host}")


def ns_name(run_id: str, pod: str, host: int) -> str:
    return f"{PREFIX}-{run_id}-{pod}-{host}"


def _ifname(name: str) -> str:
    if len(name) > IFNAME_MAX:
        raise ValueError(f"interface name {name!r} is longer than {IFNAME_MAX} characters")
    return name


@dataclass(frozen=True)
class PodNet:
    """The network of one pod incarnation."""

    ns: str
    ip: str
    veth: str

    @property
    def etc_dir(self) -> Path:
        return NETNS_ETC / self.ns

    @property
    def hosts_file(self) -> Path:
        return self.etc_dir / "hosts"

    def exec_prefix(self) -> list[str]:
        """argv prefix that runs a command inside this namespace (same PID: `ip netns exec` execs)."""
        return [IP, "netns", "exec", self.ns]


def write_in_place(path: Path, text: str) -> None:
    """Rewrite `path` without replacing its inode (a bind mount of it stays valid): one write of the
    padded content at offset 0, so a concurrent reader sees whole lines of the old or the new text."""
    data = text.encode("utf-8")
    if len(data) >= HOSTS_FILE_SIZE:
        raise ValueError(f"hosts file content exceeds {HOSTS_FILE_SIZE} bytes")
    padded = data + b"#" + b" " * (HOSTS_FILE_SIZE - len(data) - 2) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.pwrite(fd, padded, 0)
        os.ftruncate(fd, len(padded))
    finally:
        os.close(fd)


class RunNet:
    """The bridge and pod namespaces of one run. `close()` removes all of them."""

    def __init__(self, lease: RunLease) -> None:
        self.lease = lease
        self.run_id = lease.run_id
        self.network = lease.network
        hosts = list(self.network.hosts())
        self.bridge_ip = str(hosts[0])
        self.bridge = bridge_name(self.run_id)
        self._next_host = FIRST_POD_HOST
        self._next_vip = VIP_HOSTS.start
        self.pods: dict[str, PodNet] = {}
        self.made = 0  # namespaces made by this run so far
        self._up = False

    # ---- bridge ---------------------------------------------------------------------------------

    def up(self) -> None:
        """Create the bridge with the run's first address (idempotent for one run)."""
        if self._up:
            return
        ip("link", "add", self.bridge, "type", "bridge")
        self._up = True
        ip("link", "set", self.bridge, "address", bridge_mac(self.bridge_ip))  # fixed: never the ports'
        ip("addr", "add", f"{self.bridge_ip}/{self.network.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        log.info("event=bridge_up run=%s bridge=%s address=%s", self.run_id, self.bridge, self.bridge_ip)

    def allocate_vip(self) -> str:
        """A Service (virtual) address on the bridge."""
        if self._next_vip >= VIP_HOSTS.stop:
            raise RuntimeError(f"Service addresses exhausted ({len(VIP_HOSTS)} per run)")
        addr = str(self.network.network_address + self._next_vip)
        self._next_vip += 1
        ip("addr", "add", f"{addr}/32", "dev", self.bridge)
        return addr

    # ---- pods -----------------------------------------------------------------------------------

    def add_pod(self, pod: str, hosts_text: str = "") -> PodNet:
        """A new namespace with a new address for one incarnation of `pod`."""
        host = self._next_host
        if host >= self.network.num_addresses - 1:
            raise RuntimeError(f"pod addresses of {self.network} exhausted")
        self._next_host += 1
        net = PodNet(ns_name(self.run_id, pod, host), str(self.network.network_address + host),
                     veth_name(self.run_id, host))
        self.pods[net.ns] = net
        self.made += 1
        net.etc_dir.mkdir(parents=True, exist_ok=True)
        write_in_place(net.hosts_file, hosts_text or "127.0.0.1 localhost\n")
        # no DNS server: a name missing from the hosts file fails at once inside the pod, no traffic leaves
        (net.etc_dir / "resolv.conf").write_text(
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n", encoding="utf-8")
        ip("netns", "add", net.ns)
        ip("-n", net.ns, "link", "set", "lo", "up")
        ip("link", "add", net.veth, "type", "veth", "peer", "name", "eth0", "netns", net.ns)
        ip("link", "set", net.veth, "master", self.bridge)
        ip("link", "set", net.veth, "up")
        ip("-n", net.ns, "addr", "add", f"{net.ip}/{self.network.prefixlen}", "dev", "eth0")
        ip("-n", net.ns, "link", "set", "eth0", "up")
        log.info("event=pod_netns_up run=%s pod=%s ns=%s ip=%s", self.run_id, pod, net.ns, net.ip)
        return net

    def remove_pod(self, net: PodNet) -> None:
        """Kill what is left inside, delete the veth and the namespace, remove its /etc/netns files."""
        remove_namespace(net.ns, veth=net.veth)
        self.pods.pop(net.ns, None)

    # ---- tear-down ------------------------------------------------------------------------------

    def close(self, wait_s: float = 10.0) -> None:
        """Remove every object of this run (namespaces, links, bridge, hosts files) and wait, bounded,
        until the kernel shows none of them."""
        for net in list(self.pods.values()):
            with contextlib.suppress(NetnsError):
                self.remove_pod(net)
        remove_run_objects(self.run_id, wait_s=wait_s)


def bridge_mac(address: str) -> str:
    """The bridge's fixed MAC, from its IPv4 address as the CNI bridge plugin makes it: `0a:58` (a locally
    administered unicast prefix) and the address's four bytes."""
    return ":".join(f"{b:02x}" for b in (0x0A, 0x58, *ipaddress.IPv4Address(address).packed))


# ---- what exists, by run --------------------------------------------------------------------------


def list_namespaces() -> list[str]:
    done = ip("netns", "list", check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def list_links() -> list[str]:
    done = ip("-j", "link", "show", check=False)
    try:
        rows = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return []
    return [str(r.get("ifname", "")) for r in rows if r.get("ifname")]


def addresses_in_use() -> set[ipaddress.IPv4Network]:
    """IPv4 networks configured on this (root) namespace's interfaces."""
    done = ip("-j", "-4", "addr", "show", check=False)
    nets: set[ipaddress.IPv4Network] = set()
    with contextlib.suppress(json.JSONDecodeError):
        for row in json.loads(done.stdout or "[]"):
            for a in row.get("addr_info", []):
                with contextlib.suppress(ValueError):
                    nets.add(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def objects_of(run_id: str) -> dict[str, list[str]]:
    """Namespaces, links and /etc/netns directories whose names carry `run_id`."""
    etc = sorted(p.name for p in NETNS_ETC.glob(f"{PREFIX}-{run_id}-*")) if NETNS_ETC.is_dir() else []
    return {
        "netns": [n for n in list_namespaces() if run_id_of(n) == run_id],
        "links": [n for n in list_links() if run_id_of(n) == run_id],
        "etc": etc,
    }


def runs_with_objects() -> set[str]:
    """Every run id that still has a namespace, link or /etc/netns directory on this machine."""
    names = list_namespaces() + list_links()
    if NETNS_ETC.is_dir():
        names += [p.name for p in NETNS_ETC.iterdir()]
    return {rid for rid in (run_id_of(n) for n in names) if rid}


def ns_pids(ns: str) -> list[int]:
    done = ip("netns", "pids", ns, check=False)
    return [int(tok) for tok in done.stdout.split() if tok.isdigit()]


def remove_namespace(ns: str, veth: str | None = None) -> None:
    """SIGKILL every process inside `ns`, delete its veth and the namespace, and its /etc/netns files."""
    if run_id_of(ns) is None:
        raise ValueError(f"refusing to remove {ns!r}: not a namespace of the project")
    for _ in range(20):  # bounded: processes may still be forking when we start
        pids = ns_pids(ns)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    if veth:
        ip("link", "del", veth, check=False)
    ip("netns", "del", ns, check=False)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def remove_run_objects(run_id: str, wait_s: float = 10.0) -> dict[str, list[str]]:
    """Remove every namespace, link and /etc/netns directory of `run_id`, again until the kernel lists
    none (removal is asynchronous) or `wait_s` passes. Returns what was still listed at the end."""
    deadline = time.monotonic() + wait_s
    while True:
        found = objects_of(run_id)
        if not any(found.values()):
            return found
        if time.monotonic() >= deadline:
            log.warning("event=run_objects_left run=%s left=%s", run_id, found)
            return found
        for ns in found["netns"]:
            remove_namespace(ns)
        # veths first, the bridge (the name ending in "br") last
        for link in sorted(found["links"], key=lambda n: n.endswith("br")):
            ip("link", "del", link, check=False)
        for d in found["etc"]:
            shutil.rmtree(NETNS_ETC / d, ignore_errors=True)
        time.sleep(0.1)


_PROBE: list[str | None] = []


def probe() -> str | None:
    """None when this process can make network namespaces, else the reason (checked once, cached):
    root, `ip` on PATH, and an `ip netns add` of a throw-away namespace that succeeds."""
    if _PROBE:
        return _PROBE[0]
    reason: str | None = None
    if os.geteuid() != 0:
        reason = "not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    elif shutil.which("ip") is None:
        reason = "iproute2 (`ip`) is not installed"
    else:
        name = f"{PREFIX}-probe{os.getpid()}-{time.monotonic_ns() % 100000}"
        try:
            ip("netns", "add", name)
        except NetnsError as exc:
            reason = f"`ip netns add` refused: {exc}"
        else:
            ip("netns", "del", name, check=False)
    _PROBE.append(reason)
    return reason
