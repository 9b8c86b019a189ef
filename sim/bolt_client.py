"""The Bolt client side of the bed's clients: one neo4j driver as an application configures it, and what
a failed write means.

Role: `driver()` (a real pooled neo4j driver over `bolt://`, the driver's own timeouts unless told
otherwise, no transaction retries), `classify()` (the outcome of a write that raised: failed -- nothing
can have been committed -- or unknown), `connection_port()` (the local port of the connection a session
uses, to ask kube-proxy which pod it reached), and small shared helpers.

Must never: log a password, or call a write failed when it may have been committed.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from neo4j import Driver, GraphDatabase
from neo4j.exceptions import IncompleteCommit, Neo4jError, ServiceUnavailable, SessionExpired

from sim.timeline import ERROR, UNKNOWN

log = logging.getLogger(__name__)

Address = tuple[str, int]
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DRIVER_CONNECT_TIMEOUT_S = 30.0  # the neo4j driver's default connection_timeout
# Nothing of the query reached the server: the connection could not be opened or written to.
_NOT_SENT = ("Couldn't connect", "Failed to establish connection", "Timed out trying to establish",
             "Failed to write data to connection", "Failed to write to closed connection",
             "Failed to write to defunct connection", "handshake")
# Memgraph's SYNC replication error comes after the local commit (reference memgraph-replication 5).
_COMMITTED_DESPITE_ERROR = "is still committed on the main instance"


def close_quietly(driver: Driver) -> None:
    """Close a driver on a daemon thread (a close on a hung connection must not block the writer)."""

    def run() -> None:
        try:
            driver.close()
        except Exception as exc:
            log.debug("event=driver_close_failed error=%s", type(exc).__name__)

    threading.Thread(target=run, name="driver-close", daemon=True).start()


def driver(host: str, port: int, user: str, password: str, connect_timeout: float,
            pool_size: int = 2) -> Driver:
    auth = (user, password) if user else None
    return GraphDatabase.driver(
        f"bolt://{host}:{port}",
        auth=auth,
        connection_timeout=connect_timeout,
        max_connection_pool_size=pool_size,
        max_transaction_retry_time=0.0,
        user_agent="memgraph-ha-sim-writer",
    )


def check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise ValueError(f"label {label!r} is not a plain identifier")
    return label


def classify(exc: BaseException) -> str:
    """The outcome of a write that raised `exc`: ERROR (failed, never committed) or UNKNOWN."""
    if isinstance(exc, Neo4jError):  # the server answered FAILURE
        return UNKNOWN if _COMMITTED_DESPITE_ERROR in str(exc) else ERROR
    if isinstance(exc, IncompleteCommit):
        return UNKNOWN
    if isinstance(exc, (ServiceUnavailable, SessionExpired)):
        text = str(exc)
        return ERROR if any(marker in text for marker in _NOT_SENT) else UNKNOWN
    return UNKNOWN  # anything else: the query may have gone out


def connection_port(session: Any) -> int | None:
    """The local port of the connection a session is using right now (between run() and consume())."""
    return getattr(getattr(session, "_connection", None), "local_port", None)
