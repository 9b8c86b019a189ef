"""The elector's callback thread: on_started_leading / on_stopped_leading / on_new_leader.

Role: run the callbacks off the renewing thread, in order, one round at a time, so a slow callback never
delays a renewal; and fire `on_stopped_leading` by itself when the renew deadline passes, because the
renewing thread may be stuck in an API call at that moment (leadership must end on time regardless).

Must never: call the API server, or run two callbacks at once.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from coordinator.edge.logs import log_event

log = logging.getLogger("coordinator.edge.election")


class Notice(enum.Enum):
    """What the elector tells its callback thread."""

    STARTED = "started"  # value: the term that began
    STOPPED = "stopped"  # value: the term that ended
    NEW_LEADER = "new_leader"  # value: the holder now seen
    WAKE = "wake"  # no value: look again (stop)


class ElectorView(Protocol):
    """What the notifier reads of its elector."""

    identity: str

    @property
    def config(self) -> _Timings: ...

    def lease_valid_for(self) -> float: ...

    def term_alive(self, term: int) -> bool: ...


class _Timings(Protocol):
    @property
    def retry_period_s(self) -> float: ...


class Notifier:
    """Runs the callbacks on their own thread, so a slow callback never delays a renewal.

    It also fires `on_stopped_leading` by itself when the renew deadline passes, because the elector's
    thread may be stuck in an API call at that moment.
    """

    def __init__(self, elector: ElectorView, started: Callable[[], None] | None,
                 stopped: Callable[[], None] | None, new_leader: Callable[[str], None] | None) -> None:
        self._elector = elector
        self._callbacks = (started, stopped, new_leader)
        self._queue: queue.Queue[tuple[Notice, object]] = queue.Queue()
        self._notified_term: int | None = None
        self._lock = threading.Lock()  # one round at a time (thread or a test's drain())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def post(self, kind: Notice, value: object) -> None:
        self._queue.put((kind, value))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"elector-cb-{self._elector.identity}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        self._queue.put((Notice.WAKE, None))
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.drain()

    def drain(self, lock_timeout_s: float = 5.0) -> None:
        """Run every pending callback and the deadline check now, on the calling thread (bounded)."""
        self.run_once(0.0, lock_timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            period = self._elector.config.retry_period_s
            wait = min(self._elector.lease_valid_for(), period) if self._notified_term is not None else period
            try:
                self.run_once(max(wait, 0.0) + 0.001)
            except Exception:
                log.exception("election callback round failed",
                              extra={"fields": {"elector": self._elector.identity}})

    def run_once(self, timeout_s: float, lock_timeout_s: float = -1) -> None:
        events: list[tuple[Notice, object]] = []
        try:
            events.append(self._queue.get(timeout=timeout_s) if timeout_s > 0 else self._queue.get_nowait())
            while True:
                events.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        if not self._lock.acquire(timeout=lock_timeout_s):
            log_event(log, "an election callback is still running; events left queued",
                      level=logging.WARNING, elector=self._elector.identity, queued=len(events))
            for event in events:
                self._queue.put(event)
            return
        try:
            for kind, value in events:
                self._handle(kind, value)
            if self._notified_term is not None and not self._elector.term_alive(self._notified_term):
                self._fire_stopped()
        finally:
            self._lock.release()

    def _handle(self, kind: Notice, value: object) -> None:
        started, _stopped, new_leader = self._callbacks
        if kind is Notice.NEW_LEADER and new_leader is not None:
            self._call("on_new_leader", lambda: new_leader(str(value)))
        elif kind is Notice.STOPPED and value == self._notified_term:
            self._fire_stopped()
        elif kind is Notice.STARTED and isinstance(value, int):
            if self._notified_term is not None and self._notified_term != value:
                self._fire_stopped()
            if self._notified_term is None and self._elector.term_alive(value):
                self._notified_term = value
                if started is not None:
                    self._call("on_started_leading", started)

    def _fire_stopped(self) -> None:
        self._notified_term = None
        stopped = self._callbacks[1]
        if stopped is not None:
            self._call("on_stopped_leading", stopped)

    def _call(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("election callback raised",
                          extra={"fields": {"elector": self._elector.identity, "callback": name}})
