"""The watchdog of a run: every process and network object of the run dies with it, even after SIGKILL.

Role: `Reaper.start(lease)` spawns `python -m sim.reaper <run-id>` in its own session (so a signal to
the run's process group does not reach it) with the read end of a pipe as stdin and the run's lock
descriptors inherited. The run keeps the write end; when the run ends in any way -- `close()`, an
exception, Ctrl-C, SIGKILL, a CI timeout -- the kernel closes it, the reaper reads EOF and then:
kills every process that carries the run's marker (`MGHA_SIM_RUN=<id>` in its environment, which every
process the bed starts gets through `marker_env`, and which its children inherit: gunicorn workers,
hooks), removes every namespace, link and hosts file of the run (`sim.netns.remove_run_objects`), and
exits, which releases the run's locks last. A pipe-watching process is used rather than
PR_SET_PDEATHSIG, which fires when the spawning *thread* exits, not the process.

`sweep_stale()` does the same for runs whose owner is gone (their run lock is free or its file missing)
and that still have objects or marked processes: what a reaper killed outright would leave.

Must never: kill a process or remove an object that does not carry the id of a run that is over (or of
its own run, on EOF), or wait without a bound.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sim import netns
from sim.runlease import RunLease, known_runs, run_alive, run_lock_path

log = logging.getLogger(__name__)

MARKER = "MGHA_SIM_RUN"


def marker_env(run_id: str) -> dict[str, str]:
    """The environment entry that ties a process (and its children) to run `run_id`."""
    return {MARKER: run_id}


def marked_pids(run_id: str, exclude: set[int] | None = None) -> list[int]:
    """PIDs whose environment carries `MGHA_SIM_RUN=<run_id>` (read from /proc; root reads all)."""
    needle = f"{MARKER}={run_id}".encode()
    skip = {os.getpid(), *(exclude or set())}
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        if needle in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_marked(run_id: str, bound_s: float = 10.0) -> int:
    """SIGKILL every process of `run_id` until none is left (bounded). Returns how many were killed."""
    killed = 0
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        pids = marked_pids(run_id)
        if not pids:
            return killed
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.05)
    log.warning("event=marked_processes_left run=%s pids=%s", run_id, marked_pids(run_id))
    return killed


def clean_run(run_id: str, with_network: bool = True) -> dict[str, object]:
    """Kill the run's processes, then remove its network objects. Returns what was done and left."""
    killed = kill_marked(run_id)
    left = netns.remove_run_objects(run_id) if with_network else {}
    return {"killed": killed, "left": left}


def sweep_stale(with_network: bool = True) -> list[str]:
    """Clean every run whose owner is gone; return their ids. Objects of live runs are never touched."""
    candidates = set(known_runs())
    if with_network:
        candidates |= netns.runs_with_objects()
    swept = []
    for run_id in sorted(candidates):
        if run_alive(run_id):
            continue
        result = clean_run(run_id, with_network)
        with contextlib.suppress(OSError):
            run_lock_path(run_id).unlink()
        log.info("event=stale_run_swept run=%s killed=%s left=%s", run_id, result["killed"], result["left"])
        swept.append(run_id)
    return swept


class Reaper:
    """The parent's handle on the reaper process of one run."""

    def __init__(self, proc: subprocess.Popen[bytes], write_fd: int, run_id: str) -> None:
        self.proc, self._write_fd, self.run_id = proc, write_fd, run_id

    @classmethod
    def start(cls, lease: RunLease, with_network: bool, log_path: Path | None = None) -> Reaper:
        read_fd, write_fd = os.pipe()
        os.set_inheritable(read_fd, True)
        env = {k: v for k, v in os.environ.items() if k != MARKER}
        args = [sys.executable, "-m", "sim.reaper", lease.run_id,
                "--network" if with_network else "--no-network"]
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(args, stdin=read_fd, stdout=out, stderr=out, env=env,
                                    start_new_session=True, pass_fds=lease.fds,
                                    cwd=str(Path(__file__).resolve().parent.parent))
        finally:
            os.close(read_fd)
            if log_path:
                out.close()  # type: ignore[union-attr]
        os.set_inheritable(write_fd, False)
        return cls(proc, write_fd, lease.run_id)

    def close(self, timeout_s: float = 30.0) -> int | None:
        """Close the pipe (the reaper cleans up and exits) and wait for it, bounded."""
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("event=reaper_slow run=%s bound_s=%.0f", self.run_id, timeout_s)
            return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m sim.reaper <run-id> [--network|--no-network]", file=sys.stderr)
        return 2
    run_id, with_network = args[0], "--no-network" not in args[1:]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s reaper %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of the terminal is the run's, not ours
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass  # the run never writes; EOF comes when its last descriptor is closed
    result = clean_run(run_id, with_network)
    log.info("event=run_reaped run=%s killed=%s left=%s", run_id, result["killed"], result["left"])
    with contextlib.suppress(OSError):
        run_lock_path(run_id).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
