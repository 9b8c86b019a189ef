"""Bolt server of the Memgraph emulator: handshake, framing, session state machine, error mapping.

Role: speak Bolt the way Memgraph 3.12 does (reference bolt-and-kube 1.1-1.8, memgraph-replication 6):
- Handshake: Memgraph's slot scan over {1.0, 4.0, 4.1, 4.3, 4.4, 5.2} (4.4 since v3.12); legacy reply;
  no match -> close without a reply (1.1).
- HELLO(+LOGON on 5.1+) with basic auth checked against --user/--password; bad credentials -> FAILURE
  `Memgraph.ClientError.Security.Unauthenticated` "Authentication failure" and close; success metadata
  exactly `{connection_id: "bolt-1", server: "Neo4j/v5.11.0 compatible ... - Memgraph"}` (6).
- RUN -> `{fields}` (+ `qid` in explicit transactions), PULL n / DISCARD with `has_more`, a final summary
  `{has_more: false, type, db, parsing_time, planning_time, plan_execution_time, cost_estimate, [stats],
  [notifications]}`; BEGIN/COMMIT/ROLLBACK answer `{}`; FAILURE -> IGNORED until RESET (1.6); RESET rolls
  back; GOODBYE closes; LOGOFF gets no reply (Memgraph quirk 1.6.3); protocol violations close (1.6.1).
- ROUTE: FAILURE "You cannot fetch routing table from an instance which is not part of a cluster."
  (enterprise-compiled community binary, reference 6).
- Error classes (6): query/replication errors -> Memgraph.ClientError.MemgraphError.MemgraphError
  (v3.8+ also for ReplicationException); anything unexpected -> Memgraph.DatabaseError...
- Workers (`workers.py`): connections are always accepted and read without a worker; processing the
  bytes a session has (the handshake, HELLO, a pipelined RUN+PULL, ...) takes one Bolt worker at the
  session's priority, for as long as input is buffered; a parsed LOW query on the high-priority worker is
  rescheduled as LOW (`session.hpp:390-413`, `SessionHL.cpp:231-266`).

Must never: let one connection's garbage or exception take down the server, or log credentials.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sim.memgraph import cypher
from sim.memgraph.audit import Command, CommandAudit, describe
from sim.memgraph.durability import check_password
from sim.memgraph.engine import Engine, Outcome, Prepared
from sim.memgraph.errors import ReplicationCommitError, ReplicationQueryError
from sim.memgraph.packstream import PackStreamError, Structure, chunk_message, pack, read_message, recv_exact
from sim.memgraph.replication_wire import Faults
from sim.memgraph.storage import Txn
from sim.memgraph.workers import BoltWorkers, Priority, Task, WorkerWaitTimeout

log = logging.getLogger(__name__)
MAGIC = b"\x60\x60\xb0\x17"
SUPPORTED = {(1, 0), (4, 0), (4, 1), (4, 3), (4, 4), (5, 2)}
SERVER_NAME = "Neo4j/v5.11.0 compatible graph database server - Memgraph"
CLIENT_ERROR = "Memgraph.ClientError.MemgraphError.MemgraphError"
DATABASE_ERROR = "Memgraph.DatabaseError.MemgraphError.MemgraphError"
UNAUTHENTICATED = "Memgraph.ClientError.Security.Unauthenticated"
UNKNOWN_MESSAGE = (
    "An unknown exception occurred, this is unexpected. Real message should be in database logs."
)
ROUTE_REFUSED = "You cannot fetch routing table from an instance which is not part of a cluster."
SUCCESS, RECORD, IGNORED, FAILURE = 0x70, 0x71, 0x7E, 0x7F


class CloseConnection(Exception):
    """Protocol violation or fatal auth failure: the session ends."""


class BoltFailure(Exception):
    """An error answered with FAILURE {code, message}."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def negotiate(slots: bytes, supported: set[tuple[int, int]]) -> tuple[int, int] | None:
    """Memgraph's slot scan (reference bolt-and-kube 1.1): per slot, minor down to minor-range."""
    for i in range(4):
        _, rng, minor, major = slots[i * 4 : i * 4 + 4]
        for m in range(minor, minor - min(rng, minor) - 1, -1):
            if (major, m) in supported:
                return major, m
    return None


@dataclass
class OpenResult:
    """A RUN whose records are not all pulled yet."""

    prep: Prepared
    qid: int
    priority: Priority
    outcome: Outcome | None = None
    pos: int = 0
    exec_s: float = 0.0
    received: float = 0.0  # monotonic time of the RUN (the command audit's `t`)


class Session:
    """One Bolt connection, processed strictly in order (pipelining is just the byte stream)."""

    def __init__(self, sock: socket.socket, engine: Engine, auth: tuple[str, str] | None,
                 workers: BoltWorkers, audit: CommandAudit | None = None) -> None:
        self.sock = sock
        self.engine = engine
        self.auth = auth
        self.workers = workers
        self.audit = audit or CommandAudit(None)
        self.peer, self.local = _addresses(sock)
        self.task: Task | None = None
        self.version = (0, 0)
        self.state = "CONNECTED"
        self.tx: Txn | None = None
        self.qid = -1
        self.result: OpenResult | None = None
        self.out = bytearray()

    def send(self, tag: int, *fields: Any) -> None:
        self.out += chunk_message(pack(Structure(tag, list(fields))))

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(bytes(self.out))
            self.out.clear()

    def priority(self) -> Priority:
        """SessionHL::ApproximateQueryPriority: streaming a result -> the query's (LOW in a transaction)."""
        if self.result is None:
            return Priority.HIGH
        return Priority.LOW if self.tx is not None else self.result.priority

    def _input_pending(self) -> bool:
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def serve(self) -> None:
        if recv_exact(self.sock, 4) != MAGIC:
            raise CloseConnection("bad magic")
        slots = recv_exact(self.sock, 16)
        with self.workers.task(Priority.HIGH):
            version = negotiate(slots, SUPPORTED)
            if version is None:
                raise CloseConnection("no supported Bolt version offered")
            self.version = version
            self.sock.sendall(bytes([0, 0, version[1], version[0]]))
        while True:
            data = read_message(self.sock)
            with self.workers.task(self.priority()) as task:
                self.task = task
                while True:
                    try:
                        self.dispatch(cypher_safe_unpack(data))
                    finally:
                        self.flush()
                    if not self._input_pending():
                        break
                    data = read_message(self.sock)
                self.task = None

    def dispatch(self, msg: Structure) -> None:
        tag, f = msg.tag, msg.fields
        if tag == 0x02:
            raise CloseConnection("GOODBYE")
        if self.state in ("CONNECTED", "AUTH"):
            self._authenticate(tag, f)
            return
        if self.state == "FAILED":
            if tag in (0x0F, 0x0E):
                self._reset()
            elif tag == 0x6B:
                self.state = "AUTH"
            else:
                self.send(IGNORED)
            return
        try:
            self._handle(tag, f)
        except BoltFailure as exc:
            self.result = None
            self.state = "FAILED"
            self.send(FAILURE, {"code": exc.code, "message": str(exc)})

    # ----- authentication -----

    def _authenticate(self, tag: int, f: list[Any]) -> None:
        meta = {"connection_id": "bolt-1", "server": SERVER_NAME}
        logon_split = self.version >= (5, 1)
        if self.state == "CONNECTED" and tag == 0x01:
            if self.version == (1, 0):
                creds = f[1] if len(f) > 1 and isinstance(f[1], dict) else {}
            else:
                creds = f[0] if f and isinstance(f[0], dict) else {}
            if logon_split:
                self.state = "AUTH"
                self.send(SUCCESS, meta)
                return
            self._check_credentials(creds)
            self.state = "READY"
            self.send(SUCCESS, meta)
        elif self.state == "AUTH" and tag == 0x6A and logon_split:
            self._check_credentials(f[0] if f and isinstance(f[0], dict) else {})
            self.state = "READY"
            self.send(SUCCESS, meta)
        else:
            raise CloseConnection(f"unexpected message 0x{tag:02X} before authentication")

    def _check_credentials(self, creds: dict[str, Any]) -> None:
        if self.auth is None:
            return
        scheme = creds.get("scheme") or "none"
        user, stored = self.auth
        ok = scheme == "basic" and (creds.get("principal") or "") == user and \
            check_password(stored, str(creds.get("credentials") or ""))
        if not ok:
            self.send(FAILURE, {"code": UNAUTHENTICATED, "message": "Authentication failure"})
            raise CloseConnection("authentication failure")

    # ----- ready / transaction states -----

    def _handle(self, tag: int, f: list[Any]) -> None:
        handlers = {0x10: self._run, 0x3F: self._pull, 0x2F: self._discard, 0x11: self._begin,
                    0x12: self._commit, 0x13: self._rollback, 0x0F: lambda _f: self._reset(),
                    0x66: self._route, 0x6B: self._logoff}
        handler = handlers.get(tag)
        if handler is None:
            raise CloseConnection(f"unknown message 0x{tag:02X}")
        handler(f)

    def _logoff(self, _f: list[Any]) -> None:
        self.state = "AUTH"  # Memgraph answers LOGOFF with nothing (reference 1.6, quirk 3)

    def _route(self, _f: list[Any]) -> None:
        raise BoltFailure(CLIENT_ERROR, ROUTE_REFUSED)

    def _run(self, f: list[Any]) -> None:
        received = time.monotonic()
        if self.result is not None or len(f) < 2 or not isinstance(f[0], str) or not isinstance(f[1], dict):
            raise CloseConnection("Unexpected RUN command!")
        with _mapped_errors(self):
            query, parse_s = self.engine.parse(f[0])
        priority = self.engine.priority(query)
        if self.task is not None:
            self.task.reschedule(priority)
        with _mapped_errors(self):
            prep = self.engine.prepare(query, parse_s, f[1], in_tx=self.tx is not None)
        meta: dict[str, Any] = {"fields": prep.fields}
        qid = -1
        if self.tx is not None and self.version >= (4, 0):
            self.qid += 1
            qid = self.qid
            meta["qid"] = qid
        self.result = OpenResult(prep, qid, priority, received=received)
        self.send(SUCCESS, meta)

    def _n(self, f: list[Any]) -> int:
        extra = f[0] if f and isinstance(f[0], dict) else {}
        n = extra.get("n", -1)
        return n if isinstance(n, int) and not isinstance(n, bool) else -1

    def _ensure_executed(self) -> OpenResult:
        res = self.result
        if res is None:
            raise CloseConnection("PULL/DISCARD without an open result")
        if res.outcome is None:
            t0 = time.perf_counter()
            audited = describe(res.prep.query)
            try:
                with _mapped_errors(self):
                    res.outcome = self.engine.execute(res.prep, self.tx)
            except BoltFailure as exc:
                if audited:
                    self.audit.record(Command(res.received, self.peer, self.local, audited, str(exc)))
                raise
            if audited:
                self.audit.record(Command(res.received, self.peer, self.local, audited))
            res.exec_s = time.perf_counter() - t0
        return res

    def _pull(self, f: list[Any]) -> None:
        res = self._ensure_executed()
        assert res.outcome is not None
        rows = res.outcome.rows
        n = self._n(f)
        end = len(rows) if n < 0 else min(len(rows), res.pos + n)
        for row in rows[res.pos : end]:
            self.send(RECORD, row)
        res.pos = end
        self._finish_or_more(res)

    def _discard(self, f: list[Any]) -> None:
        res = self._ensure_executed()
        assert res.outcome is not None
        n = self._n(f)
        res.pos = len(res.outcome.rows) if n < 0 else min(len(res.outcome.rows), res.pos + n)
        self._finish_or_more(res)

    def _finish_or_more(self, res: OpenResult) -> None:
        assert res.outcome is not None
        if res.pos < len(res.outcome.rows):
            self.send(SUCCESS, {"has_more": True})
            return
        out = res.outcome
        summary: dict[str, Any] = {
            "has_more": False, "type": out.qtype, "db": "memgraph", "parsing_time": res.prep.parse_s,
            "planning_time": 0.0, "plan_execution_time": res.exec_s, "cost_estimate": 0.0,
            "number_of_hops": 0, "run_id": str(uuid.uuid4()),
        }
        if out.stats:
            summary["stats"] = out.stats
        if out.notifications:
            summary["notifications"] = out.notifications
        self.result = None
        self.send(SUCCESS, summary)

    def _begin(self, _f: list[Any]) -> None:
        if self.tx is not None or self.result is not None:
            raise BoltFailure(CLIENT_ERROR, "Nested transactions are not supported.")
        self.tx = self.engine.begin()
        self.qid = -1
        self.send(SUCCESS, {})

    def _commit(self, _f: list[Any]) -> None:
        if self.tx is None:
            raise BoltFailure(CLIENT_ERROR, "No current transaction to commit.")
        tx, self.tx, self.result = self.tx, None, None
        with _mapped_errors(self):
            self.engine.commit(tx)
        self.send(SUCCESS, {})

    def _rollback(self, _f: list[Any]) -> None:
        if self.tx is None:
            raise BoltFailure(CLIENT_ERROR, "No current transaction to rollback.")
        self.tx, self.result = None, None
        self.send(SUCCESS, {})

    def _reset(self) -> None:
        self.tx, self.result, self.state = None, None, "READY"
        self.send(SUCCESS, {})


class _mapped_errors(contextlib.AbstractContextManager[None]):
    """Turn engine exceptions into BoltFailure with Memgraph's codes; a failure ends an explicit tx."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is None or isinstance(exc, BoltFailure | CloseConnection):
            return None
        if isinstance(exc, cypher.QueryError | ReplicationQueryError | ReplicationCommitError):
            raise BoltFailure(CLIENT_ERROR, str(exc)) from exc
        if isinstance(exc, Exception):
            log.exception("unexpected error while executing a query")
            raise BoltFailure(DATABASE_ERROR, UNKNOWN_MESSAGE) from exc
        return None


def _addresses(sock: socket.socket) -> tuple[str, str]:
    """(the client's address, the address it connected to); "" for what the socket no longer knows."""
    try:
        peer = str(sock.getpeername()[0])
    except OSError:
        peer = ""
    try:
        local = str(sock.getsockname()[0])
    except OSError:
        local = ""
    return peer, local


def cypher_safe_unpack(data: bytes) -> Structure:
    """Decode one message; malformed input closes the connection (never crashes the server)."""
    from sim.memgraph.packstream import unpack_message

    try:
        return unpack_message(data)
    except PackStreamError as exc:
        raise CloseConnection(f"malformed message: {exc}") from exc


class BoltServer:
    """Accepts Bolt connections on host:port; one thread per connection."""

    def __init__(self, host: str, port: int, engine: Engine, auth: tuple[str, str] | None,
                 faults: Faults, workers: BoltWorkers, audit: CommandAudit | None = None) -> None:
        self.engine = engine
        self.audit = audit
        self.auth = auth
        self.faults = faults
        self.workers = workers
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="bolt-accept", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.faults.as_dict()["isolated"]:
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="bolt-session", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = Session(conn, self.engine, self.auth, self.workers, self.audit)
            try:
                session.serve()
            except (CloseConnection, ConnectionError, OSError, PackStreamError, WorkerWaitTimeout) as exc:
                log.debug("bolt connection closed: %s", exc)
            except Exception:
                log.exception("bolt session crashed; connection closed")

    def close(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
