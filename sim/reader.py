"""A reader through the read Service, recording which pod answered each read.

Role: one thread with one real pooled neo4j driver to the read Service's address (as a read-only
application would use it: new connections follow the Service's endpoints, pooled ones stay where they
went), running `MATCH (n:<label>) RETURN count(n)` at a bounded rate and recording for every read
(`sim.timeline.ReadAttempt`) the pod its connection reached (kube-proxy's connection table) and whether
it was answered. `sim.check.check_reads` then judges that no read reached a pod that was neither a
ready replica nor the MAIN (allowing the EndpointSlice propagation delay).

Must never: give up on a call before the driver does, or write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from neo4j import Driver

from sim.bolt_client import (
    DRIVER_CONNECT_TIMEOUT_S,
    Address,
    check_label,
    close_quietly,
    connection_port,
    driver,
)
from sim.timeline import ReadAttempt

log = logging.getLogger(__name__)


class Reader:
    def __init__(self, resolve: Callable[[], Address | None], backend_of: Callable[[int], str | None],
                 user: str = "", password: str = "", label: str = "W", rate_hz: float = 5.0,
                 connect_timeout: float = DRIVER_CONNECT_TIMEOUT_S, max_duration_s: float = 3600.0) -> None:
        self._resolve, self._backend_of = resolve, backend_of
        self._user, self._password = user, password
        self._query = f"MATCH (n:{check_label(label)}) RETURN count(n) AS c"
        self._period, self._connect_timeout, self._max_s = 1.0 / rate_hz, connect_timeout, max_duration_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._reads: list[ReadAttempt] = []
        self._driver: Driver | None = None
        self._thread = threading.Thread(target=self._run, name="reader", daemon=True)

    def start(self) -> Reader:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop reading (a read still in flight is dropped: it proves nothing) and close the driver."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self._driver is not None:
            close_quietly(self._driver)

    @property
    def reads(self) -> list[ReadAttempt]:
        with self._lock:
            return list(self._reads)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - started < self._max_s:
            self._read_once()
            self._stop.wait(self._period)

    def _read_once(self) -> None:
        addr = self._resolve()
        if addr is None:
            return
        if self._driver is None:
            self._driver = driver(addr[0], addr[1], self._user, self._password, self._connect_timeout, 1)
        t0, backend = time.monotonic(), ""
        try:
            with self._driver.session() as session:
                result = session.run(self._query)
                port = connection_port(session)
                backend = (self._backend_of(port) or "") if port is not None else ""
                result.consume()
        except Exception as exc:  # a failed read is recorded, not raised
            if not self._stop.is_set():
                self._add(ReadAttempt(t0, time.monotonic(), backend, False, type(exc).__name__))
            return
        self._add(ReadAttempt(t0, time.monotonic(), backend, True))

    def _add(self, read: ReadAttempt) -> None:
        with self._lock:
            self._reads.append(read)
