"""One leadership term at a time: the coordinator runs while this candidate leads, and only then.

Role: the one handler of leadership terms, used by the agent (`agent.runtime`) and by the standalone
coordinator (`ctl.standalone`). `started()` is the elector's on_started_leading: it first waits, bounded
by `previous_join_s`, until the previous term's coordinator loop has finished (it may still be finishing
a step that began while its term was alive, review M3; one that overruns is logged and can no longer
act, because its lease adapter is bound to its own term), then builds the new term's coordinator and
runs its loop on a thread. `stopped()` is the elector's on_stopped_leading: it stops and wakes the loop
and stops the term's pod watch on a side thread, because stopping the watch joins a stream read that can
last its request timeout + 2 s, and the Lease release that follows (hand-off, SIGTERM) must never wait
for that. `close()` ends the current term and refuses new ones (shutdown).

Must never: start a term's coordinator before the previous one's loop ended or its bounded wait ran out,
start one after `close()`, wait without a bound, block the Lease release on the pod watch, or call
`on_change` twice in a row with the same value.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from coordinator.edge.logs import log_event

log = logging.getLogger(__name__)

PREVIOUS_TERM_JOIN_S = 10.0  # how long a new term waits for the previous term's coordinator to finish


class TermCoordinator(Protocol):
    """What the runner needs of a term's coordinator (coordinator.runtime.reconciler.Coordinator)."""

    def run(self, stop: threading.Event) -> None: ...
    def wake(self) -> None: ...


class Watch(Protocol):
    """The term's pod watch (coordinator.edge.kube.KubeOps); `stop()` may block for its request timeout."""

    def stop(self) -> None: ...


class Handle(Protocol):
    """A started thread (or a test's stand-in)."""

    def join(self, timeout: float | None = None) -> None: ...
    def is_alive(self) -> bool: ...


C = TypeVar("C", bound=TermCoordinator)
Spawn = Callable[[Callable[[], None], str], Handle]


def spawn_daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """Run `target` on a new daemon thread named `name`."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class Term(Generic[C]):
    """One term's coordinator and its (started) pod watch."""

    coordinator: C
    watch: Watch


@dataclass
class _Running(Generic[C]):
    term: Term[C]
    stop: threading.Event


class TermRunner(Generic[C]):
    """Starts a term's coordinator on `started()`, stops it on `stopped()`; one term at a time.

    `build` makes the term's coordinator and starts its pod watch (called with the runner's lock held).
    `on_change(True/False)` reports leadership gained/lost (metrics, waiters); it runs under the lock, so
    it must be quick and must not call back into the runner.
    """

    def __init__(
        self,
        build: Callable[[], Term[C]],
        *,
        on_change: Callable[[bool], None] | None = None,
        previous_join_s: float = PREVIOUS_TERM_JOIN_S,
        spawn: Spawn = spawn_daemon,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._build = build
        self._on_change = on_change
        self._previous_join_s = previous_join_s
        self._spawn = spawn
        self._clock = clock
        self._lock = threading.Lock()
        self._current: _Running[C] | None = None
        self._loop: Handle | None = None
        self._closed = False
        self.leading = threading.Event()  # set while a term's coordinator exists
        self.terms = 0  # terms started so far

    @property
    def coordinator(self) -> C | None:
        """The current term's coordinator; None while not leading."""
        current = self._current
        return current.term.coordinator if current is not None else None

    def started(self) -> None:
        """A term began: wait (bounded) for the previous term's loop, then start this term's coordinator."""
        self._join_loop(self._previous_join_s, "the previous term's coordinator is still running")
        with self._lock:
            if self._current is not None or self._closed:
                return
            log_event(log, "leadership acquired: starting the coordinator", term=self.terms + 1)
            term = self._build()
            stop = threading.Event()
            self._current = _Running(term, stop)
            coordinator = term.coordinator
            self._loop = self._spawn(lambda: coordinator.run(stop), "coordinator")
            self.terms += 1
            self.leading.set()
            if self._on_change is not None:
                self._on_change(True)

    def stopped(self, join_s: float = 0.0) -> None:
        """The term ended: stop its coordinator now; with `join_s`, also wait (bounded) for its loop to end,
        so a Lease released right after cannot be acquired by another candidate while a command of ours
        is in flight."""
        with self._lock:
            running, self._current = self._current, None
            if running is not None:
                log_event(log, "leadership lost or released: stopping the coordinator", term=self.terms)
                self.leading.clear()
                running.stop.set()
                running.term.coordinator.wake()
                self._spawn(running.term.watch.stop, "pod-watch-stop")
                if self._on_change is not None:
                    self._on_change(False)
        if join_s > 0:
            self._join_loop(join_s, "the coordinator did not stop in time")

    def close(self, join_s: float = 0.0) -> None:
        """No more terms: stop the current one (waiting up to `join_s` for its loop)."""
        with self._lock:
            self._closed = True
        self.stopped(join_s)

    def _join_loop(self, bound_s: float, overrun: str) -> None:
        loop = self._loop
        if loop is None or loop is threading.current_thread() or not loop.is_alive():
            return
        start = self._clock()
        loop.join(bound_s)
        if loop.is_alive():
            log_event(log, f"{overrun}; it can no longer act", level=logging.WARNING,
                      waited_s=round(self._clock() - start, 3), bound_s=bound_s)
