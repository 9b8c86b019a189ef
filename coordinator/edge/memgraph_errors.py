"""Typed errors of the Memgraph client, and the mapping from Memgraph's error texts to them.

Role: one exception class per outcome the coordinator must tell apart (reference memgraph-replication.md
1.3: REGISTER's `Error: <n>` codes, role errors; section 6: the Bolt error classes), and `map_error`,
which turns a neo4j driver exception into one of them.

Must never: import the client itself or do I/O.
"""

from __future__ import annotations

import re

from neo4j import exceptions as nx

_NOT_MAIN_TEXTS = (
    "replica can't register another replica",
    "replica can't show registered replicas",
    "show replicas query should only be run on the main",
    "replica can't unregister a replica",
    "write query forbidden on the replica",
    "write queries are forbidden on the replica",
)


class MemgraphError(Exception):
    """A Memgraph call failed; `message` is the server's text (or the driver's), `code` the Bolt code."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class MemgraphUnavailable(MemgraphError):
    """Connection refused, timed out or closed. `outcome_unknown`: a command may or may not have run."""

    def __init__(self, message: str, code: str = "", outcome_unknown: bool = False) -> None:
        super().__init__(message, code)
        self.outcome_unknown = outcome_unknown


class MemgraphAuthError(MemgraphError):
    """Credentials refused (`Memgraph.ClientError.Security.Unauthenticated`, reference 6)."""


class NotMainError(MemgraphError):
    """The instance is a replica and the query needs a MAIN (SHOW REPLICAS, REGISTER, DROP, writes)."""


class AlreadyMainError(MemgraphError):
    """SET REPLICATION ROLE TO MAIN on a MAIN (or the promotion failed: same text, reference 1.3)."""


class AlreadyReplicaError(MemgraphError):
    """SET REPLICATION ROLE TO REPLICA on a replica (or the port could not be bound, reference 1.3)."""


class DropFailed(MemgraphError):
    """DROP REPLICA failed: unknown name or lock contention (reference 1.3)."""


class UnexpectedReply(MemgraphError):
    """The server answered with rows this client cannot read."""


class RegisterFailed(MemgraphError):
    """REGISTER REPLICA failed; `register_code` is the `Error: <n>` number (v3.5+), None before."""

    def __init__(
        self, message: str, code: str = "", register_code: int | None = None, replica: str = ""
    ) -> None:
        super().__init__(message, code)
        self.register_code = register_code
        self.replica = replica


class ReplicaNameExists(RegisterFailed):
    """Error: 1 (NAME_EXISTS)."""


class ReplicaEndpointExists(RegisterFailed):
    """Error: 2 (ENDPOINT_EXISTS)."""


class ReplicaDiverged(RegisterFailed):
    """Error: 3 (CONNECTION_FAILED): in practice the replica diverged (reference 1.4 step 5)."""


class ReplicaUnreachable(RegisterFailed):
    """Error: 5 (ERROR_ACCEPTING_MAIN): unreachable; the entry STAYS registered (reference 1.4 step 3)."""


_REGISTER_CODES: dict[int, type[RegisterFailed]] = {
    1: ReplicaNameExists,
    2: ReplicaEndpointExists,
    3: ReplicaDiverged,
    5: ReplicaUnreachable,
}


def map_error(exc: BaseException, op: str, name: str = "", where: str = "") -> MemgraphError:
    """Turn a driver exception into the typed MemgraphError for operation `op` (reference 1.3, 6)."""
    prefix = f"{where}: {op}: " if where else f"{op}: "
    if isinstance(exc, MemgraphError):
        return exc
    if isinstance(exc, nx.ServiceUnavailable | nx.SessionExpired | nx.ConnectionPoolError | OSError):
        return MemgraphUnavailable(prefix + str(exc))
    if not isinstance(exc, nx.Neo4jError):
        return MemgraphError(prefix + repr(exc))
    code, message = exc.code or "", exc.message or str(exc)
    text = message.lower()
    if isinstance(exc, nx.AuthError) or code.endswith(".Security.Unauthenticated"):
        return MemgraphAuthError(message, code=code)
    if any(t in text for t in _NOT_MAIN_TEXTS):
        return NotMainError(message, code=code)
    if op == "promote" and re.search(r"couldn't set (replication )?role to main", text):
        return AlreadyMainError(message, code=code)
    if op == "demote" and "couldn't set role to replica" in text:
        return AlreadyReplicaError(message, code=code)
    if op == "register":
        return _register_error(message, code, name)
    if op == "drop":
        return DropFailed(message, code=code)
    return MemgraphError(message, code=code)


def _register_error(message: str, code: str, name: str) -> RegisterFailed:
    """REGISTER failures: `... Error: <n>` (v3.5+) picks the subclass; older texts carry no number."""
    found = re.search(r"Error:\s*(\d+)", message)
    number = int(found.group(1)) if found else None
    cls = _REGISTER_CODES.get(number, RegisterFailed) if number is not None else RegisterFailed
    return cls(message, code=code, register_code=number, replica=name)
