"""Typed errors of the emulator's query layer (the Bolt layer maps each to Memgraph's FAILURE code).

Role: one place for the exceptions that cross module boundaries: QueryException-like errors and the
ReplicationException of a commit (v3.8+: both reported as `Memgraph.ClientError.MemgraphError...`,
reference memgraph-replication 6).

Must never: carry anything but a message meant for the client (and, for a commit, whether it was kept).
"""

from __future__ import annotations


class ReplicationQueryError(Exception):
    """A replication query failed (QueryException -> ClientError)."""


class ReplicationCommitError(Exception):
    """ReplicationException at commit (v3.8+: ClientError). `committed` says whether the MAIN kept it."""

    def __init__(self, message: str, committed: bool) -> None:
        super().__init__(message)
        self.committed = committed
