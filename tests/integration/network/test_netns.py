"""Pods in network namespaces (sim.netns): own localhost and address, bridge reachability, hosts files
rewritten in place and seen by running pod processes, cluster DNS through them, runs that never
collide, tear-down and the stale sweep."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

from sim import netns
from sim.dns import ClusterDNS, OwnName
from sim.endpoints import EndpointsController
from sim.reaper import sweep_stale
from sim.runlease import run_alive
from tests.integration.network.conftest import Bench, connect_from, listener, needs_netns
from tests.unit.netbed.test_endpoints import SEL, pod, svc

pytestmark = needs_netns


def test_each_pod_has_its_own_localhost_and_address(bench: Bench) -> None:
    a, b = bench.pod("mg-0"), bench.pod("mg-1")
    assert a.ip != b.ip and a.ns != b.ns
    listener(bench, a, 7687, "pod-a", host="127.0.0.1")
    listener(bench, b, 7687, "pod-b", host="127.0.0.1")  # the same port on each pod's own localhost
    listener(bench, a, 7688, "a-outside")
    assert connect_from(bench, a, "127.0.0.1", 7687) == "ok pod-a"
    assert connect_from(bench, b, "127.0.0.1", 7687) == "ok pod-b"
    assert connect_from(bench, None, a.ip, 7688) == "ok a-outside"  # root namespace -> pod over the bridge
    assert connect_from(bench, b, a.ip, 7688) == "ok a-outside"  # pod -> pod
    assert connect_from(bench, None, a.ip, 7687) == "refused"  # bound to the pod's localhost only


RESOLVE_LOOP = """
import socket, sys, time
deadline = time.monotonic() + 20
last = None
while time.monotonic() < deadline:
    try:
        ip = socket.gethostbyname("mg-1.mg-headless")
    except OSError:
        ip = "none"
    if ip != last:
        print(ip, flush=True); last = ip
    time.sleep(0.02)
"""


def test_a_running_pod_process_sees_dns_changes_through_its_hosts_file(bench: Bench) -> None:
    a = bench.pod("mg-0")
    pods = [pod("mg-1", "198.18.0.11")]
    rev = [1]
    services = [svc("mg-headless", SEL, headless=True)]
    ctl = EndpointsController(lambda: pods, lambda: services, lambda: rev[0], delay_s=0.0)
    ctl.observe()
    dns = ClusterDNS(ctl, "default", bench.net.bridge_ip)
    dns.add_target(a.hosts_file, OwnName(a.ip, "mg-0", "mg-headless"))
    p = bench.run_in(a, RESOLVE_LOOP)  # started now: its /etc/hosts is bind-mounted from here on
    assert p.stdout is not None
    assert p.stdout.readline().strip() == b"198.18.0.11"
    pods[0] = pod("mg-1", "198.18.0.11", terminating=True)  # not ready: CoreDNS drops the name
    rev[0] += 1
    ctl.observe()
    dns.refresh()
    assert p.stdout.readline().strip() == b"none"
    pods[0] = pod("mg-1", "198.18.0.42")  # a new incarnation with a new address
    rev[0] += 1
    ctl.observe()
    dns.refresh()
    assert p.stdout.readline().strip() == b"198.18.0.42"
    fqdn = "mg-0.mg-headless.default.svc.cluster.local"  # the kubelet's own entry
    own = bench.run_in_wait(a, f"import socket; print(socket.gethostbyname({fqdn!r}))")
    assert own == a.ip


def _mac(link: str) -> str:
    return str(json.loads(netns.ip("-j", "link", "show", link).stdout)[0]["address"])


def test_pods_come_and_go_without_moving_the_bridge_mac_so_others_still_reach_the_node(bench: Bench) -> None:
    # Regression: a bridge without a set MAC takes its ports' lowest. A pod's ARP entry for the bridge's
    # addresses then named the veth of another pod incarnation; once that one was deleted, frames to it
    # reached nobody for the entry's life (15-45 s): kubelet probes from the node address timed out and
    # healthy agents were killed. Linux sends no gratuitous ARP on the change (arp_notify=0).
    with socket.socket() as srv:
        srv.bind((bench.net.bridge_ip, 0))
        srv.listen(8)
        srv.settimeout(10.0)
        port = srv.getsockname()[1]

        def serve(count: int) -> None:
            for _ in range(count):  # bounded: one accept per connect below, each within the timeout
                with contextlib.suppress(OSError):
                    conn, _ = srv.accept()
                    with conn:
                        conn.sendall(b"node")

        server = threading.Thread(target=serve, args=(2,), daemon=True)
        server.start()
        a = bench.pod("mg-0")
        b = bench.pod("mg-1")
        netns.ip("link", "set", b.veth, "address", "02:00:00:00:00:01")  # lower than any random veth MAC
        assert _mac(bench.net.bridge) == netns.bridge_mac(bench.net.bridge_ip)
        assert connect_from(bench, a, bench.net.bridge_ip, port) == "ok node"  # a learns the bridge's MAC
        bench.net.remove_pod(b)  # the old incarnation goes, with its veth
        assert _mac(bench.net.bridge) == netns.bridge_mac(bench.net.bridge_ip)
        assert connect_from(bench, a, bench.net.bridge_ip, port, timeout=2.0) == "ok node"
        server.join(timeout=15)


def test_two_runs_at_once_never_share_a_subnet_or_a_name(bench: Bench) -> None:
    other = Bench()
    try:
        assert other.lease.run_id != bench.lease.run_id
        assert not other.net.network.overlaps(bench.net.network)
        assert other.net.bridge != bench.net.bridge
        x, y = bench.pod("mg-0"), other.pod("mg-0")
        assert x.ns != y.ns and x.veth != y.veth and x.ip != y.ip
    finally:
        other.close()


def test_tear_down_leaves_no_namespace_link_or_hosts_file() -> None:
    b = Bench()
    run = b.lease.run_id
    b.pod("mg-0")
    b.pod("mg-1")
    assert all(netns.objects_of(run).values())
    b.close()
    assert netns.objects_of(run) == {"netns": [], "links": [], "etc": []}
    assert not run_alive(run)
    assert all(run not in n for n in netns.list_namespaces() + netns.list_links())


def test_the_stale_sweep_removes_dead_runs_only() -> None:
    live, dead = Bench(), Bench()
    try:
        live.pod("mg-0")
        dead.pod("mg-0")
        dead_run = dead.lease.run_id
        dead.reaper.proc.kill()  # the owner and its reaper are gone, the objects stay
        dead.reaper.proc.wait(timeout=5)
        for fd in dead.lease.fds:
            os.close(fd)
        dead.lease.run_fd, dead.lease.subnet_fd = -1, None
        assert all(netns.objects_of(dead_run).values())
        swept = sweep_stale()
        assert dead_run in swept and live.lease.run_id not in swept
        deadline = time.monotonic() + 10
        while any(netns.objects_of(dead_run).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert netns.objects_of(dead_run) == {"netns": [], "links": [], "etc": []}
        assert all(netns.objects_of(live.lease.run_id).values())
    finally:
        live.close()
        dead.net.pods.clear()
