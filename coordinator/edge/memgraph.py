"""Memgraph client over Bolt (neo4j driver, `bolt://` only): role, replicas, storage, commands.

Role: the only code that talks Bolt to a Memgraph. It sends only queries a real Memgraph 3.x answers
(reference memgraph-replication.md section 1), parses SHOW REPLICAS in both column layouts (2.2, 2.3),
and turns Memgraph's error texts (1.3) into typed exceptions. Every public call ends within
`query_timeout` (plus a few ms): the driver bounds connecting (`connection_timeout`,
`connection_acquisition_timeout`), and a per-call deadline bounds the wait for an answer, because the
driver has no client-side read timeout (a hung server would otherwise block forever).

Retries (tenacity, at most 3 attempts inside the same deadline, each retry logged at WARNING):
- read-only queries (role, replicas, storage_info, version): on connection failures and TransientError;
- commands (promote, demote, register, drop): only while *nothing was sent* -- the connection is
  verified first and that step is retried; the command itself is retried only on TransientError,
  which means the server did not apply it. A connection lost after the command was sent raises
  MemgraphUnavailable with `outcome_unknown=True`: the caller must observe again, never blindly repeat.

Must never: use routing (`neo4j://`), log or repr the password, run replication queries inside an
explicit transaction (Memgraph refuses them), wait without a bound, or use emulator-only queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import neo4j
from neo4j import exceptions as nx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.stop import stop_base

from coordinator.core.model import ReplicaInfo, ReplicaMode, Role, StorageInfo
from coordinator.edge.logs import log_event
from coordinator.edge.memgraph_errors import (
    AlreadyMainError,
    AlreadyReplicaError,
    DropFailed,
    MemgraphAuthError,
    MemgraphError,
    MemgraphUnavailable,
    NotMainError,
    RegisterFailed,
    ReplicaDiverged,
    ReplicaEndpointExists,
    ReplicaNameExists,
    ReplicaUnreachable,
    UnexpectedReply,
    map_error,
)
from coordinator.edge.memgraph_rows import (
    parse_replica_row,
    parse_role,
    parse_storage_rows,
    quote_address,
    quote_name,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 3


class _Retryable(Exception):
    """Internal: one attempt failed in a way that is safe to repeat; carries the typed error."""

    def __init__(self, error: MemgraphError) -> None:
        super().__init__(str(error))
        self.error = error


class _SendGate:
    """Decides atomically between "the command goes out" and "the caller gave up waiting"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = False
        self._abandoned = False

    def open(self) -> bool:
        """Called right before sending; False when the caller already gave up (then do not send)."""
        with self._lock:
            if self._abandoned:
                return False
            self.sent = True
            return True

    def abandon(self) -> bool:
        """The caller gives up; returns True when the command may already have been sent."""
        with self._lock:
            self._abandoned = True
            return self.sent


class _Worker:
    """One daemon thread that runs this client's driver calls, so the caller can stop waiting."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._busy: Future[Any] | None = None

    def run(self, fn: Callable[[], T], timeout: float) -> T:
        """Run `fn` on a fresh daemon thread; FutureTimeout after `timeout` s (the thread is abandoned)."""
        with self._lock:
            if self._busy is not None:  # an abandoned call usually ends at once: its sockets were closed
                wait([self._busy], timeout=min(max(timeout, 0.0), 0.5))
                if not self._busy.done():
                    raise MemgraphUnavailable(f"{self._name}: an earlier call is still waiting for an answer")
            future: Future[T] = Future()
            self._busy = future

        def target() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

        threading.Thread(target=target, name=self._name, daemon=True).start()
        return future.result(timeout=max(timeout, 0.0))


class MemgraphClient:
    """A bounded, typed client for one Memgraph instance. Thread-safe; calls are serialized."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str = "",
        password: str = "",
        connect_timeout: float = 1.0,
        query_timeout: float = 2.0,
    ) -> None:
        if connect_timeout <= 0 or query_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.connect_timeout = connect_timeout
        self.query_timeout = query_timeout
        self._driver: neo4j.Driver | None = None
        self._driver_lock = threading.Lock()
        self._call_lock = threading.Lock()
        self._worker = _Worker(f"memgraph-{host}:{port}")
        self._scoped_storage_info = True

    def __repr__(self) -> str:
        return f"MemgraphClient(bolt://{self.host}:{self.port}, user={self.user!r})"

    @property
    def uri(self) -> str:
        return f"bolt://{self.host}:{self.port}"

    # ---- public API -------------------------------------------------------------------------

    def role(self) -> Role:
        """`SHOW REPLICATION ROLE` (reference 2.1). Read-only, retried."""
        return parse_role(self._read("role", "SHOW REPLICATION ROLE"))

    def replicas(self) -> list[ReplicaInfo]:
        """`SHOW REPLICAS` on a MAIN, both column layouts (reference 2.2, 2.3). NotMainError on a replica."""
        return [parse_replica_row(row) for row in self._read("replicas", "SHOW REPLICAS")]

    def storage_info(self) -> StorageInfo:
        """Vertex and edge counts: `SHOW STORAGE INFO ON CURRENT DATABASE` (3.11+), else the unscoped form."""
        if self._scoped_storage_info:
            try:
                return parse_storage_rows(self._read("storage_info", "SHOW STORAGE INFO ON CURRENT DATABASE"))
            except (MemgraphUnavailable, MemgraphAuthError):
                raise
            except MemgraphError as exc:
                log_event(log, "scoped storage info refused, using SHOW STORAGE INFO", level=logging.INFO,
                          instance=self.uri, error=str(exc))
                self._scoped_storage_info = False
        return parse_storage_rows(self._read("storage_info", "SHOW STORAGE INFO"))

    def ping(self) -> bool:
        """True when Memgraph accepts a connection and our credentials (no storage transaction is opened)."""
        try:
            self._call("ping", lambda: self._get_driver().verify_connectivity())
            return True
        except MemgraphError as exc:
            log_event(log, "memgraph ping failed", level=logging.DEBUG, instance=self.uri, error=str(exc))
            return False

    def version(self) -> str | None:
        """`SHOW VERSION`; None when the server refuses the query; MemgraphUnavailable if unreachable."""
        try:
            rows = self._read("version", "SHOW VERSION")
        except (MemgraphUnavailable, MemgraphAuthError):
            raise
        except MemgraphError as exc:
            log_event(log, "SHOW VERSION refused", level=logging.DEBUG, instance=self.uri, error=str(exc))
            return None
        if not rows:
            return None
        value = next(iter(rows[0].values()), None)
        return None if value is None else str(value)

    def promote(self) -> None:
        """`SET REPLICATION ROLE TO MAIN`. AlreadyMainError on a MAIN. Not repeated once sent."""
        self._command("promote", "SET REPLICATION ROLE TO MAIN")

    def demote(self, port: int) -> None:
        """`SET REPLICATION ROLE TO REPLICA WITH PORT <port>`. AlreadyReplicaError on a replica."""
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"replication port must be 1-65535, got {port!r}")
        self._command("demote", f"SET REPLICATION ROLE TO REPLICA WITH PORT {port}")

    def register(self, name: str, mode: ReplicaMode, address: str) -> None:
        """`REGISTER REPLICA name MODE TO "address"` (reference 1.1, 1.4).

        Error: 5 (ReplicaUnreachable) leaves the entry registered on v2.15+ (reference 1.4): drop it before
        registering the same name again. Not repeated once sent.
        """
        query = f"REGISTER REPLICA {quote_name(name)} {ReplicaMode(mode).keyword} TO {quote_address(address)}"
        self._command("register", query, name=name)

    def drop(self, name: str) -> None:
        """`DROP REPLICA name`. DropFailed when the name is unknown. Not repeated once sent."""
        self._command("drop", f"DROP REPLICA {quote_name(name)}", name=name)

    def create_snapshot(self) -> None:
        """`CREATE SNAPSHOT` (a MAIN's epoch and history reach disk with no user write, reference 7.2).
        Not repeated once sent."""
        self._command("create_snapshot", "CREATE SNAPSHOT")

    def close(self) -> None:
        """Close the driver (idempotent). The client can be used again afterwards (a new driver is made)."""
        with self._driver_lock:
            driver, self._driver = self._driver, None
        if driver is not None:
            _close_quietly(driver, self.uri)

    def __enter__(self) -> MemgraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------------

    def _get_driver(self) -> neo4j.Driver:
        with self._driver_lock:
            if self._driver is None:
                auth = neo4j.basic_auth(self.user, self._password) if (self.user or self._password) else None
                self._driver = neo4j.GraphDatabase.driver(
                    self.uri,
                    auth=auth,
                    connection_timeout=self.connect_timeout,
                    connection_write_timeout=self.connect_timeout,
                    connection_acquisition_timeout=self.connect_timeout,
                    max_connection_pool_size=2,
                    max_transaction_retry_time=0.0,
                    keep_alive=True,
                    user_agent="memgraph-ha-agent",
                )
            return self._driver

    def _read(self, op: str, query: str) -> list[dict[str, Any]]:
        def attempt() -> list[dict[str, Any]]:
            with self._get_driver().session() as session:
                return [dict(record.items()) for record in session.run(query)]

        return self._call(op, attempt)

    def _command(self, op: str, query: str, name: str = "") -> None:
        gate = _SendGate()

        def attempt() -> None:
            driver = self._get_driver()
            try:
                driver.verify_connectivity()
            except Exception as exc:  # nothing was sent yet: repeating is safe
                error = self._map(exc, op, name)
                if isinstance(error, MemgraphUnavailable):
                    raise _Retryable(error) from exc
                raise error from exc
            with driver.session() as session:
                if not gate.open():
                    raise MemgraphUnavailable(f"{self.uri}: {op}: abandoned before sending")
                session.run(query).consume()

        self._call(op, attempt, gate, name)
        log_event(log, "memgraph command done", instance=self.uri, op=op, query=query)

    def _call(self, op: str, fn: Callable[[], T], gate: _SendGate | None = None, name: str = "") -> T:
        """Run `fn` with retries inside one deadline of `query_timeout` seconds; raise typed errors.

        `gate` (commands only) is opened by `fn` just before the command goes out; from then on a lost
        connection or a timeout means the outcome is unknown and the attempt is not repeated.
        """
        with self._call_lock:
            deadline = time.monotonic() + self.query_timeout
            retrying = Retrying(
                stop=stop_after_attempt(MAX_ATTEMPTS) | _StopAt(deadline),
                wait=wait_exponential(multiplier=0.05, max=0.4),
                retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
                before_sleep=self._log_retry(op),
                reraise=True,
            )
            try:
                return retrying(self._attempt, op, fn, deadline, gate, name)
            except _Retryable as exc:
                raise exc.error from exc.__cause__

    def _attempt(self, op: str, fn: Callable[[], T], deadline: float, gate: _SendGate | None, name: str) -> T:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MemgraphUnavailable(f"{self.uri}: {op}: no time left within {self.query_timeout}s")
        try:
            return self._worker.run(fn, remaining)
        except FutureTimeout:
            self.close()  # closing the sockets wakes the abandoned thread
            message = f"{self.uri}: {op}: no answer within {self.query_timeout}s"
            raise MemgraphUnavailable(message, outcome_unknown=gate is not None and gate.abandon()) from None
        except (_Retryable, MemgraphError):
            raise
        except Exception as exc:
            error = self._map(exc, op, name)
            if isinstance(exc, nx.TransientError):  # the server refused it: nothing was applied
                raise _Retryable(error) from exc
            if isinstance(error, MemgraphUnavailable):
                if gate is not None and gate.sent:
                    error.outcome_unknown = True
                    raise error from exc
                raise _Retryable(error) from exc
            raise error from exc

    def _log_retry(self, op: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log_event(log, "memgraph call failed, retrying", level=logging.WARNING, instance=self.uri, op=op,
                      attempt=state.attempt_number, max_attempts=MAX_ATTEMPTS, error=str(exc))

        return before_sleep

    def _map(self, exc: BaseException, op: str, name: str) -> MemgraphError:
        return map_error(exc, op, name, self.uri)


class _StopAt(stop_base):
    """tenacity stop condition: no further attempt once the call's deadline is (nearly) reached."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        next_wait = retry_state.upcoming_sleep or 0.0
        return time.monotonic() + next_wait >= self.deadline - 0.01


def _close_quietly(driver: neo4j.Driver, uri: str) -> None:
    """Close a driver on a daemon thread (closing shuts the sockets down; it must not block the caller)."""

    def target() -> None:
        try:
            driver.close()
        except Exception as exc:
            log_event(log, "closing the memgraph driver failed", level=logging.WARNING, instance=uri,
                      error=repr(exc))

    threading.Thread(target=target, name=f"close-{uri}", daemon=True).start()


# ---- row parsing (pure; unit-tested without a server) ------------------------------------------


# The client's callers import the errors and row helpers from here.
__all__ = [
    "AlreadyMainError",
    "AlreadyReplicaError",
    "DropFailed",
    "MemgraphAuthError",
    "MemgraphClient",
    "MemgraphError",
    "MemgraphUnavailable",
    "NotMainError",
    "RegisterFailed",
    "ReplicaDiverged",
    "ReplicaEndpointExists",
    "ReplicaNameExists",
    "ReplicaUnreachable",
    "UnexpectedReply",
    "map_error",
    "parse_replica_row",
    "parse_role",
    "parse_storage_rows",
    "quote_address",
    "quote_name",
]
