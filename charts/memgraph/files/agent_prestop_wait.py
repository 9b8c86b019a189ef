"""preStop of the agent when it runs as an ordinary container (haAgent.nativeSidecar=false).

Role: hold the agent container's SIGTERM until Memgraph in the same pod has stopped -- which happens
only after the memgraph container's own preStop (the hand-over) has finished -- so the agent stays up
for the whole switchover, as a native sidecar would (DESIGN "Start and termination order"). Memgraph
counts as stopped once its Bolt port refuses connections on two probes in a row. The outcome is
appended to the pod's preStop record on the log volume (`prestop-<POD_UID>_<POD_IP>.log`).

Must never: wait past `--timeout` seconds, import anything outside the standard library and the hook
beside it, exit non-zero (a failing preStop only adds an Event), or log a secret.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prestop import append_line, record_path

PROBE_TIMEOUT_S = 0.5
POLL_INTERVAL_S = 0.5
CLOSED_PROBES_NEEDED = 2


def port_open(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when something accepts a TCP connection on host:port within `timeout_s`."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until_closed(
    probe: Callable[[], bool],
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, float]:
    """Poll `probe` until it reports closed twice in a row or `timeout_s` passes.

    Returns (stopped, seconds waited).
    """
    start = clock()
    closed = 0
    while True:
        closed = 0 if probe() else closed + 1
        waited = clock() - start
        if closed >= CLOSED_PROBES_NEEDED:
            return True, waited
        if waited >= timeout_s:
            return False, waited
        sleep(min(POLL_INTERVAL_S, max(0.0, timeout_s - waited)))


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Wait (bounded) for Memgraph to stop, record the outcome, always exit 0."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=620.0, help="upper bound of the wait, seconds")
    args = parser.parse_args(argv)
    host = env.get("MEMGRAPH_HOST", "") or "127.0.0.1"
    try:
        port = int(env.get("MEMGRAPH_BOLT_PORT", "") or 7687)
    except ValueError:
        port = 7687
    stopped, waited = wait_until_closed(lambda: port_open(host, port), max(0.0, args.timeout))
    outcome = "memgraph stopped" if stopped else f"timeout ({args.timeout:.0f}s), memgraph still up"
    text = f"agent preStop wait: {outcome} after {waited:.1f}s; agent may stop now"
    print(text, file=sys.stderr, flush=True)
    path = record_path(
        env.get("HA_LOG_DIR", "") or "/var/log/memgraph", env.get("POD_UID", ""), env.get("POD_IP", "")
    )
    try:
        append_line(path, text)
    except OSError as exc:
        print(f"agent preStop wait: cannot append to {path}: {exc}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
