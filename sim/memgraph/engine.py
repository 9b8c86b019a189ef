"""Query execution of the Memgraph emulator: role rules, transactions, results and summaries.

Role: between the Bolt session and storage/replication. It enforces reference memgraph-replication 1.2
(what runs in which role; replication queries refused in explicit transactions with the v3.12
MulticommandTxException text, `src/query/exceptions.hpp:148-156`; writes on a replica refused with the
v3.1+ text), runs the Cypher subset, produces the columns of 2.1/2.2 and the Appendix (`replication
role`; `name, socket_address, sync_mode, system_info, data_info`; `storage info, value`; `version`;
`path` for CREATE SNAPSHOT, `interpreter.cpp:6720-6770`), the summary `type` of reference 6
(replication and SHOW queries report "rw") and the notifications of 1.3. Timestamps follow 2.4: every
data query takes a storage transaction (start ts), replication and SHOW queries take none. It also says
at which priority a Bolt worker runs each query (`workers.py`).

Must never: do network I/O itself (replication does), or let a Python error escape as anything but one of
the typed errors the Bolt layer maps to Memgraph codes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sim.memgraph import cypher as c
from sim.memgraph.errors import ReplicationQueryError
from sim.memgraph.replica_client import ReplicaConfig
from sim.memgraph.replication import Replication
from sim.memgraph.storage import NothingNewToWrite, Storage, Txn
from sim.memgraph.workers import Priority

VERSION = "3.12.0"
WRITE_ON_REPLICA = (
    "Write queries are forbidden on the replica instance. Replica instances accept only read queries, while "
    "the main instance accepts read and write queries. Please retry your query on the main instance."
)


def multicommand(what: str) -> str:
    """MulticommandTxException at v3.12 (the missing space in "particularquery" is Memgraph's)."""
    return (f"{what} is not allowed in multicommand transactions. A multicommand transaction, also known "
            "as an explicit transaction, groups multiple commands into a single atomic operation. Instead, "
            "please use an implicit transaction, also known as an auto committing transaction, in order to "
            "execute this particularquery. For more details, visit https://memgraph.com/docs")


IN_TX_REFUSED: dict[type, str] = {
    **{q: "Managing replication" for q in c.REPLICATION_QUERIES},
    c.ShowStorageInfo: "Storage information query",
    c.CreateIndex: "Index manipulation",
    c.CreateSnapshot: "Creating snapshots",
}
SCALARS = (type(None), bool, int, float, str)


@dataclass
class Prepared:
    """A parsed, role-checked query waiting for its first PULL/DISCARD."""

    query: c.Query
    params: dict[str, Any]
    fields: list[str]
    parse_s: float


@dataclass
class Outcome:
    """Rows and summary pieces of one executed query."""

    rows: list[list[Any]]
    qtype: str
    stats: dict[str, int] | None = None
    notifications: list[dict[str, str]] = field(default_factory=list)


def _fields(q: c.Query) -> list[str]:
    if isinstance(q, c.ShowRole):
        return ["replication role"]
    if isinstance(q, c.ShowReplicas):
        return ["name", "socket_address", "sync_mode", "system_info", "data_info"]
    if isinstance(q, c.ShowStorageInfo):
        return ["storage info", "value"]
    if isinstance(q, c.ShowVersion):
        return ["version"]
    if isinstance(q, c.CreateSnapshot):
        return ["path"]
    if isinstance(q, c.MatchCount | c.MatchProp):
        return [q.column]
    if isinstance(q, c.ReturnValues):
        return [col for _, col in q.items]
    return []


def _note(severity: str, code: str, title: str) -> dict[str, str]:
    return {"severity": severity, "code": code, "title": title, "description": ""}


class Engine:
    """Executes the subset against one instance's storage and replication state."""

    def __init__(self, storage: Storage, repl: Replication, bolt_port: int) -> None:
        self.storage = storage
        self.repl = repl
        self.bolt_port = bolt_port

    @staticmethod
    def parse(text: str) -> tuple[c.Query, float]:
        """Parse only (the HIGH-priority step of a RUN); returns the query and the parse time."""
        t0 = time.perf_counter()
        q = c.parse(text)
        return q, time.perf_counter() - t0

    @staticmethod
    def priority(q: c.Query) -> Priority:
        return Priority.HIGH if isinstance(q, c.HIGH_PRIORITY_QUERIES) else Priority.LOW

    def prepare(self, q: c.Query, parse_s: float, params: dict[str, Any], in_tx: bool) -> Prepared:
        """The checks Memgraph does at prepare time (raises QueryError)."""
        if in_tx and type(q) in IN_TX_REFUSED:
            raise c.QueryError(multicommand(IN_TX_REFUSED[type(q)]))
        if isinstance(q, c.WRITE_QUERIES) and self.repl.role != "main":
            raise c.QueryError(WRITE_ON_REPLICA)
        return Prepared(q, params, _fields(q), parse_s)

    @staticmethod
    def takes_storage_txn(q: c.Query) -> bool:
        return isinstance(q, c.CreateNodes | c.CreateIndex | c.MatchCount | c.MatchProp | c.ReturnValues
                          | c.SleepCall)

    def begin(self) -> Txn:
        return self.storage.begin()

    def commit(self, txn: Txn) -> None:
        """Commit a transaction; read-only ones take no commit timestamp (2.4)."""
        if txn.is_write:
            self.repl.commit_write(txn.ops)

    def execute(self, prep: Prepared, txn: Txn | None) -> Outcome:
        """Run a prepared query. With txn None a data query runs in its own auto-commit transaction."""
        q = prep.query
        if not self.takes_storage_txn(q):
            return self._system(q)
        own = txn is None
        tx = self.storage.begin() if txn is None else txn
        out = self._data(q, prep.params, tx)
        if own:
            self.commit(tx)
        return out

    def _system(self, q: c.Query) -> Outcome:
        r = self.repl
        if isinstance(q, c.ShowRole):
            return Outcome([[r.show_role()]], "rw")
        if isinstance(q, c.ShowReplicas):
            return Outcome(r.rows(), "rw")
        if isinstance(q, c.ShowVersion):
            return Outcome([[VERSION]], "rw")
        if isinstance(q, c.ShowStorageInfo):
            return Outcome(self._storage_info(q.scoped), "rw")
        if isinstance(q, c.CreateSnapshot):
            try:
                return Outcome([[str(r.create_snapshot(force=True))]], "rw")
            except NothingNewToWrite as exc:  # not with force=True; kept for the text
                raise c.QueryError(str(exc)) from exc
        if isinstance(q, c.SetRole):
            return self._set_role(q)
        if isinstance(q, c.RegisterReplica):
            r.register(ReplicaConfig(q.name, q.mode, q.address, q.host, q.port))
            return Outcome([], "rw", notifications=[_note("INFO", "RegisterReplica",
                                                           f"Replica {q.name} is registered.")])
        if isinstance(q, c.DropReplica):
            r.drop(q.name)
            note = _note("INFO", "DropReplica", f"Replica {q.name} is dropped.")
            return Outcome([], "rw", notifications=[note])
        raise c.QueryError("Invalid query")

    def _set_role(self, q: c.SetRole) -> Outcome:
        if q.to_main:
            self.repl.set_main()
            return Outcome([], "rw", notifications=[_note("INFO", "SetReplica", "Replica role set to MAIN.")])
        if q.port is None:
            raise ReplicationQueryError("Replica must set a port!")
        self.repl.set_replica(q.port)
        notes = [_note("INFO", "SetReplica", "Replica role set to REPLICA.")]
        if q.port == self.bolt_port:
            notes.append(_note("WARNING", "ReplicaPortWarning",
                               "Be careful the replication port must be different from the memgraph port!"))
        return Outcome([], "rw", notifications=notes)

    def _storage_info(self, scoped: bool) -> list[list[Any]]:
        """Appendix: 3.11+ unscoped = instance-level rows only; scoped = database rows with the counts."""
        if not scoped:
            return [["memory_res", "40.00MiB"], ["peak_memory_res", "40.00MiB"], ["disk_usage", "0B"],
                    ["memory_tracked", "10.00MiB"], ["allocation_limit", "1.00GiB"],
                    ["global_isolation_level", "SNAPSHOT_ISOLATION"],
                    ["session_isolation_level", ""], ["next_session_isolation_level", ""],
                    ["global_storage_mode", "IN_MEMORY_TRANSACTIONAL"]]
        vertices = self.storage.vertex_count()
        return [["name", "memgraph"], ["vertex_count", vertices], ["edge_count", 0],
                ["average_degree", 0.0], ["vm_max_map_count", 262144], ["memory_res", "40.00MiB"],
                ["disk_usage", "0B"], ["storage_mode", "IN_MEMORY_TRANSACTIONAL"],
                ["isolation_level", "SNAPSHOT_ISOLATION"], ["durability", {"snapshot_enabled": True,
                                                                           "WAL_enabled": True}]]

    def _data(self, q: c.Query, params: dict[str, Any], tx: Txn) -> Outcome:
        if isinstance(q, c.ReturnValues):
            return Outcome([[_value(v, params) for v, _ in q.items]], "r")
        if isinstance(q, c.SleepCall):
            time.sleep(q.seconds)  # holds the Bolt worker, as a long analytical query does
            return Outcome([], "r")
        if isinstance(q, c.MatchCount):
            return Outcome([[self.storage.count(q.label, tx)]], "r")
        if isinstance(q, c.MatchProp):
            return Outcome([[v] for v in self.storage.values(q.label, q.key, tx)], "r")
        if isinstance(q, c.CreateIndex):
            tx.ops.append({"op": "index", "label": q.label, "prop": q.prop})
            return Outcome([], "w")
        if isinstance(q, c.CreateNodes):
            return self._create(q, params, tx)
        raise c.QueryError("Invalid query")

    def _create(self, q: c.CreateNodes, params: dict[str, Any], tx: Txn) -> Outcome:
        stats = {"nodes-created": 0, "labels-added": 0, "properties-set": 0}
        for node in q.nodes:
            props = {}
            for key, raw in node.props:
                value = _value(raw, params)
                if not _storable(value):
                    raise c.QueryError(f"Unsupported property type for '{key}'.")
                if value is not None:
                    props[key] = value
            tx.ops.append({"op": "create", "labels": list(node.labels), "props": props})
            stats["nodes-created"] += 1
            stats["labels-added"] += len(node.labels)
            stats["properties-set"] += len(props)
        return Outcome([], "w", stats={k: v for k, v in stats.items() if v})


def _value(raw: Any, params: dict[str, Any]) -> Any:
    if isinstance(raw, c.Param):
        if raw.name not in params:
            raise c.QueryError(f"Parameter ${raw.name} not provided.")
        return params[raw.name]
    return raw


def _storable(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, SCALARS) for v in value)
    return isinstance(value, SCALARS)
