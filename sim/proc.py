"""Process and port helpers shared by the emulators, the simulated cluster and the tests.

Role: start child processes in their own process group, stop them (whole group, bounded waits),
find free ports on a loopback address, wait for a TCP port with a bound.

Must never: leave a process running after `stop_group` returns, wait without a bound, or bind an
address outside 127.0.0.0/8 and 198.18.0.0/15 (the namespaced pods).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def check_loopback(host: str) -> str:
    """Return `host` if it is a loopback address; raise ValueError otherwise (tests stay on 127/8)."""
    if host == "localhost":
        return host
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address; the simulation only binds 127.0.0.0/8")
    return host


BENCH_RANGE = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544, the pods of the namespaced bed


def check_sim_address(host: str) -> str:
    """Return `host` if the bed may bind or send to it: loopback, or the network-benchmark range
    198.18.0.0/15 that the namespaced pods and their bridge use (sim.netns); raise ValueError otherwise."""
    if host == "localhost":
        return host
    addr = ipaddress.ip_address(host)
    if not (addr.is_loopback or addr in BENCH_RANGE):
        raise ValueError(f"{host} is neither loopback nor in {BENCH_RANGE}; the simulation stays there")
    return host


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on `host` a moment ago (bind to port 0, read it, close)."""
    check_sim_address(host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout_s: float = 10.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts TCP connections on host:port, at most `timeout_s`.

    Raises TimeoutError, or RuntimeError when `proc` exits first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"process {proc.args!r} exited with {proc.returncode} before {host}:{port} opened"
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"{host}:{port} did not open within {timeout_s}s")


def start_group(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `args` as the leader of a new process group (so `stop_group` can take all of it).

    stdout and stderr go to `log_path` when given (appended), else are inherited.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            list(args),
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    finally:
        if out:
            out.close()


def python_module_args(module: str, *args: str) -> list[str]:
    """argv for `python -m module args...` with the current interpreter."""
    return [sys.executable, "-m", module, *args]


def stop_group(proc: subprocess.Popen[bytes], term_timeout_s: float = 5.0) -> int | None:
    """SIGTERM the process group, wait at most `term_timeout_s`, then SIGKILL it. Returns the exit code."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=term_timeout_s)
    kill_group(proc)
    return proc.returncode


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group (no clean shutdown) and reap the leader."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def thread_states(pid: int) -> list[str]:
    """The state letter of every thread of `pid` (`/proc/<pid>/task/*/stat`); [] once it is gone."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):
            states.append(stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()[0])
    return states


def _group_members(pgid: int) -> list[int]:
    """The pids of process group `pgid`, read from /proc (field 5 of `/proc/<pid>/stat`)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()[2]) == pgid:
                members.append(int(stat.parent.name))
    return members


def group_stopped(pgid: int) -> bool:
    """True when every live thread of process group `pgid` is stopped (state T; zombies count as
    stopped), or the group is gone."""
    return all(s in ("T", "t", "Z", "X") for pid in _group_members(pgid) for s in thread_states(pid))


def stop_group_and_wait(pgids: Sequence[int], timeout_s: float = 10.0) -> None:
    """SIGSTOP each process group, then wait (bounded) until every thread of them stopped.

    kill(2) only queues a stop: the group stop begins when one thread takes the signal, and until then
    the other threads run on (on a loaded machine a frozen server would still answer a request sent
    right after the kill). A paused VM or a frozen node stops at once, so the bed must too before a test
    acts on the freeze. TimeoutError if a group is still running after `timeout_s`."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout_s
    while not all(group_stopped(pgid) for pgid in pgids):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"process groups {list(pgids)} did not stop within {timeout_s}s")
        time.sleep(0.01)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to a process group that may be gone; a SIGSTOP returns only once the group stopped
    (`stop_group_and_wait`)."""
    if sig == signal.SIGSTOP:
        stop_group_and_wait([pgid])
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
