"""Writers through the write Service, as applications write; and readers of what instances hold.

Role: `Writer` runs `threads` writer lanes sharing one real pooled neo4j driver (`bolt://`) per address
`resolve()` gives -- the write Service's cluster IP, where kube-proxy (`sim.kubeproxy`) sends every NEW
connection to the current MAIN and keeps an established one on the pod it reached -- and writes
`CREATE (:W {id, at})` in auto-commit transactions at a bounded rate, keeping its driver (and so its
pooled connections) across every fault, as an application does. Each call waits as long as the
driver's own timeouts allow (connection timeout, acquisition timeout; against Memgraph, which sends no
`connection.recv_timeout_seconds` hint, a query on a connection that went silent waits until TCP gives
up), so late acknowledgements are seen. As an application serving requests does, the writer does not
stop writing while a call hangs: a lane whose call is unanswered after `hung_after_s` is detached (it
keeps waiting, records the call's real outcome, then ends) and a new lane takes its place, so the next
writes go out on whatever the shared pool hands them -- an idle pooled connection (possibly to the
same silent pod: it hangs too and is detached in turn) or a NEW connection through the Service, exactly
as the neo4j driver grows its pool when no connection is idle. At most `max_detached` lanes hang at
once (then writing waits, as a saturated application does). With `reconnect_on_read_only` the writer
follows docs/operations.md's client guidance: a write answered "forbidden on the replica" makes it
close its driver and open a new one (the pooled connections stay pinned to a demoted MAIN otherwise);
without it (the default: harsher), those connections stay in the pool, as the neo4j driver keeps them.

Every attempt is recorded with its outcome (`classify`):
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

READ_ONLY_REPLICA = "forbidden on the replica"  # a write on a REPLICA (memgraph-replication.md 1.3)


@dataclass
class _Lane:
    """One writer thread and the attempt it has in flight."""

    index: int
    inflight: tuple[str, float, float, str] | None = None  # id, t0, wall t0, address
    abandoned: bool = False
    detached: bool = False  # hung: ends after its call's answer; another lane writes meanwhile
    thread: threading.Thread | None = field(default=None, repr=False)


def _running(lane: _Lane) -> bool:
    return lane.thread is not None and lane.thread.is_alive()


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
        hung_after_s: float = 0.5,
        max_detached: int = 64,
        reconnect_on_read_only: bool = False,
    ) -> None:
        if rate_hz <= 0 or threads < 1 or hung_after_s <= 0 or max_detached < 0:
            raise ValueError("rate_hz and hung_after_s must be > 0, threads >= 1, max_detached >= 0")
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
        self._threads = threads
        self._hung_after_s = hung_after_s
        self._max_detached = max_detached
        self._reconnect_on_read_only = reconnect_on_read_only
        self._lanes = [_Lane(i) for i in range(threads)]  # grows by one per detached lane (bounded)
        self._drivers: dict[Address, Driver] = {}
        self._logged_addr: Address | None = None
        self._watchdog: threading.Thread | None = None
        self._failing = False

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Writer:
        for lane in list(self._lanes):
            self._start_lane(lane)
        self._watchdog = threading.Thread(target=self._watch_hung, daemon=True,
                                          name=f"writer-{self.label}-hung")
        self._watchdog.start()
        return self

    def _start_lane(self, lane: _Lane) -> None:
        lane.thread = threading.Thread(target=self._run, args=(lane,), daemon=True,
                                       name=f"writer-{self.label}-{lane.index}")
        lane.thread.start()

    def _watch_hung(self) -> None:
        """Detach a lane whose call hangs longer than `hung_after_s`; start a new lane in its place."""
        poll = min(0.1, self._hung_after_s / 2)
        next_index = itertools.count(self._threads)
        saturated = False
        while not self._stop.wait(poll):
            now = time.monotonic()
            with self._lock:
                self._lanes = [ln for ln in self._lanes if not (ln.detached and not _running(ln))]
                lanes = list(self._lanes)
            hung = [ln for ln in lanes if not ln.detached and ln.inflight is not None
                    and now - ln.inflight[1] > self._hung_after_s]
            detached = sum(1 for ln in lanes if ln.detached)
            for lane in hung:
                if detached >= self._max_detached:
                    if not saturated:
                        log.info("event=writer_saturated label=%s hung=%d", self.label, detached)
                    saturated = True
                    break
                saturated = False
                detached += 1
                lane.detached = True
                fresh = _Lane(next(next_index))
                with self._lock:
                    self._lanes.append(fresh)
                log.debug("event=writer_lane_detached label=%s lane=%d new_lane=%d", self.label, lane.index,
                          fresh.index)
                self._start_lane(fresh)

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop writing; join the threads (bounded). A write still in flight then is recorded as
        unknown and its thread abandoned (its late answer is not recorded); drivers are closed."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        if self._watchdog is not None:
            self._watchdog.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            lanes = list(self._lanes)
        for lane in lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.0, deadline - time.monotonic()))
        for lane in lanes:
            with self._lock:
                hung = lane.thread is not None and lane.thread.is_alive() and lane.inflight is not None
                if hung and lane.inflight is not None:
                    wid, t0, w0, address = lane.inflight
                    lane.abandoned = True
                    self._attempts.append(self._attempt(wid, address, t0, w0, UNKNOWN, "InFlightAtStop",
                                                        "no answer yet when the writer stopped", ""))
            if hung:
                log.info("event=writer_abandoned label=%s lane=%d", self.label, lane.index)
        for drv in self._drivers.values():
            close_quietly(drv)
        self._drivers.clear()

    def pause(self, timeout_s: float = 10.0) -> bool:
        """No new write starts until `resume()`; wait (bounded) until none is in flight. The drivers and
        their pooled connections stay as they are. Returns False if a write was still in flight."""
        self._go.clear()
        deadline = time.monotonic() + timeout_s
        while any(lane.inflight is not None for lane in self.lanes_now()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def resume(self) -> None:
        self._go.set()

    def lanes_now(self) -> list[_Lane]:
        with self._lock:
            return list(self._lanes)

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
        next_t = started + (lane.index % self._threads) * self._period / self._threads
        self._stop.wait(max(0.0, next_t - started))
        while not self._stop.is_set() and time.monotonic() - started < self._max_duration_s:
            if not self._go.wait(0.1):
                continue
            self._attempt_once(lane)
            if lane.detached:
                return  # its place was taken while it hung
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
        driver = self._driver_for(addr)
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
            if self._reconnect_on_read_only and READ_ONLY_REPLICA in str(exc):
                self._renew_driver(addr, driver)
            return
        finally:
            lane.inflight = None
        self._record(lane, wid, address, t0, w0, ACKED, backend=backend)

    def _backend(self, session: Any) -> str:
        port = connection_port(session)
        if port is None or self._backend_of is None:
            return ""
        return self._backend_of(port) or ""

    def _driver_for(self, addr: Address) -> Driver:
        """The writer's pooled driver for `addr`, shared by every lane and kept across faults with its
        pooled connections, as an application keeps its driver (a new one only for a new address)."""
        with self._lock:
            drv = self._drivers.get(addr)
            if drv is None:
                pool = self._threads + self._max_detached
                drv = self._drivers[addr] = driver(addr[0], addr[1], self._user, self._password,
                                                   self._connect_timeout, pool)
                level = logging.DEBUG if addr == self._logged_addr else logging.INFO
                log.log(level, "event=writer_connect label=%s address=%s:%d", self.label, addr[0], addr[1])
                self._logged_addr = addr
        return drv

    def _renew_driver(self, addr: Address, old: Driver) -> None:
        """Close `old` (every pooled connection, in-flight calls on it fail) so the next write opens a
        new connection through the Service; once per driver, however many lanes saw the error."""
        with self._lock:
            if self._drivers.get(addr) is not old:
                return
            del self._drivers[addr]
        log.debug("event=writer_reconnect label=%s address=%s:%d reason=read_only_replica", self.label,
                  addr[0], addr[1])
        close_quietly(old)

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
