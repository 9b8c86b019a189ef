"""Writers through the write Service, as applications write; and readers of what instances hold.

Role: `Writer` runs `threads` writer threads; each owns one real pooled neo4j driver (`bolt://`) to
the address `resolve()` gives -- the write Service's cluster IP, where kube-proxy (`sim.kubeproxy`) sends
every NEW connection to the current MAIN and keeps an established one on the pod it reached -- and
writes `CREATE (:W {id, at})` in auto-commit transactions at a bounded rate, keeping its driver (and so
its pooled connections) across every fault, as an application does. Each call waits as long as the
driver's own timeouts allow (connection timeout, acquisition timeout; against Memgraph, which sends no
`connection.recv_timeout_seconds` hint, a query on a connection that went silent waits until TCP gives
up), so late acknowledgements are seen. Every attempt is recorded with its outcome (`classify`):
acknowledged, failed (a definite error before any commit: no endpoint, connect refused or timed out,
the server's FAILURE) or unknown (the connection was lost or cut after the query was sent, or the
attempt was still in flight when the writer stopped), and with the pod its connection reached
(`backend_of`, from kube-proxy's connection table). The records are the evidence for I3 (acknowledged
ids are required, failed ones forbidden, unknown ones neither) and the write pauses (last ack on the
old MAIN to first ack on the new one, as CloudNativePG measures it). `read_ids` and
`collect_final_ids` read back what each instance holds.

Must never: retry a write under the same id (each attempt is its own id), give up on a call before the
driver does, record one attempt twice, or log a password.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neo4j import Driver

from sim.bolt_client import (
    DRIVER_CONNECT_TIMEOUT_S,
    Address,
    check_label,
    classify,
    close_quietly,
    connection_port,
    driver,
)
from sim.readback import CallTimeout, collect_final_ids, read_ids
from sim.timeline import (
    ACKED,
    ERROR,
    UNKNOWN,
    ErrorWindow,
    WriteAttempt,
    WritePause,
    error_windows,
    write_pauses,
)

log = logging.getLogger(__name__)
__all__ = ["CallTimeout", "Writer", "classify", "collect_final_ids", "read_ids"]  # re-exported for callers

@dataclass
class _Lane:
    """One writer thread: its driver and the attempt it has in flight."""

    index: int
    driver: Driver | None = None
    address: Address | None = None
    inflight: tuple[str, float, float, str] | None = None  # id, t0, wall t0, address
    abandoned: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)


class Writer:
    """Writes through `resolve()` at `rate_hz` (all threads together) until `stop()`; see the module
    docstring. `backend_of(local_port)` names the pod a connection reached (None: not known)."""

    def __init__(
        self,
        resolve: Callable[[], Address | None],
        user: str = "",
        password: str = "",
        label: str = "W",
        rate_hz: float = 50.0,
        connect_timeout: float = DRIVER_CONNECT_TIMEOUT_S,
        max_duration_s: float = 3600.0,
        threads: int = 1,
        backend_of: Callable[[int], str | None] | None = None,
        id_prefix: str | None = None,
    ) -> None:
        if rate_hz <= 0 or threads < 1:
            raise ValueError("rate_hz must be > 0 and threads >= 1")
        self._resolve = resolve
        self._user = user
        self._password = password
        self.label = check_label(label)
        self.id_prefix = id_prefix if id_prefix is not None else label.lower()  # ids unique per writer
        self._period = threads / rate_hz
        self._connect_timeout = connect_timeout
        self._max_duration_s = max_duration_s
        self._backend_of = backend_of
        self._query = f"CREATE (:{self.label} {{id: $id, at: $at}})"
        self._stop = threading.Event()
        self._go = threading.Event()  # cleared by pause(): no new attempt starts
        self._go.set()
        self._lock = threading.Lock()
        self._attempts: list[WriteAttempt] = []
        self._ids = itertools.count(1)
        self._lanes = [_Lane(i) for i in range(threads)]
        self._logged_addr: Address | None = None
        self._failing = False

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Writer:
        for lane in self._lanes:
            lane.thread = threading.Thread(target=self._run, args=(lane,), daemon=True,
                                           name=f"writer-{self.label}-{lane.index}")
            lane.thread.start()
        return self

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop writing; join the threads (bounded). A write still in flight then is recorded as
        unknown and its thread abandoned (its late answer is not recorded); drivers are closed."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.0, deadline - time.monotonic()))
        for lane in self._lanes:
            with self._lock:
                hung = lane.thread is not None and lane.thread.is_alive() and lane.inflight is not None
                if hung and lane.inflight is not None:
                    wid, t0, w0, address = lane.inflight
                    lane.abandoned = True
                    self._attempts.append(self._attempt(wid, address, t0, w0, UNKNOWN, "InFlightAtStop",
                                                        "no answer yet when the writer stopped", ""))
            if hung:
                log.info("event=writer_abandoned label=%s lane=%d", self.label, lane.index)
            if lane.driver is not None:
                close_quietly(lane.driver)
                lane.driver = None

    def pause(self, timeout_s: float = 10.0) -> bool:
        """No new write starts until `resume()`; wait (bounded) until none is in flight. The drivers and
        their pooled connections stay as they are. Returns False if a write was still in flight."""
        self._go.clear()
        deadline = time.monotonic() + timeout_s
        while any(lane.inflight is not None for lane in self._lanes):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def resume(self) -> None:
        self._go.set()

    def __enter__(self) -> Writer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- results --------------------------------------------------------------------------------

    @property
    def attempts(self) -> list[WriteAttempt]:
        with self._lock:
            return list(self._attempts)

    def acked_ids(self) -> set[str]:
        return {a.id for a in self.attempts if a.acked}

    def ids_with(self, outcome: str) -> set[str]:
        return {a.id for a in self.attempts if a.outcome == outcome}

    def write_pauses(self, threshold_s: float = 0.5) -> list[WritePause]:
        return write_pauses(self.attempts, threshold_s)

    def error_windows(self) -> list[ErrorWindow]:
        return error_windows(self.attempts)

    def wait_acks(self, count: int, timeout_s: float) -> bool:
        """Wait (bounded) until at least `count` writes were acknowledged in total."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.acked_ids()) >= count:
                return True
            time.sleep(0.01)
        return len(self.acked_ids()) >= count

    def to_json(self) -> list[dict[str, object]]:
        """The attempts as JSON-ready dicts (the Timeline holds them typed)."""
        import dataclasses

        return [dataclasses.asdict(a) for a in self.attempts]

    # ---- the loop -------------------------------------------------------------------------------

    def _run(self, lane: _Lane) -> None:
        started = time.monotonic()
        next_t = started + lane.index * self._period / len(self._lanes)
        self._stop.wait(max(0.0, next_t - started))
        while not self._stop.is_set() and time.monotonic() - started < self._max_duration_s:
            if not self._go.wait(0.1):
                continue
            self._attempt_once(lane)
            next_t = max(next_t + self._period, time.monotonic())
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def _attempt_once(self, lane: _Lane) -> None:
        wid = f"{self.id_prefix}{next(self._ids)}"
        t0, w0 = time.monotonic(), time.time()
        try:
            addr = self._resolve()
        except Exception as exc:
            log.warning("event=resolve_failed error=%s detail=%s", type(exc).__name__, exc)
            addr = None
        if addr is None:
            self._record(lane, wid, "", t0, w0, ERROR, "NoEndpoint", "the client Service has no endpoint")
            return
        address = f"{addr[0]}:{addr[1]}"
        driver = self._driver_for(lane, addr)
        lane.inflight = (wid, t0, w0, address)
        backend = ""
        try:
            with driver.session() as session:
                result = session.run(self._query, id=wid, at=w0)
                backend = self._backend(session)
                result.consume()
        except Exception as exc:  # any failure is an outcome of this attempt, recorded below
            outcome, err = classify(exc), type(exc).__name__
            self._record(lane, wid, address, t0, w0, outcome, err, str(exc)[:300], backend)
            return
        finally:
            lane.inflight = None
        self._record(lane, wid, address, t0, w0, ACKED, backend=backend)

    def _backend(self, session: Any) -> str:
        port = connection_port(session)
        if port is None or self._backend_of is None:
            return ""
        return self._backend_of(port) or ""

    def _driver_for(self, lane: _Lane, addr: Address) -> Driver:
        """The lane's driver; a new one only when the Service address itself changed (kept across
        faults otherwise, with its pooled connections, as an application keeps its driver)."""
        if lane.driver is None or lane.address != addr:
            if lane.driver is not None:
                close_quietly(lane.driver)
            lane.driver = driver(addr[0], addr[1], self._user, self._password, self._connect_timeout, 1)
            level = logging.DEBUG if addr == self._logged_addr else logging.INFO
            log.log(level, "event=writer_connect label=%s lane=%d address=%s:%d", self.label, lane.index,
                    addr[0], addr[1])
            lane.address = self._logged_addr = addr
        return lane.driver

    def _attempt(self, wid: str, address: str, t0: float, w0: float, outcome: str, err: str, msg: str,
                 backend: str) -> WriteAttempt:
        tail = wid[len(self.id_prefix):]
        seq = int(tail) if tail.isdigit() else 0
        return WriteAttempt(wid, seq, address, t0, time.monotonic(), w0, time.time(), outcome, err, msg,
                            backend)

    def _record(self, lane: _Lane, wid: str, address: str, t0: float, w0: float, outcome: str,
                err: str = "", msg: str = "", backend: str = "") -> None:
        with self._lock:
            if lane.abandoned:
                return  # recorded as unknown at stop(); a late answer is not the run's evidence
            self._attempts.append(self._attempt(wid, address, t0, w0, outcome, err, msg, backend))
        failed = outcome != ACKED
        if failed and not self._failing:
            log.info("event=write_errors_begin label=%s id=%s address=%s outcome=%s error=%s detail=%s",
                     self.label, wid, address, outcome, err, msg)
        elif failed:
            log.debug("event=write_error id=%s address=%s outcome=%s error=%s", wid, address, outcome, err)
        elif self._failing:
            log.info("event=write_errors_end label=%s id=%s address=%s", self.label, wid, address)
        self._failing = failed
