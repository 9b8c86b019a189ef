"""Test-only controls of the emulator's commit path: crash or freeze the process at a chosen step.

Role: let a test put an emulated MAIN exactly into one of the windows of reference memgraph-replication
7.2. A control is armed through the admin server (`POST /commit-fault`, never through Bolt) for the next
write commit(s) and fires when the commit path reaches its step:
- `wal_written`: the transaction is in the local WAL (commit=false in a two-phase commit), nothing shipped;
- `votes_in`: every STRICT_SYNC replica voted yes (or, without one, every SYNC replica confirmed), the
  local commit (7.1 step 5) has not happened;
- `local_commit`: visible locally, no FinalizeCommit sent yet;
- `finalized`: every FinalizeCommit answered, the client not yet.
The action is `crash` (SIGKILL of its own process: exactly a kill -9, the OS keeps what was written) or
`stop` (SIGSTOP of its own process: a paused VM or a frozen node; the test resumes it with SIGCONT, and
the commit carries on from that point, as a real paused process would).

Must never: fire without being armed, be reachable from a Bolt query, or stay armed after it fired
`times` times.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
STEPS = ("wal_written", "votes_in", "local_commit", "finalized")
ACTIONS = ("crash", "stop")


@dataclass
class _Armed:
    step: str
    action: str
    times: int


class CommitFaults:
    """At most one armed commit fault per instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: _Armed | None = None

    def arm(self, step: str, action: str, times: int = 1) -> None:
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._armed = _Armed(step, action, times)
        log.warning("test control: commit fault armed: %s at %s (%d time(s))", action, step, times)

    def clear(self) -> None:
        with self._lock:
            self._armed = None

    def reached(self, step: str) -> None:
        """Called by the commit path at each step; fires the armed action there."""
        with self._lock:
            armed = self._armed
            if armed is None or armed.step != step:
                return
            armed.times -= 1
            if armed.times <= 0:
                self._armed = None
        log.warning("test control: commit fault fires: %s at %s", armed.action, step)
        for handler in logging.getLogger().handlers:
            handler.flush()
        # Directed at this thread: a process-directed signal goes to the main thread, and the committing
        # thread could run on (finalize, answer) until the main thread is scheduled to stop them all.
        sig = signal.SIGKILL if armed.action == "crash" else signal.SIGSTOP
        signal.pthread_kill(threading.get_ident(), sig)

    def as_dict(self) -> dict[str, Any] | None:
        with self._lock:
            a = self._armed
            return None if a is None else {"step": a.step, "action": a.action, "times": a.times}
