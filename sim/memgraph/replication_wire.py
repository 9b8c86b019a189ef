"""The emulator's own replication transport: length-prefixed JSON over TCP, a resolver and link faults.

Role: carry one request and its reply between a MAIN's replica client and a replica's replication server
(the real Memgraph uses its own RPC library; reference memgraph-replication 3.2 names the RPCs we mimic:
SwapMainUUID, Heartbeat, FrequentHeartbeat, PrepareCommit, FinalizeCommit, and a Recover that ships a
whole snapshot). Frames are a 4-byte big-endian length and a UTF-8 JSON object. One TCP connection per
request keeps failure handling trivial. Replica addresses are stored as given (reference 1.1: "don't
resolve early"); names are resolved on every connect through the `--hosts-file` (/etc/hosts format,
re-read each time because pod IPs change). Test faults live here: `cut` a peer (outgoing attempts fail at
once, incoming requests from it are closed unanswered), `delay` every outgoing request, `isolate`.

Must never: block without a timeout, log message bodies (they may hold data), or raise anything but
LinkError out of `request`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
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
    """The request did not get a reply: refused, cut, timed out, closed or garbled."""


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
        raise LinkError(f"cannot resolve {host}: {exc}") from exc


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


def request(
    address: str, host: str, port: int, msg: dict[str, Any], faults: Faults, hosts_file: Path | None,
    timeout_s: float,
) -> dict[str, Any]:
    """Send one request to a replica at `address` (= host:port as registered) and return its reply."""
    ip = resolve(host, hosts_file)
    if faults.outgoing_blocked(address, host, ip, port):
        raise LinkError(f"link to {address} is cut")
    delay = faults.delay_s()
    if delay > 0:
        time.sleep(delay)
    try:
        with socket.create_connection((ip, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            send_frame(sock, msg)
            return recv_frame(sock)
    except (OSError, ValueError, ConnectionError) as exc:
        raise LinkError(f"{msg.get('type')} to {address} ({ip}:{port}) failed: {exc}") from exc


class ReplicationServer:
    """The replica's listener: one thread accepting, one short-lived thread per connection."""

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
        self._thread = threading.Thread(target=self._accept_loop, name=f"repl-server-{port}", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10.0)
            try:
                msg = recv_frame(conn)
                if self._stopped.is_set() or self.faults.incoming_blocked(msg.get("sender", {})):
                    return  # refused: closed without an answer
                send_frame(conn, self.handler(msg))
            except (OSError, ValueError, ConnectionError) as exc:
                log.info("replication connection dropped: %s", exc)
            except Exception:
                log.exception("replication handler failed")

    def close(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=2.0)
