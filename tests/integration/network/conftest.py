"""Fixtures of the network tests: a run's bridge and pod namespaces, always torn down.

Tests that need network namespaces are skipped with the reason when this process cannot make them
(not root, or `ip netns` refused); CI runs as root and runs them. Every process a test starts inside a
namespace is killed (whole group) on teardown, and the namespace removal kills anything left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from sim import netns, partition
from sim.reaper import MARKER, Reaper
from sim.runlease import new_run

NETNS_REASON = netns.probe()
needs_netns = pytest.mark.skipif(NETNS_REASON is not None,
                                 reason=f"network namespaces unavailable: {NETNS_REASON}")
needs_nft = pytest.mark.skipif(NETNS_REASON is not None or partition.nft_reason() is not None,
                               reason=f"partitions unavailable: {NETNS_REASON or partition.nft_reason()}")


class Bench:
    """A run's bridge and a few pod namespaces, and processes started inside them."""

    def __init__(self) -> None:
        self.lease = new_run()
        self.lease.take_subnet(netns.addresses_in_use())
        self.reaper = Reaper.start(self.lease, with_network=True)
        self.net = netns.RunNet(self.lease)
        self.net.up()
        self.procs: list[subprocess.Popen[bytes]] = []

    def pod(self, name: str) -> netns.PodNet:
        return self.net.add_pod(name)

    def run_in(self, pod: netns.PodNet, code: str) -> subprocess.Popen[bytes]:
        """`python -c code` inside the pod (own process group, the run's marker), stdout piped."""
        p = subprocess.Popen([*pod.exec_prefix(), sys.executable, "-u", "-c", code], stdout=subprocess.PIPE,
                             env={**os.environ, MARKER: self.lease.run_id}, start_new_session=True)
        self.procs.append(p)
        return p

    def run_in_wait(self, pod: netns.PodNet, code: str, timeout_s: float = 20.0) -> str:
        p = self.run_in(pod, code)
        out, _ = p.communicate(timeout=timeout_s)
        return out.decode().strip()

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        try:
            self.net.close()
        finally:
            self.reaper.close()
            self.lease.close()


@pytest.fixture
def bench() -> Iterator[Bench]:
    b = Bench()
    try:
        yield b
    finally:
        b.close()


LISTEN = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(({host!r}, {port})); s.listen(16); print("listening", flush=True)
while True:
    c, _ = s.accept(); c.sendall({reply!r}.encode()); c.close()
"""


def listener(bench: Bench, pod: netns.PodNet, port: int, reply: str, host: str = "0.0.0.0") -> None:
    p = bench.run_in(pod, LISTEN.format(host=host, port=port, reply=reply))
    assert p.stdout is not None and p.stdout.readline().strip() == b"listening"


CONNECT = """
import socket
try:
    with socket.create_connection(({host!r}, {port}), timeout={timeout}) as c:
        c.settimeout({timeout}); print("ok", c.recv(64).decode())
except TimeoutError:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print("error", type(exc).__name__)
"""


def connect_from(bench: Bench, pod: netns.PodNet | None, host: str, port: int, timeout: float = 1.0) -> str:
    """What a TCP connect + read from `pod` (None: the root namespace) to host:port gives:
    "ok <reply>", "timeout", "refused" or "error <class>"."""
    code = CONNECT.format(host=host, port=port, timeout=timeout)
    if pod is not None:
        return bench.run_in_wait(pod, code)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()
