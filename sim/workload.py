"""A writer through the client Service, recording every attempt; and readers of what instances hold.

Role: `Writer` is a thread that writes `CREATE (:W {id, at})` in auto-commit transactions with the real
neo4j driver over `bolt://` to whatever pod the client Service routes to right now (`resolve()`, as
kube-proxy would), at a bounded rate, and records every attempt (id, times, address, outcome). The
records are the evidence for I3 (acknowledged ids) and the measure of write pauses (last ack on the
old MAIN to first ack on the new one, as CloudNativePG measures it). `read_ids` and
`collect_final_ids` read back what each instance holds.

Must never: retry a write under the same id (each attempt is its own id), block without a bound (every
driver call runs on a helper thread and is abandoned after its timeout), or log a password.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from neo4j import Driver, GraphDatabase

from sim.timeline import ACKED, ERROR, ErrorWindow, WriteAttempt, WritePause, error_windows, write_pauses

log = logging.getLogger(__name__)

Address = tuple[str, int]
T = TypeVar("T")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CallTimeout(Exception):
    """A driver call did not finish within its bound; the call was abandoned."""


def _bounded(fn: Callable[[], T], timeout_s: float, name: str) -> T:
    """Run `fn` on a daemon thread and wait at most `timeout_s` (a hung socket cannot hang the caller)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    th = threading.Thread(target=run, name=name, daemon=True)
    th.start()
    th.join(timeout_s)
    if th.is_alive():
        raise CallTimeout(f"{name} did not finish within {timeout_s:.1f}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _close_quietly(driver: Driver) -> None:
    """Close a driver on a daemon thread (a close on a hung connection must not block the writer)."""

    def run() -> None:
        try:
            driver.close()
        except Exception as exc:
            log.debug("event=driver_close_failed error=%s", type(exc).__name__)

    threading.Thread(target=run, name="driver-close", daemon=True).start()


def _driver(host: str, port: int, user: str, password: str, connect_timeout: float) -> Driver:
    auth = (user, password) if user else None
    return GraphDatabase.driver(
        f"bolt://{host}:{port}",
        auth=auth,
        connection_timeout=connect_timeout,
        connection_acquisition_timeout=connect_timeout,
        max_connection_pool_size=2,
        max_transaction_retry_time=0.0,
        user_agent="memgraph-ha-sim-writer",
    )


def _check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise ValueError(f"label {label!r} is not a plain identifier")
    return label


class Writer:
    """Writes through `resolve()` at `rate_hz` until `stop()`; see the module docstring."""

    def __init__(
        self,
        resolve: Callable[[], Address | None],
        user: str = "",
        password: str = "",
        label: str = "W",
        rate_hz: float = 50.0,
        connect_timeout: float = 1.0,
        query_timeout: float = 2.0,
        max_duration_s: float = 3600.0,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be > 0")
        self._resolve = resolve
        self._user = user
        self._password = password
        self.label = _check_label(label)
        self._period = 1.0 / rate_hz
        self._connect_timeout = connect_timeout
        self._query_timeout = query_timeout
        self._max_duration_s = max_duration_s
        self._query = f"CREATE (:{self.label} {{id: $id, at: $at}})"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._attempts: list[WriteAttempt] = []
        self._thread = threading.Thread(target=self._run, name=f"writer-{label}", daemon=True)
        self._driver: Driver | None = None
        self._driver_addr: Address | None = None
        self._logged_addr: Address | None = None
        self._seq = 0
        self._failing = False

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Writer:
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop writing and join the thread, at most `timeout_s` (default: one attempt's bound + 1 s)."""
        self._stop.set()
        bound = timeout_s if timeout_s is not None else self._connect_timeout + self._query_timeout + 1.0
        self._thread.join(bound)
        if self._thread.is_alive():
            log.warning("event=writer_stop_timeout label=%s bound_s=%.1f", self.label, bound)
        if self._driver is not None:
            _close_quietly(self._driver)
            self._driver = None

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

    def _run(self) -> None:
        started = time.monotonic()
        next_t = started
        while not self._stop.is_set() and time.monotonic() - started < self._max_duration_s:
            self._attempt_once()
            next_t = max(next_t + self._period, time.monotonic())
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def _attempt_once(self) -> None:
        self._seq += 1
        wid = f"{self.label.lower()}{self._seq}"
        t0, w0 = time.monotonic(), time.time()
        try:
            addr = self._resolve()
        except Exception as exc:
            log.warning("event=resolve_failed error=%s detail=%s", type(exc).__name__, exc)
            addr = None
        if addr is None:
            self._record(wid, "", t0, w0, ERROR, "NoEndpoint", "the client Service has no endpoint")
            self._drop_driver()
            return
        address = f"{addr[0]}:{addr[1]}"
        try:
            driver = self._driver_for(addr)
            _bounded(
                lambda: self._write(driver, wid, w0),
                self._connect_timeout + self._query_timeout,
                f"write-{wid}",
            )
        except Exception as exc:  # any failure is an outcome of this attempt, recorded below
            self._record(wid, address, t0, w0, ERROR, type(exc).__name__, str(exc)[:300])
            self._drop_driver()
            return
        self._record(wid, address, t0, w0, ACKED)

    def _write(self, driver: Driver, wid: str, at: float) -> None:
        with driver.session() as session:
            session.run(self._query, id=wid, at=at).consume()

    def _driver_for(self, addr: Address) -> Driver:
        if self._driver is None or self._driver_addr != addr:
            self._drop_driver()
            self._driver = _driver(addr[0], addr[1], self._user, self._password, self._connect_timeout)
            level = logging.DEBUG if addr == self._logged_addr else logging.INFO  # reconnects: debug
            log.log(level, "event=writer_connect label=%s address=%s:%d", self.label, addr[0], addr[1])
            self._driver_addr = self._logged_addr = addr
        return self._driver

    def _drop_driver(self) -> None:
        if self._driver is not None:
            _close_quietly(self._driver)
        self._driver, self._driver_addr = None, None

    def _record(
        self, wid: str, address: str, t0: float, w0: float, outcome: str, err: str = "", msg: str = ""
    ) -> None:
        t1, w1 = time.monotonic(), time.time()
        attempt = WriteAttempt(wid, self._seq, address, t0, t1, w0, w1, outcome, err, msg)
        with self._lock:
            self._attempts.append(attempt)
        if outcome == ERROR and not self._failing:
            log.info("event=write_errors_begin label=%s id=%s address=%s error=%s detail=%s",
                     self.label, wid, address, err, msg)
        elif outcome == ERROR:
            log.debug("event=write_error id=%s address=%s error=%s", wid, address, err)
        elif self._failing:
            log.info("event=write_errors_end label=%s id=%s address=%s", self.label, wid, address)
        self._failing = outcome == ERROR


def read_ids(
    host: str,
    port: int,
    label: str = "W",
    user: str = "",
    password: str = "",
    timeout_s: float = 5.0,
) -> set[str]:
    """The ids of every `(:label)` node on one instance (`MATCH (n:label) RETURN n.id`), bounded.

    Raises the driver's error, or CallTimeout, when the instance does not answer.
    """
    query = f"MATCH (n:{_check_label(label)}) RETURN n.id AS id"
    driver = _driver(host, port, user, password, min(timeout_s, 2.0))

    def run() -> set[str]:
        with driver.session() as session:
            return {str(r["id"]) for r in session.run(query) if r["id"] is not None}

    try:
        return _bounded(run, timeout_s, f"read-{host}:{port}")
    finally:
        _close_quietly(driver)


def collect_final_ids(
    instances: dict[str, Address],
    expected: set[str],
    label: str = "W",
    user: str = "",
    password: str = "",
    catch_up_s: float = 10.0,
    poll_s: float = 0.2,
) -> dict[str, set[str]]:
    """Read every instance until each holds all `expected` ids or `catch_up_s` passes (bounded catch-up).

    Returns the last ids read per pod; an instance that cannot be read maps to an empty set (logged).
    """
    deadline = time.monotonic() + catch_up_s
    result: dict[str, set[str]] = {}
    pending = dict(instances)
    while True:
        for pod, (host, port) in list(pending.items()):
            try:
                bound = min(5.0, catch_up_s + 1.0)
                result[pod] = read_ids(host, port, label, user, password, timeout_s=bound)
            except Exception as exc:
                log.info("event=read_ids_failed pod=%s error=%s detail=%s", pod, type(exc).__name__, exc)
                result.setdefault(pod, set())
                continue
            if expected <= result[pod]:
                del pending[pod]
        if not pending or time.monotonic() >= deadline:
            return result
        time.sleep(poll_s)
