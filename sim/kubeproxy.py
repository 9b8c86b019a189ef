"""kube-proxy for the emulated cluster: a forwarder on every ClusterIP Service address.

Role: for each port of each Service with a cluster IP (the address `sim.netns` put on the bridge, or a
loopback address without namespaces), accept connections and send each NEW connection to one endpoint
picked at random (as kube-proxy's iptables/nftables rules do) among `endpoints.proxy_candidates` of the
*delayed* EndpointSlice view (`sim.endpoints`): ready endpoints, else serving terminating ones (KEP-1669).
The connection then stays with that backend until one side closes it, whatever the labels, readiness or
endpoints do later (conntrack: established flows are never re-routed, and kube-proxy does not flush TCP
entries when an endpoint goes away). `connections()` / `backend_of(port)` tell tests and the writer
which pod a client connection reached; `on_pick` lets the cluster record every routing decision.

Where a userspace forwarder differs from kube-proxy's DNAT, and how it is kept no kinder:
- the client's TCP connect completes against the forwarder, not the backend. The backend connect
  happens right after; if it is refused, the client connection is reset (the driver sees the
  connection fail during its handshake, as a refused connect would fail it); if it hangs (a silent
  partition), the client's handshake hangs until the driver's own connection timeout, as a SYN to a
  partitioned pod would; the forwarder gives up after `connect_timeout_s` (Linux's 6 SYN retries,
  127 s) and resets the client.
- a Service with no endpoint: kube-proxy rejects the SYN (ICMP, "connection refused"); here the
  accepted connection is reset at once. The driver raises ServiceUnavailable either way.
- the backend sees the bridge address as the client, not the client's own address, so a pod-level
  partition rule cannot tell Service traffic of a peer from that of an outside client (no product
  component reaches a peer through a Service; the writer and reader live in the root namespace).
- an established connection whose backend went silent hangs for the client until the forwarder's own
  socket to the backend times out (TCP retransmissions, ~15 min): exactly what the client's socket
  would do under DNAT. A reset from the backend is passed on as a reset.

Must never: route a NEW connection to a pod that is not in the delayed view, move an established
connection, block without a bound, or listen outside 127.0.0.0/8 and the run's 198.18.0.0/15 subnet.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import random
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.endpoints import Endpoint, EndpointsController, ServicePort, ServiceSpec, proxy_candidates
from sim.proc import check_sim_address

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 127.0  # tcp_syn_retries=6: 1+2+4+8+16+32+64 s
BUFFER = 256 * 1024
HISTORY = 20000  # closed connections kept for backend_of()


@dataclass
class Conn:
    """One client connection through a Service and where it went."""

    service: str
    client: tuple[str, int]
    backend_pod: str = ""
    backend_uid: str = ""
    backend: tuple[str, int] | None = None
    opened: float = 0.0
    closed: float | None = None
    outcome: str = "open"  # open, closed, reset, refused, unreachable, no-endpoint
    _socks: list[socket.socket] = field(default_factory=list, repr=False)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a dying backend or a reject would look to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class ServiceProxy:
    """Forwarders for every ClusterIP Service the controller knows; `sync()` opens new listeners."""

    def __init__(self, controller: EndpointsController, rng: random.Random | None = None,
                 on_pick: Callable[[str, list[Endpoint], Endpoint], None] | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.controller = controller
        self.rng = rng or random.Random()
        self.on_pick = on_pick
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._listeners: dict[tuple[str, int], socket.socket] = {}
        self._conns: list[Conn] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- lifecycle ------------------------------------------------------------------------------

    def sync(self) -> None:
        """Listen on every (cluster IP, port) of every ClusterIP Service not listened on yet."""
        for svc in self.controller.services().values():
            if svc.cluster_ip is None:
                continue
            for port in svc.ports:
                key = (svc.cluster_ip, port.port)
                with self._lock:
                    if key in self._listeners:
                        continue
                    sock = socket.create_server((check_sim_address(svc.cluster_ip), port.port), backlog=128)
                    sock.settimeout(0.2)
                    self._listeners[key] = sock
                t = threading.Thread(target=self._accept_loop, args=(sock, svc.name, port),
                                     name=f"kube-proxy-{svc.name}-{port.port}", daemon=True)
                t.start()
                self._threads.append(t)
                log.info("event=service_listening service=%s address=%s:%d", svc.name, *key)

    def stop(self) -> None:
        """Close every listener and reset every open connection; join the threads (bounded)."""
        self._stop.set()
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
            socks = [s for c in self._conns if c.closed is None for s in c._socks]
        for s in listeners:
            with contextlib.suppress(OSError):
                s.close()
        for s in socks:
            _reset(s)
        deadline = time.monotonic() + 5.0
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    # ---- what tests and the writer ask -----------------------------------------------------------

    def connections(self, service: str | None = None) -> list[Conn]:
        with self._lock:
            return [c for c in self._conns if service is None or c.service == service]

    def backend_of(self, client_port: int, client_ip: str | None = None) -> Conn | None:
        """The newest connection from that client port (the one open now, if any)."""
        with self._lock:
            for c in reversed(self._conns):
                if c.client[1] == client_port and (client_ip is None or c.client[0] == client_ip):
                    return c
        return None

    # ---- forwarding ---------------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket, service: str, port: ServicePort) -> None:
        while not self._stop.is_set():
            try:
                client, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed
            conn = Conn(service, (str(addr[0]), int(addr[1])), opened=time.monotonic())
            conn._socks.append(client)
            with self._lock:
                self._conns.append(conn)
                if len(self._conns) > HISTORY:
                    del self._conns[: len(self._conns) - HISTORY]
            threading.Thread(target=self._serve, args=(client, conn, port), daemon=True,
                             name=f"kube-proxy-conn-{service}").start()

    def _pick(self, conn: Conn, port: ServicePort) -> Endpoint | None:
        candidates = proxy_candidates(self.controller.view(conn.service))
        candidates = [e for e in candidates if e.port_for(port.target) is not None]
        if not candidates:
            return None
        chosen = self.rng.choice(candidates)
        if self.on_pick is not None:
            self.on_pick(conn.service, candidates, chosen)
        return chosen

    def _serve(self, client: socket.socket, conn: Conn, port: ServicePort) -> None:
        try:
            ep = self._pick(conn, port)
            if ep is None:
                self._finish(conn, "no-endpoint", client)
                return
            target = ep.port_for(port.target)
            assert target is not None
            conn.backend_pod, conn.backend_uid, conn.backend = ep.pod, ep.uid, (ep.ip, target)
            client.setblocking(False)
            early = bytearray()
            backend = self._connect(client, conn, early)
            if backend is None:
                return
            conn._socks.append(backend)
            self._pump(client, backend, conn, early)
        except Exception as exc:  # one connection's failure must not end the proxy
            log.warning("event=proxy_conn_failed service=%s error=%s detail=%s", conn.service,
                        type(exc).__name__, exc)
            self._finish(conn, "reset", *conn._socks)

    def _connect(self, client: socket.socket, conn: Conn, early: bytearray) -> socket.socket | None:
        """Non-blocking connect to the backend, bounded. What the client sends meanwhile (the Bolt
        handshake) is kept in `early`; a client that goes away ends the attempt."""
        assert conn.backend is not None
        backend = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        backend.setblocking(False)
        code = backend.connect_ex(conn.backend)
        if code not in (0, errno.EINPROGRESS):
            self._finish(conn, "refused" if code == errno.ECONNREFUSED else "unreachable", client, backend)
            return None
        deadline = time.monotonic() + self.connect_timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(backend, selectors.EVENT_WRITE)
            sel.register(client, selectors.EVENT_READ)
            while not self._stop.is_set() and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.2):
                    if key.fileobj is client:
                        try:
                            data = client.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        if not data:
                            self._finish(conn, "closed", client, backend)
                            return None
                        early += data
                        if len(early) >= BUFFER:
                            sel.unregister(client)
                        continue
                    err = backend.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err == 0:
                        return backend
                    self._finish(conn, "refused" if err == errno.ECONNREFUSED else "unreachable",
                                 client, backend)
                    return None
        self._finish(conn, "unreachable", client, backend)
        return None

    def _pump(self, a: socket.socket, b: socket.socket, conn: Conn, early: bytearray) -> None:
        """Copy bytes both ways until both sides closed (a FIN is passed on once everything before it
        was delivered) or one side fails (the other is reset)."""
        pending = {a: bytearray(), b: early}  # bytes waiting to be written TO that socket
        eof = {a: False, b: False}  # that socket sent FIN
        other = {a: b, b: a}
        shut: set[socket.socket] = set()
        interest: dict[socket.socket, int] = {}
        with selectors.DefaultSelector() as sel:
            while not self._stop.is_set():
                for s in (a, b):
                    for t in (a, b):  # pass a FIN on once everything before it was delivered
                        if eof[other[t]] and not pending[t] and t not in shut:
                            with contextlib.suppress(OSError):
                                t.shutdown(socket.SHUT_WR)
                            shut.add(t)
                    want = 0 if eof[s] or len(pending[other[s]]) >= BUFFER else selectors.EVENT_READ
                    want |= selectors.EVENT_WRITE if pending[s] else 0
                    have = interest.get(s, 0)
                    if want != have:
                        if have and want:
                            sel.modify(s, want)
                        elif want:
                            sel.register(s, want)
                        else:
                            sel.unregister(s)
                        interest[s] = want
                if eof[a] and eof[b] and not pending[a] and not pending[b]:
                    self._finish(conn, "closed", a, b, graceful=True)
                    return
                for key, mask in sel.select(timeout=0.5):
                    sk = a if key.fileobj is a else b
                    try:
                        if mask & selectors.EVENT_READ:
                            data = sk.recv(65536)
                            if data:
                                pending[other[sk]] += data
                            else:
                                eof[sk] = True
                        if mask & selectors.EVENT_WRITE and pending[sk]:
                            sent = sk.send(pending[sk])
                            del pending[sk][:sent]
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        self._finish(conn, "reset", a, b)
                        return
        self._finish(conn, "reset", a, b)

    def _finish(self, conn: Conn, outcome: str, *socks: socket.socket, graceful: bool = False) -> None:
        with self._lock:  # recorded first: whoever sees the reset may look the outcome up at once
            if conn.closed is None:
                conn.closed, conn.outcome = time.monotonic(), outcome
        for s in socks:
            if graceful:
                with contextlib.suppress(OSError):
                    s.close()
            else:
                _reset(s)


def listen_addresses(services: dict[str, ServiceSpec]) -> list[tuple[str, int]]:
    """(cluster IP, port) pairs the proxy serves (for logs and the demo's first line)."""
    return sorted((s.cluster_ip, p.port) for s in services.values() if s.cluster_ip for p in s.ports)
