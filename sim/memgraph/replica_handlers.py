"""The replica side of replication: what a REPLICA does with each RPC its MAIN sends.

Role: reference memgraph-replication 3.3 and 7.1 step 4, as `src/dbms/inmemory/replication_handlers.cpp`
(memgraph/memgraph df0f636) has them:
- SwapMainUUID is accepted unconditionally on a replica and persisted (`:335-357`); it leaves a prepared
  transaction alone.
- Every data RPC whose `main_uuid` differs from the stored one is refused with `success: false` and the
  log line `Received <Rpc> with main_id: X != current_main_uuid: Y` (3.3).
- Heartbeat (`:362-403`): `{success, ldt, epoch}` where epoch is the last epoch with a commit.
- PrepareCommit (`:405-515`): first ABORT any older prepared transaction (a MAIN that died before its
  finalize, a new MAIN that prepares), then adopt the MAIN's epoch, and only then refuse when the MAIN's
  previous timestamp is AHEAD of this replica (`prev_ldt > ldt`, "could be set by snapshot"; a replica
  ahead in the same epoch accepts: the silent divergence of 7.2). A two-phase transaction is written to
  the WAL with `commit=false` and kept invisible until its finalize; SYNC/ASYNC ones commit at once.
- FinalizeCommit (`:517-592`): decision true flips the WAL flag and makes the data visible; false aborts.
  A finalize for no cached transaction, or for another timestamp, answers `success: true` and changes
  nothing.
- Snapshot / WalFiles (recovery, 3.2): a snapshot replaces everything (old files to `.old`, aborting a
  prepared transaction first, `AbortPrevTxnIfNeeded`); WAL transactions are applied in order.
- A prepared transaction is aborted when the replica is promoted (`replication_handler.cpp:282`
  `DestroyReplAccessor`) and is gone after a restart (its WAL entry has `commit=false`).

Must never: apply a prepared transaction without a finalize, refuse a replica that is merely ahead, or
take the MAIN-side commit lock (a promotion waits for running handlers, `ReplicationServer.close`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.memgraph.durability import WalTxn
from sim.memgraph.storage import WalPosition

if TYPE_CHECKING:
    from sim.memgraph.replication import Replication

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """The replica's two-phase-commit cache (`two_pc_cache_`): one prepared transaction at most."""

    commit_ts: int
    ops: list[dict[str, Any]]
    pos: WalPosition


class ReplicaHandlers:
    """RPC handlers of one instance while it is a REPLICA."""

    def __init__(self, repl: Replication) -> None:
        self.repl = repl
        self.storage = repl.storage
        self.lock = threading.RLock()
        self.prepared: Prepared | None = None

    def abort_prepared(self, why: str) -> None:
        """DestroyReplAccessor: drop the prepared transaction (its WAL entry stays `commit=false`)."""
        with self.lock:
            if self.prepared is not None:
                log.warning("aborting prepared transaction %d (%s)", self.prepared.commit_ts, why)
                self.prepared = None

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        kind = str(msg.get("type"))
        with self.lock:
            if self.repl.role != "replica":
                return {"success": False, "error": "not a replica"}
            if kind == "SwapMainUUID":
                self.repl.accept_main_uuid(str(msg["uuid"]))
                return {"success": True}
            if kind == "FrequentHeartbeat":
                return {"success": True}
            if msg.get("main_uuid") != self.repl.main_uuid:
                log.warning("Received %sRpc with main_id: %s != current_main_uuid: %s", kind,
                            msg.get("main_uuid"), self.repl.main_uuid)
                return {"success": False, "ldt": 0, "epoch": ""}
            handler = {"Heartbeat": self._heartbeat, "PrepareCommit": self._prepare,
                       "FinalizeCommit": self._finalize, "Snapshot": self._snapshot,
                       "WalFiles": self._wal_files}.get(kind)
            if handler is None:
                return {"success": False, "error": f"unknown request {kind}"}
            return handler(msg)

    def _heartbeat(self, _msg: dict[str, Any]) -> dict[str, Any]:
        st = self.storage
        return {"success": True, "ldt": st.ldt, "epoch": st.last_epoch_with_commit()}

    def _prepare(self, msg: dict[str, Any]) -> dict[str, Any]:
        if not self.repl.state_lock.try_read():
            log.warning("Failed to take repl state read lock, cannot commit")
            return {"success": False}
        try:
            return self._prepare_locked(msg)
        finally:
            self.repl.state_lock.release_read()

    def _prepare_locked(self, msg: dict[str, Any]) -> dict[str, Any]:
        st = self.storage
        self.abort_prepared("a new PrepareCommit arrived")
        st.adopt_epoch(str(msg["epoch"]))
        if int(msg["prev_ldt"]) > st.ldt:
            log.warning("PrepareCommit refused: main's previous timestamp %s is ahead of ours %d",
                        msg["prev_ldt"], st.ldt)
            return {"success": False}
        ts, ops = int(msg["commit_ts"]), list(msg["ops"])
        if msg.get("two_phase"):
            self.prepared = Prepared(ts, ops, st.write_wal(ts, ops, committed=False))
        else:
            st.commit(ops, ts)
        return {"success": True}

    def _finalize(self, msg: dict[str, Any]) -> dict[str, Any]:
        p = self.prepared
        if p is None:
            log.warning("Cached commit accessor became invalid between two phases")
            return {"success": True}
        if int(msg["commit_ts"]) != p.commit_ts:
            log.warning("Trying to finalize txn with ldt %s but the last prepared txn is with ldt %d",
                        msg["commit_ts"], p.commit_ts)
            return {"success": True}
        self.prepared = None
        if msg.get("decision"):
            self.storage.make_visible(p.commit_ts, p.ops, p.pos, flip=True)
        return {"success": True}

    def _snapshot(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.abort_prepared("a snapshot arrived")
        self.storage.install_snapshot(msg["snapshot"])
        return {"success": True, "ldt": self.storage.ldt}

    def _wal_files(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.abort_prepared("WAL files arrived")
        txns = [WalTxn(str(t["epoch"]), int(t["ts"]), list(t["ops"])) for t in msg["txns"]]
        self.storage.apply_wal_txns(txns)
        return {"success": True, "ldt": self.storage.ldt}
