"""Memgraph's replication-state lock: readers block, writers only try (reference memgraph-replication 1.3).

Role: the `utils::Synchronized<ReplicationState, RWSpinLock>` of Memgraph (memgraph/memgraph v3.12.0):
- every write commit holds a READ lock for its whole replication (`src/query/interpreter.cpp`, Commit:
  `repl_state->ReadLock()` around `PrepareForCommitPhase`), as do SHOW REPLICATION ROLE and SHOW REPLICAS
  (`replication_handler.cpp:389`, `:511`): they wait while a writer holds it;
- REGISTER, DROP and SET REPLICATION ROLE only TRY the write lock (`TryRegisterReplica`,
  `UnregisterReplica_`, `TrySetReplicationRoleReplica`, `DoToMainPromotion`: `repl_state_.TryLock()`), so
  they fail at once ("Error: 6", "... lack of unique access ...", "Couldn't set ... role ...!") while a
  commit is in flight, and a REGISTER waiting on an unreachable replica holds the lock, so every commit
  and every SHOW REPLICATION ROLE on that MAIN waits with it;
- the replica's PrepareCommit handler only tries a read lock (`replication_handlers.cpp:410-425`), so it
  votes no while a promotion holds the write lock.

Must never: let a writer in while a reader holds the lock, or wait without a bound.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)
MAX_READ_WAIT_S = 600.0  # Memgraph waits forever; the emulator logs and gives up after ten minutes


class StateLockTimeout(RuntimeError):
    """A reader waited MAX_READ_WAIT_S for a writer."""


class ReplStateLock:
    """Readers share; one writer excludes everyone; writers never wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer: int | None = None  # thread id holding the write lock

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """Blocking read lock (a thread holding the write lock may also read)."""
        me = threading.get_ident()
        with self._cond:
            t0 = time.monotonic()
            while self._writer is not None and self._writer != me:
                if time.monotonic() - t0 > MAX_READ_WAIT_S:
                    log.error("replication state locked by a writer for %.0f s", MAX_READ_WAIT_S)
                    raise StateLockTimeout("replication state lock not released")
                self._cond.wait(timeout=1.0)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    def try_read(self) -> bool:
        with self._cond:
            if self._writer is not None:
                return False
            self._readers += 1
            return True

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    @contextlib.contextmanager
    def try_write(self) -> Iterator[bool]:
        """Yields whether the write lock was taken (never waits)."""
        me = threading.get_ident()
        with self._cond:
            got = self._writer is None and self._readers == 0
            if got:
                self._writer = me
        try:
            yield got
        finally:
            if got:
                with self._cond:
                    self._writer = None
                    self._cond.notify_all()
