"""The emulator's own replication transport: length-prefixed JSON over TCP, a resolver and link faults.

Role: carry requests and replies between a MAIN's replica client and a replica's replication server.
Memgraph uses its own RPC library (reference memgraph-replication 3.2 names the RPCs mimicked here:
SwapMainUUID, Heartbeat, FrequentHeartbeat, PrepareCommit, FinalizeCommit, Snapshot, WalFiles); like
Memgraph's `rpc::Client` (`src/rpc/client.hpp`), an `RpcClient` keeps ONE connection per replica, opens
it with a connect timeout (5 s, `client.hpp:200`), re-opens it when the peer closed it, serialises every
RPC to that replica behind one lock (the "RPC lock" of `replication_client.cpp`: a commit's stream holds
it from StartTransactionReplication to the end of shipping), and bounds each RPC by its own timeout.
Frames are a 4-byte big-endian length and a UTF-8 JSON object. Replica addresses are stored as given
(reference 1.1: "don't resolve early"); names are resolved on every connect through `--hosts-file`
(/etc/hosts format, re-read each time because pod IPs change), then the system resolver. Test faults
live here: `cut` a peer (outgoing attempts fail at once, incoming requests from it get the connection
closed unanswered), `delay` every outgoing request, `isolate`.

Must never: block without a timeout, log message bodies (they may hold data), or raise anything but
LinkError (and its kinds) out of `RpcClient.call`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.memgraph.packstream import recv_exact

log = logging.getLogger(__name__)
MAX_FRAME = 256 * 1024 * 1024


class LinkError(Exception):
    """The request did not get a reply: refused, cut, closed or garbled (RpcFailedException)."""


class ConnectFailed(LinkError):
    """No connection could be made (RpcFailedToConnectException / SOCKET_FAILED_TO_CONNECT)."""


class RpcTimeout(LinkError):
    """Connected, but no reply within the RPC's timeout (RpcTimeoutException)."""


@dataclass
class Faults:
    """Test-only link faults of one instance (admin server / Python API)."""

    cut: set[str] = field(default_factory=set)
    delay_ms: int = 0
    isolated: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outgoing_blocked(self, address: str, host: str, ip: str, port: int) -> bool:
        with self.lock:
            if self.isolated:
                return True
            return bool(self.cut & {address, host, ip, f"{ip}:{port}"})

    def incoming_blocked(self, sender: dict[str, Any]) -> bool:
        with self.lock:
            if self.isolated:
                return True
            ids = {str(sender.get("host", "")), str(sender.get("id", ""))}
            return bool(self.cut & ids)

    def delay_s(self) -> float:
        with self.lock:
            return self.delay_ms / 1000.0

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"cut": sorted(self.cut), "delay_ms": self.delay_ms, "isolated": self.isolated}


def read_hosts_file(path: Path) -> dict[str, str]:
    """Parse an /etc/hosts style file into name -> IP (first mapping wins, as in libc)."""
    table: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        log.warning("cannot read hosts file %s: %s", path, exc)
        return table
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            table.setdefault(name, fields[0])
    return table


def resolve(host: str, hosts_file: Path | None) -> str:
    """IP for `host`: an IP literal as is, else the hosts file (re-read now), else the system resolver."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    if hosts_file is not None:
        ip = read_hosts_file(hosts_file).get(host)
        if ip:
            return ip
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise ConnectFailed(f"cannot resolve {host}: {exc}") from exc


def send_frame(sock: socket.socket, doc: dict[str, Any]) -> None:
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    size = struct.unpack(">I", recv_exact(sock, 4))[0]
    if size > MAX_FRAME:
        raise ValueError("replication frame too large")
    doc = json.loads(recv_exact(sock, size).decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("replication frame is not a JSON object")
    return doc


def _closed_by_peer(sock: socket.socket) -> bool:
    """EnsureConnected's probe: a readable idle socket means the peer closed (or sent garbage)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class RpcClient:
    """One persistent connection to one replica address, used under `lock` (the RPC lock)."""

    def __init__(self, address: str, host: str, port: int, faults: Faults, hosts_file: Path | None,
                 connect_timeout_s: float) -> None:
        self.address, self.host, self.port = address, host, port
        self.faults, self.hosts_file = faults, hosts_file
        self.connect_timeout_s = connect_timeout_s
        self.lock = threading.Lock()
        self._sock: socket.socket | None = None

    def _ip(self) -> str:
        ip = resolve(self.host, self.hosts_file)
        if self.faults.outgoing_blocked(self.address, self.host, ip, self.port):
            self.close()
            raise ConnectFailed(f"link to {self.address} is cut")
        return ip

    def ensure_connected(self) -> None:
        """Open the connection if there is none or the peer closed it (raises ConnectFailed)."""
        ip = self._ip()
        if self._sock is not None and not _closed_by_peer(self._sock):
            return
        self.close()
        try:
            self._sock = socket.create_connection((ip, self.port), timeout=self.connect_timeout_s)
        except OSError as exc:
            raise ConnectFailed(f"connect to {self.address} ({ip}:{self.port}) failed: {exc}") from exc

    def call(self, msg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its reply (the caller holds `lock`)."""
        delay = self.faults.delay_s()
        if delay > 0:
            time.sleep(delay)
        self.ensure_connected()
        sock = self._sock
        assert sock is not None
        try:
            sock.settimeout(timeout_s)
            send_frame(sock, msg)
            return recv_frame(sock)
        except TimeoutError as exc:
            self.close()
            raise RpcTimeout(f"{msg.get('type')} to {self.address}: no reply within {timeout_s:g}s") from exc
        except (OSError, ValueError, ConnectionError) as exc:
            self.close()
            raise LinkError(f"{msg.get('type')} to {self.address} failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection; a thread blocked reading from it wakes up with an error."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class ReplicationServer:
    """The replica's listener: one thread accepting, one thread per connection serving its requests."""

    def __init__(self, host: str, port: int, handler: Callable[[dict[str, Any]], dict[str, Any]],
                 faults: Faults) -> None:
        self.handler = handler
        self.faults = faults
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
            self.sock.listen(64)
        except OSError:
            self.sock.close()
            raise
        self.port = int(self.sock.getsockname()[1])
        self._stopped = threading.Event()
        self._conns: set[socket.socket] = set()
        self._busy = threading.Lock()  # held while a handler runs; close() waits for it (server Shutdown)
        self._thread = threading.Thread(target=self._accept_loop, name=f"repl-server-{port}", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                while not self._stopped.is_set():
                    conn.settimeout(None)
                    msg = recv_frame(conn)
                    if self._stopped.is_set() or self.faults.incoming_blocked(msg.get("sender", {})):
                        return  # refused: closed without an answer
                    with self._busy:
                        reply = self.handler(msg)
                    send_frame(conn, reply)
            except (OSError, ValueError, ConnectionError) as exc:
                log.debug("replication connection ended: %s", exc)
            except Exception:
                log.exception("replication handler failed; connection closed")
            finally:
                self._conns.discard(conn)

    def close(self) -> None:
        """Stop accepting, close every connection, and wait (bounded) for a running handler to end."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._busy.acquire(timeout=30.0):
            self._busy.release()
        self._thread.join(timeout=2.0)
