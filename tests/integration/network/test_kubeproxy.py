"""kube-proxy (sim.kubeproxy) over real sockets: NEW connections follow the delayed EndpointSlices,
established ones stay pinned, a refused backend or a Service without endpoints resets the client, FINs
pass both ways, and a silently partitioned backend leaves the client hanging (namespaces only)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sim import partition
from sim.endpoints import EndpointsController
from sim.kubeproxy import ServiceProxy
from sim.proc import free_port
from tests.integration.network.conftest import Bench, listener, needs_nft
from tests.unit.netbed.test_endpoints import SEL, pod

VIP = "127.0.0.77"


class Backend:
    """A TCP server that sends its name on accept, then echoes."""

    def __init__(self, name: str, host: str) -> None:
        self.name, self.sock = name, socket.create_server((host, 0))
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.sock.settimeout(0.1)
        self.stop = threading.Event()
        self.eof_seen = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    def _echo(self, c: socket.socket) -> None:
        with c, contextlib.suppress(OSError):  # a reset from the proxy ends the echo
            c.sendall(self.name.encode())
            while (data := c.recv(100)):
                c.sendall(data)
            self.eof_seen.set()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


class World:
    """A fake store with one Service and the pods the test sets, a controller on a fake clock, a proxy."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.now, self.rev = [100.0], [1]
        self.pods: list[dict[str, Any]] = []
        self.port = free_port(VIP)
        port = {"name": "bolt", "port": self.port, "targetPort": "bolt"}
        spec = {"selector": SEL, "clusterIP": VIP, "ports": [port]}
        self.services = [{"metadata": {"name": "mg"}, "spec": spec}]
        self.ctl = EndpointsController(lambda: self.pods, lambda: self.services, lambda: self.rev[0],
                                       delay_s=delay_s, clock=lambda: self.now[0])
        self.proxy = ServiceProxy(self.ctl, connect_timeout_s=5.0)

    def route_to(self, *backends: Backend, ready: bool = True) -> None:
        """The Service selects exactly these backends' pods from now on (as the controller sees it)."""
        self.pods = [backend_pod(b.name, b.host, b.port, ready) for b in backends]
        self.rev[0] += 1
        self.ctl.observe()

    def connect(self) -> socket.socket:
        return socket.create_connection((VIP, self.port), timeout=3)

    def assert_reset(self) -> None:
        """The client's connection is reset (at connect on loopback, or at its first read)."""
        with pytest.raises((ConnectionResetError, BrokenPipeError)), self.connect() as c:
            c.sendall(b"\x60\x60\xb0\x17")
            c.recv(10)


def backend_pod(name: str, host: str, port: int, ready: bool = True) -> dict[str, Any]:
    p = pod(name, host, ready=ready)
    p["spec"]["containers"][0]["ports"][0]["containerPort"] = port  # the "bolt" container port
    return p


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    made: list[Backend] = []
    w.backend = lambda name, host="127.0.0.1": made.append(Backend(name, host)) or made[-1]  # type: ignore[attr-defined]
    try:
        yield w
    finally:
        w.proxy.stop()
        for b in made:
            b.close()


def start(w: World) -> None:
    w.ctl.observe()
    w.proxy.sync()


def test_new_connections_follow_the_endpoints_and_established_ones_stay_pinned(world: World) -> None:
    a, b = world.backend("A", "127.0.0.81"), world.backend("B", "127.0.0.82")  # type: ignore[attr-defined]
    world.route_to(a)
    start(world)
    with world.connect() as c1:
        assert c1.recv(10) == b"A"
        world.route_to(b)  # labels moved: the Service now selects B only
        with world.connect() as c2:
            assert c2.recv(10) == b"B"
        c1.sendall(b"still")
        assert c1.recv(10) == b"still"  # conntrack: the old connection stays with A
    conns = world.proxy.connections("mg")
    assert [c.backend_pod for c in conns] == ["A", "B"]
    assert world.proxy.backend_of(conns[0].client[1]) is conns[0]


def test_routes_change_only_after_the_propagation_delay() -> None:
    w = World(delay_s=1.0)
    a = Backend("A", "127.0.0.83")
    try:
        w.route_to(a)
        w.proxy.sync()
        w.assert_reset()  # no endpoint yet: the EndpointSlice has not reached kube-proxy
        w.now[0] += 1.0
        with w.connect() as c:
            assert c.recv(10) == b"A"
    finally:
        w.proxy.stop()
        a.close()


def test_a_refused_backend_resets_the_client(world: World) -> None:
    world.pods = [backend_pod("A", "127.0.0.84", free_port("127.0.0.84"))]  # nothing listens there
    start(world)
    world.assert_reset()
    assert world.proxy.connections()[0].outcome == "refused"


def test_a_service_without_endpoints_resets_the_client(world: World) -> None:
    a = world.backend("A", "127.0.0.85")  # type: ignore[attr-defined]
    world.route_to(a, ready=False)
    start(world)
    world.assert_reset()
    assert world.proxy.connections()[0].outcome == "no-endpoint"


def test_a_fin_is_passed_on_both_ways(world: World) -> None:
    a = world.backend("A", "127.0.0.86")  # type: ignore[attr-defined]
    world.route_to(a)
    start(world)
    with world.connect() as c:
        assert c.recv(10) == b"A"
        c.shutdown(socket.SHUT_WR)
        assert a.eof_seen.wait(5)
        assert c.recv(10) == b""  # the backend closed after our FIN; its FIN reached us


@needs_nft
def test_a_silently_partitioned_backend_leaves_the_client_hanging(bench: Bench) -> None:
    a = bench.pod("mg-0")
    listener(bench, a, 7687, "A")
    w = World()
    w.pods = [backend_pod("A", a.ip, 7687)]
    w.ctl.observe()
    w.proxy.sync()
    topo = partition.Topology(bench.net.bridge_ip, a.ip, a.ip, 6443, 9999)
    try:
        partition.apply(a, partition.Cut("all"), topo)
        with w.connect() as c:  # the connect completes against the forwarder (see sim.kubeproxy)
            c.settimeout(1.5)
            with pytest.raises(TimeoutError):
                c.recv(10)  # no reset, no data: the backend's SYN is being dropped
            partition.heal(a)
            c.settimeout(10)
            with contextlib.suppress(TimeoutError):
                assert c.recv(10) == b"A"  # the SYN retry gets through after the heal
    finally:
        w.proxy.stop()
