"""Silent partitions (sim.partition): packets dropped in the pod's namespace, never refused, in one
direction or both, around everything, the peers, the API server or given hosts; latency if the kernel
has netem."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import pytest

from sim import partition
from sim.partition import Cut, Topology
from tests.integration.network.conftest import Bench, connect_from, listener, needs_nft

pytestmark = needs_nft

API_PORT = 16443


def topology(bench: Bench) -> Topology:
    net = bench.net.network
    return Topology(bench.net.bridge_ip, str(net.network_address + 10), str(net.broadcast_address - 1),
                    API_PORT, 9999)


@pytest.fixture
def root_listeners(bench: Bench):  # the "API server" and another service on the bridge address
    socks = []
    for port in (API_PORT, API_PORT + 1):
        s = socket.create_server((bench.net.bridge_ip, port))
        s.settimeout(0.1)
        socks.append(s)

    stop = threading.Event()

    def serve(s: socket.socket, reply: bytes) -> None:
        while not stop.is_set():
            try:
                c, _ = s.accept()
            except (TimeoutError, OSError):
                continue
            c.sendall(reply)
            c.close()

    replies = (b"api", b"other")
    pairs = zip(socks, replies, strict=True)
    threads = [threading.Thread(target=serve, args=pair, daemon=True) for pair in pairs]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(2)
        for s in socks:
            s.close()


def test_a_cut_pod_makes_connects_hang_and_a_heal_restores_them(bench: Bench) -> None:
    a = bench.pod("mg-0")
    listener(bench, a, 7687, "a")
    partition.apply(a, Cut("all"), topology(bench))
    t0 = time.monotonic()
    assert connect_from(bench, None, a.ip, 7687, timeout=1.0) == "timeout"  # dropped, not refused
    assert time.monotonic() - t0 >= 1.0
    partition.heal(a)
    assert connect_from(bench, None, a.ip, 7687) == "ok a"


def test_an_established_connection_stops_mid_stream_without_a_reset(bench: Bench) -> None:
    a = bench.pod("mg-0")
    echo = "import socket\ns=socket.create_server(('0.0.0.0',7000)); print('listening', flush=True)\n" \
           "c,_=s.accept()\nwhile True:\n    d=c.recv(100)\n    if not d: break\n    c.sendall(d)\n"
    p = bench.run_in(a, echo)
    assert p.stdout is not None and p.stdout.readline().strip() == b"listening"
    with socket.create_connection((a.ip, 7000), timeout=2) as c:
        c.sendall(b"ping")
        assert c.recv(10) == b"ping"
        partition.apply(a, Cut("all"), topology(bench))
        c.sendall(b"again")
        c.settimeout(1.5)
        with pytest.raises(TimeoutError):
            c.recv(10)
        partition.heal(a)
        c.settimeout(10)
        assert c.recv(10) == b"again"  # retransmitted once the path is back


def test_a_cut_from_peers_leaves_the_bridge_reachable(bench: Bench, root_listeners: None) -> None:
    a, b = bench.pod("mg-0"), bench.pod("mg-1")
    listener(bench, a, 7687, "a")
    partition.apply(a, Cut("peers"), topology(bench))
    assert connect_from(bench, b, a.ip, 7687) == "timeout"
    assert connect_from(bench, a, bench.net.bridge_ip, API_PORT) == "ok api"
    assert connect_from(bench, None, a.ip, 7687) == "ok a"  # the kubelet's probes still get through


def _probe_from(source: str, host: str, port: int) -> str:
    """A kubelet-like TCP probe from `source` (an address on the bridge): "ok <reply>" or "timeout"."""
    try:
        with socket.create_connection((host, port), timeout=1.0, source_address=(source, 0)) as c:
            c.settimeout(2.0)
            return "ok " + c.recv(100).decode().strip()
    except TimeoutError:
        return "timeout"


def test_a_node_partition_lets_the_nodes_own_probes_through_and_nothing_else(bench: Bench) -> None:
    a = bench.pod("mg-0")
    listener(bench, a, 7687, "a")
    node_ip = bench.net.allocate_vip()  # the node's own address on the pod network
    topo = dataclasses.replace(topology(bench), node_ip=node_ip)
    partition.apply(a, Cut("all", node=True), topo)
    assert _probe_from(node_ip, a.ip, 7687) == "ok a"
    assert connect_from(bench, None, a.ip, 7687) == "timeout", "other traffic from the bridge is cut"
    partition.apply(a, Cut("all"), topo)
    assert _probe_from(node_ip, a.ip, 7687) == "timeout", "a pod's own cut stops the probes too"


def test_a_cut_from_the_api_server_leaves_peers_and_other_ports(bench: Bench, root_listeners: None) -> None:
    a, b = bench.pod("mg-0"), bench.pod("mg-1")
    listener(bench, b, 7687, "b")
    partition.apply(a, Cut("api"), topology(bench))
    assert connect_from(bench, a, bench.net.bridge_ip, API_PORT) == "timeout"
    assert connect_from(bench, a, bench.net.bridge_ip, API_PORT + 1) == "ok other"
    assert connect_from(bench, a, b.ip, 7687) == "ok b"


UDP_RECV = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9000)); s.settimeout(1.5)
print("bound", flush=True)
try:
    print(s.recv(100).decode())
except TimeoutError:
    print("nothing")
"""


def test_one_direction_drops_only_that_direction(bench: Bench) -> None:
    a, b = bench.pod("mg-0"), bench.pod("mg-1")
    partition.apply(a, Cut("hosts", "in", hosts=(b.ip,)), topology(bench))
    recv_a = bench.run_in(a, UDP_RECV)  # b -> a: dropped on a's input
    recv_b = bench.run_in(b, UDP_RECV)  # a -> b: a's output is allowed
    for p in (recv_a, recv_b):
        assert p.stdout is not None and p.stdout.readline().strip() == b"bound"
    send = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hello', ({!r}, 9000))"
    bench.run_in_wait(b, send.format(a.ip))
    bench.run_in_wait(a, send.format(b.ip))
    assert recv_a.communicate(timeout=10)[0].decode().strip() == "nothing"
    assert recv_b.communicate(timeout=10)[0].decode().strip() == "hello"


def test_latency_on_a_pods_link_or_the_reason_it_cannot_be_added(bench: Bench) -> None:
    a = bench.pod("mg-0")
    reason = partition.netem_reason(a)
    if reason is not None:
        with pytest.raises(partition.Unsupported, match="netem"):
            partition.add_latency(a, 50)
        pytest.skip(f"latency cannot be emulated here: {reason}")
    listener(bench, a, 7687, "a")
    partition.add_latency(a, 200)
    t0 = time.monotonic()
    assert connect_from(bench, None, a.ip, 7687, timeout=5) == "ok a"
    assert time.monotonic() - t0 >= 0.2
