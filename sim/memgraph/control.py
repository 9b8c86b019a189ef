"""Process-level control of one emulated Memgraph: start, SIGTERM, kill -9, restart, admin faults.

Role: run `python -m sim.memgraph` through sim.proc.start_group, learn its ports from the
`READY bolt=<port> admin=<port>` line (stdout goes to `<data_dir>.log`, appended across restarts), keep
the same ports across restarts so `bolt_uri` stays valid, pass the replication timings
(`MemgraphTimings`, Memgraph's own by default), and call the admin server for the test controls
(link faults, busy Bolt workers, commit faults). `pause`/`resume` freeze and thaw the process (SIGSTOP /
SIGCONT), and `wait_stopped` waits until a commit fault with action `stop` has frozen it. Used by tests
and the simulated cluster only.

Must never: wait without a bound, leave a process running after stop()/kill(), or be used by agent/ or
coordinator/ code.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim import proc
from sim.memgraph.timings import MemgraphTimings

READY_RE = re.compile(rb"^READY bolt=(\d+) admin=(\d+)$", re.M)


class EmulatorStartError(RuntimeError):
    """The emulator exited or did not print READY in time."""


class MemgraphProcess:
    """One emulator process bound to a data directory."""

    def __init__(self, data_dir: Path | str, host: str = "127.0.0.1", bolt_port: int = 0,
                 user: str | None = None, password: str | None = None, hosts_file: Path | str | None = None,
                 extra_args: Sequence[str] = (), replication_port: int | None = None,
                 start_timeout_s: float = 10.0, timings: MemgraphTimings | None = None,
                 replication_bind: str | None = None, audit_file: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.host = proc.check_sim_address(host)
        self.bolt_port = bolt_port
        self.admin_port = 0
        self.user, self.password = user, password
        self.hosts_file = Path(hosts_file) if hosts_file else None
        self.extra_args = list(extra_args)
        self.timings = timings or MemgraphTimings()
        # Memgraph (and the emulator's flag default) binds the replication server to 0.0.0.0; processes
        # started from here share one loopback, so by default each binds its own --host instead (pass
        # "0.0.0.0" for Memgraph's behaviour)
        self.replication_bind = replication_bind or self.host
        self.replication_port = replication_port or proc.free_port(host)
        self.start_timeout_s = start_timeout_s
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self.audit_file = audit_file  # the replication-command audit (sim.memgraph.audit), when given
        self.proc: subprocess.Popen[bytes] | None = None
        self.last_start_s = 0.0

    @property
    def bolt_uri(self) -> str:
        return f"bolt://{self.host}:{self.bolt_port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def args(self) -> list[str]:
        a = ["--host", self.host, "--bolt-port", str(self.bolt_port), "--replication-port",
             str(self.replication_port), "--data-directory", str(self.data_dir),
             "--admin-port", str(self.admin_port)]
        if self.user:
            a += ["--user", self.user, "--password", self.password or ""]
        if self.hosts_file:
            a += ["--hosts-file", str(self.hosts_file)]
        a += ["--sim-replication-bind-address", self.replication_bind]
        if self.audit_file:
            a += ["--sim-audit-file", str(self.audit_file)]
        return proc.python_module_args("sim.memgraph", *a, *self.timings.args(), *self.extra_args)

    def start(self) -> MemgraphProcess:
        """Start and wait for READY (bounded). Raises EmulatorStartError."""
        if self.alive:
            raise EmulatorStartError("already running")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        t0 = time.monotonic()
        self.proc = proc.start_group(self.args(), log_path=self.log_path)
        deadline = t0 + self.start_timeout_s
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                m = READY_RE.search(f.read())
            if m:
                self.bolt_port, self.admin_port = int(m.group(1)), int(m.group(2))
                self.last_start_s = time.monotonic() - t0
                return self
            if self.proc.poll() is not None:
                raise EmulatorStartError(f"emulator exited with {self.proc.returncode}; see {self.log_path}")
            time.sleep(0.01)
        proc.kill_group(self.proc)
        raise EmulatorStartError(f"no READY line within {self.start_timeout_s}s; see {self.log_path}")

    def stop(self) -> int | None:
        """SIGTERM (clean shutdown), bounded, then SIGKILL. A frozen process is thawed first."""
        if self.proc is None:
            return None
        self.resume()
        return proc.stop_group(self.proc)

    def kill(self) -> None:
        """kill -9: no shutdown at all."""
        if self.proc is not None:
            proc.kill_group(self.proc)

    def restart(self, kill: bool = False) -> MemgraphProcess:
        """Stop (or kill) and start again from the same data directory on the same ports."""
        self.kill() if kill else self.stop()
        return self.start()

    def admin(self, action: str, body: dict[str, Any] | None = None,
              timeout_s: float = 5.0) -> dict[str, Any]:
        """Call the admin server: action `state` (GET) or cut/heal/delay/isolate/unisolate (POST)."""
        url = f"http://{self.host}:{self.admin_port}/{action}"
        data = None if action == "state" else json.dumps(body or {}).encode("utf-8")
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
        return doc

    def state(self) -> dict[str, Any]:
        return self.admin("state")

    def cut(self, peer: str) -> None:
        self.admin("cut", {"peer": peer})

    def heal(self, peer: str | None = None) -> None:
        self.admin("heal", {"peer": peer} if peer else {})

    def delay(self, ms: int) -> None:
        self.admin("delay", {"ms": ms})

    def isolate(self) -> None:
        self.admin("isolate")

    def unisolate(self) -> None:
        self.admin("unisolate")

    def busy(self, seconds: float, workers: int | None = None) -> None:
        """`workers` Bolt workers (default all) run a query of `seconds` (queued if they are busy)."""
        body: dict[str, Any] = {"seconds": seconds}
        if workers is not None:
            body["workers"] = workers
        self.admin("busy", body)

    def arm_commit_fault(self, step: str, action: str, times: int = 1) -> None:
        """Crash (`crash`) or freeze (`stop`) the process at `step` of the next write commit(s)."""
        self.admin("commit-fault", {"step": step, "action": action, "times": times})

    def clear_commit_fault(self) -> None:
        self.admin("commit-fault", {})

    # ----- freezing the process (a paused VM, a frozen node) -----

    def pause(self, timeout_s: float = 10.0) -> None:
        """SIGSTOP, then wait (bounded) until every thread stopped. kill(2) only queues the signal: the
        group stop starts when one thread takes it, and until then the others run on (a replica would
        still answer a PrepareCommit on a loaded machine), so a test must not act before this returns."""
        if self.alive and self.proc is not None:
            proc.stop_group_and_wait([self.proc.pid], timeout_s)  # its own group (proc.start_group)

    def resume(self) -> None:
        if self.alive and self.proc is not None:
            proc.signal_group(self.proc.pid, signal.SIGCONT)

    @property
    def stopped(self) -> bool:
        """True while the process is frozen: every thread in state T (group stop) in /proc."""
        if not self.alive or self.proc is None:
            return False
        states = proc.thread_states(self.proc.pid)
        return bool(states) and all(state == "T" for state in states)

    def wait_stopped(self, timeout_s: float = 10.0) -> None:
        """Until the process is frozen (a `stop` commit fault fired, or `pause`); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.stopped:
                return
            if not self.alive:
                raise EmulatorStartError("the emulator exited instead of stopping")
            time.sleep(0.01)
        raise TimeoutError(f"the emulator did not stop within {timeout_s}s")

    def wait_exit(self, timeout_s: float = 10.0) -> int:
        """Until the process ended by itself (a `crash` commit fault fired); returns its exit code."""
        if self.proc is None:
            raise EmulatorStartError("not started")
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"the emulator did not exit within {timeout_s}s") from exc
