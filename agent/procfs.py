"""The pod's Memgraph process, as the agent sees it through the pod's shared process namespace.

Role: find the Memgraph process(es) of THIS pod among every process the agent can see, say whether it
runs or is stopped (SIGSTOP, a frozen VM: every thread in state `T`), and kill it for good (SIGKILL) and
confirm that it is gone. The chart sets `shareProcessNamespace: true` when the HA agent is on, so the
agent sees the memgraph container's processes in its own /proc (Kubernetes "Share Process Namespace
between Containers in a Pod"); both containers run as the chart's `memgraphUserId`, so kill(2) is
permitted without any capability (same real UID, man 2 kill), and /proc/<pid>/cmdline and /stat are
readable by that UID.

Which process is ours: the one whose command line carries `--data-directory <dir>` (or `=<dir>`) with
`dir` the pod's Memgraph data directory (MEMGRAPH_DATA_DIRECTORY; the chart passes
`--data-directory=/var/lib/memgraph/mg_data`). In the emulated cluster several pods' Memgraphs run on
one host, each with its own data directory, so the same rule picks the right one there.

`ProcessTable` is the small interface (pids, command line, thread states); `ProcFS` reads /proc. Tests
pass a table of their own.

Must never: signal a process whose command line does not name this pod's data directory, wait without
a bound, or raise on a process that vanished while being read (that is the normal race of /proc).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

DATA_DIR_FLAG = "--data-directory"
STOPPED_STATES = frozenset({"T", "t"})  # stopped by a signal / by a tracer
GONE_STATES = frozenset({"Z", "X"})  # zombie (exited, not yet reaped) / dead


class ProcessTable(Protocol):
    """What the agent reads about processes. Every method answers None/[] for a vanished process."""

    def pids(self) -> list[int]: ...
    def cmdline(self, pid: int) -> list[str] | None: ...
    def thread_states(self, pid: int) -> list[str]: ...


class ProcFS:
    """`ProcessTable` over a procfs mount (default /proc)."""

    def __init__(self, root: str | Path = "/proc") -> None:
        self.root = Path(root)

    def pids(self) -> list[int]:
        try:
            return sorted(int(e.name) for e in os.scandir(self.root) if e.name.isdigit())
        except OSError:
            return []

    def cmdline(self, pid: int) -> list[str] | None:
        try:
            raw = (self.root / str(pid) / "cmdline").read_bytes()
        except OSError:
            return None
        return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]

    def thread_states(self, pid: int) -> list[str]:
        """The state letter of every thread (`/proc/<pid>/task/*/stat`, the field after the `(comm)`)."""
        states: list[str] = []
        try:
            tasks = list((self.root / str(pid) / "task").iterdir())
        except OSError:
            return []
        for task in tasks:
            try:
                stat = (task / "stat").read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            after = stat.rsplit(")", 1)[-1].split()
            if after:
                states.append(after[0])
        return states


def names_data_dir(argv: Sequence[str], data_dir: str) -> bool:
    """True when `argv` passes `--data-directory` with exactly `data_dir` (trailing slashes ignored)."""
    want = data_dir.rstrip("/") or "/"
    for i, arg in enumerate(argv):
        value = None
        if arg == DATA_DIR_FLAG and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(DATA_DIR_FLAG + "="):
            value = arg.split("=", 1)[1]
        if value is not None and (value.rstrip("/") or "/") == want:
            return True
    return False


def state_of(states: Sequence[str]) -> str:
    """`gone`, `stopped` (every thread stopped) or `running` for one process's thread states."""
    live = [s for s in states if s not in GONE_STATES]
    if not live:
        return "gone"
    return "stopped" if all(s in STOPPED_STATES for s in live) else "running"


@dataclass(frozen=True)
class ProcessView:
    """This pod's Memgraph processes now: their pids and one state for all (`none` when there is none)."""

    pids: tuple[int, ...]
    state: str  # none | running | stopped | gone


class MemgraphProcesses:
    """Finds, reads and kills the Memgraph of one pod (the one that uses `data_dir`)."""

    def __init__(self, data_dir: str, table: ProcessTable | None = None, me: int | None = None,
                 kill: Callable[[int, int], None] = os.kill,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.data_dir = data_dir
        self.table = table or ProcFS()
        self.me = os.getpid() if me is None else me
        self._kill, self.clock, self.sleep = kill, clock, sleep
        self.seen = False  # this pod's Memgraph was found at least once (the view of it works)

    def find(self) -> list[int]:
        """Pids of the live processes that name this pod's data directory (never the agent itself)."""
        found = []
        for pid in self.table.pids():
            if pid == self.me:
                continue
            if self._alive(pid):
                found.append(pid)
        self.seen = self.seen or bool(found)
        return found

    def _alive(self, pid: int) -> bool:
        argv = self.table.cmdline(pid)
        return bool(argv) and names_data_dir(argv or [], self.data_dir) and \
            state_of(self.table.thread_states(pid)) != "gone"

    def view(self) -> ProcessView:
        pids = self.find()
        if not pids:
            return ProcessView((), "none")
        states = {state_of(self.table.thread_states(p)) for p in pids}
        state = "running" if "running" in states else "stopped" if "stopped" in states else "gone"
        return ProcessView(tuple(pids), state)

    def kill_and_confirm(self, timeout_s: float = 5.0, poll_s: float = 0.05) -> tuple[bool, tuple[int, ...]]:
        """SIGKILL every process of this pod's Memgraph, then wait (bounded) until none is left.

        Returns (gone, the pids signalled). SIGKILL ends a stopped process too (it is never held by a
        stop). A pid that vanished between the scan and the signal is already what we want."""
        pids = tuple(self.find())
        for pid in pids:
            try:
                self._kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        deadline = self.clock() + timeout_s
        while True:
            # the signalled processes, not "none at all": the kubelet may already have started a new
            # Memgraph (restartPolicy Always), which recovers from disk and never held the paused commit
            if not any(self._alive(pid) for pid in pids):
                return True, pids
            if self.clock() >= deadline:
                return False, pids
            self.sleep(poll_s)
