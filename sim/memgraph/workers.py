"""Memgraph's Bolt worker pool: `--bolt-num-workers` mixed workers plus one high-priority worker.

Role: decide when a Bolt session may run, the way Memgraph 3.3+ schedules sessions with its default
`--scheduler=priority_queue` (read at memgraph/memgraph df0f636, after v3.12.0):
- `src/memgraph.cpp:859-870`: a `PriorityThreadPool` with `--bolt-num-workers` mixed-work threads (default
  the number of cores, `src/flags/bolt.cpp:29`) and ONE high-priority thread; sockets are read by a single
  I/O thread, so connections are always accepted and never refused for lack of workers.
- `src/communication/v2/session.hpp:390-413`: each time a session has input, one task is queued; it runs
  while input is buffered (pipelined RUN+PULL in one task) and ends when the session waits for the client,
  so an idle session holds no worker. A long query holds its worker for its whole execution.
- `src/glue/SessionHL.cpp:231-266`: the task's priority. A session that is not streaming a result
  (handshake, HELLO/LOGON, RESET, BEGIN/COMMIT/ROLLBACK, the parse step of RUN) is HIGH. Once a RUN is
  parsed, Cypher and transaction queries are LOW; only SHOW REPLICATION ROLE / SHOW REPLICAS
  (ReplicationInfoQuery), SHOW VERSION and a few other SHOW/setting queries are HIGH. PULL/DISCARD run at
  the query's priority, LOW inside an explicit transaction.
- `src/utils/priority_thread_pool.cpp`: a task goes to a free mixed worker; the high-priority thread takes
  only HIGH tasks, and only those the 100 ms monitor finds stuck behind a busy mixed worker. A HIGH task
  parsed on the high-priority thread that turns out LOW is rescheduled as LOW (session.hpp:397).
So when every mixed worker runs a long query, LOW work (every read and write, REGISTER, SET ROLE,
SHOW STORAGE INFO) queues until one is free, while SHOW REPLICATION ROLE is still answered by the
high-priority worker after one or two monitor ticks (emulated: 0.2 s, the harsher end).

Emulation: one shared queue (HIGH before LOW, oldest first) instead of Memgraph's per-worker queues
with work stealing; a queued LOW task therefore starts the moment any mixed worker frees, where
Memgraph may need one monitor tick (<= 0.2 s) to move it. `occupy` makes workers busy for a time, as
long analytical queries would (a test control).

Must never: let a LOW task use the high-priority worker, wait without a bound, or lose a slot on error.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
HP_STEAL_AFTER_S = 0.2  # the monitor runs every 100 ms and needs one full interval to call a worker stuck
MAX_WAIT_S = 3600.0  # Memgraph waits forever; the emulator logs and gives up after an hour


class Priority(enum.IntEnum):
    LOW = 0
    HIGH = 1


class WorkerWaitTimeout(RuntimeError):
    """No worker became free within MAX_WAIT_S (the session is closed)."""


@dataclass
class _Waiter:
    priority: Priority
    seq: int
    since: float = field(default_factory=time.monotonic)


class Task:
    """A session's hold on one worker; `reschedule(LOW)` moves a parsed LOW query off the HP worker."""

    def __init__(self, pool: BoltWorkers, priority: Priority) -> None:
        self.pool = pool
        self.hp = pool._acquire(priority)

    def reschedule(self, priority: Priority) -> None:
        """session.hpp:397: a task on the high-priority thread whose query is LOW is queued again as LOW."""
        if self.hp and priority == Priority.LOW:
            self.pool._release(self.hp)
            self.hp = self.pool._acquire(Priority.LOW)

    def release(self) -> None:
        self.pool._release(self.hp)


class BoltWorkers:
    """`mixed` workers for any task plus one high-priority worker for HIGH tasks only."""

    def __init__(self, mixed: int) -> None:
        if mixed < 1:
            raise ValueError("--bolt-num-workers must be at least 1")
        self.mixed = mixed
        self.busy_mixed = 0
        self.busy_hp = False
        self._cond = threading.Condition()
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()

    @contextlib.contextmanager
    def task(self, priority: Priority) -> Iterator[Task]:
        t = Task(self, priority)
        try:
            yield t
        finally:
            t.release()

    def _acquire(self, priority: Priority) -> bool:
        """Wait for a worker; returns True when the high-priority worker was given."""
        me = _Waiter(priority, next(self._seq))
        with self._cond:
            self._waiters.append(me)
            try:
                while True:
                    granted = self._grant(me)
                    if granted is not None:
                        return granted
                    waited = time.monotonic() - me.since
                    if waited > MAX_WAIT_S:
                        log.error("no Bolt worker free for %.0f s; closing the session", waited)
                        raise WorkerWaitTimeout("no Bolt worker became free")
                    steal_in = HP_STEAL_AFTER_S - waited
                    self._cond.wait(timeout=steal_in if priority == Priority.HIGH and steal_in > 0 else 1.0)
            finally:
                self._waiters.remove(me)
                self._cond.notify_all()

    def _grant(self, me: _Waiter) -> bool | None:
        first_of_mine = min((w for w in self._waiters if w.priority == me.priority), key=lambda w: w.seq)
        if first_of_mine is not me:
            return None
        high_waiting = any(w.priority == Priority.HIGH for w in self._waiters)
        if self.busy_mixed < self.mixed and (me.priority == Priority.HIGH or not high_waiting):
            self.busy_mixed += 1
            return False
        stuck = time.monotonic() - me.since >= HP_STEAL_AFTER_S
        if me.priority == Priority.HIGH and not self.busy_hp and stuck:
            self.busy_hp = True
            return True
        return None

    def _release(self, hp: bool) -> None:
        with self._cond:
            if hp:
                self.busy_hp = False
            else:
                self.busy_mixed -= 1
            self._cond.notify_all()

    def occupy(self, workers: int, seconds: float) -> None:
        """Test control: `workers` LOW tasks that each hold a mixed worker for `seconds` (queued like
        any long query when the pool is busy). Returns at once."""
        for i in range(max(0, workers)):
            threading.Thread(target=self._hold, args=(seconds,), name=f"busy-worker-{i}", daemon=True).start()
        log.warning("test control: %d Bolt worker(s) busy for %.1f s", workers, seconds)

    def _hold(self, seconds: float) -> None:
        with self.task(Priority.LOW):
            time.sleep(max(0.0, seconds))

    def stats(self) -> dict[str, int | bool]:
        with self._cond:
            return {"workers": self.mixed, "busy": self.busy_mixed, "high_priority_busy": self.busy_hp,
                    "queued": len(self._waiters),
                    "queued_low": sum(1 for w in self._waiters if w.priority == Priority.LOW)}
