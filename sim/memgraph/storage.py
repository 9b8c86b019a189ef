"""Graph data, transactions, timestamps and epochs of one emulated Memgraph instance.

Role: hold the nodes and indexes; hand out timestamps as reference memgraph-replication 2.4 says (one
counter T; every storage transaction takes `start = T++`, a write commit one more; `ldt` is the commit
timestamp of the last write; startup burns one, so the first write on a fresh instance commits at 2); keep
the epoch and its history (4.1: `SaveLatestHistory` pushes `(epoch, ldt)` unless the last entry has that
ldt); write every transaction through `durability.Durability` before it becomes visible; and keep the
committed transactions since the last snapshot in memory, as the WAL files a MAIN ships to catch a replica
up (7.4, `storage/v2/inmemory/replication/recovery.cpp:55-75`).
Epochs reach disk only in a WAL file's header or a snapshot (7.2): `new_epoch` (promotion) and
`adopt_epoch` (a replica receiving another epoch) finalize the current WAL file and change the epoch in
memory only.

Must never: make a write visible before it is in the WAL, talk to the network, or know about roles.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.memgraph.durability import Durability, WalFile, WalTxn

log = logging.getLogger(__name__)


class NothingNewToWrite(Exception):
    """CreateSnapshotError::NothingNewToWrite (periodic / on-exit snapshots are skipped)."""


@dataclass
class Txn:
    """One storage transaction: its start timestamp and the writes it buffers until commit."""

    start_ts: int
    ops: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_write(self) -> bool:
        return bool(self.ops)


@dataclass
class WalPosition:
    """Where a transaction's commit flag sits, to flip it once a two-phase commit is decided."""

    wal: WalFile
    offset: int


class Storage:
    """In-memory graph plus its durability. Thread-safe through one internal lock."""

    def __init__(self, data_dir: Path, flush_every_n: int = 100000, retention: int = 3) -> None:
        self.files = Durability(data_dir, flush_every_n, retention)
        self.lock = threading.RLock()
        self.nodes: list[dict[str, Any]] = []
        self.indexes: list[tuple[str, str]] = []
        self.ts = 0  # the shared counter T
        self.ldt = 0
        self.epoch = str(uuid.uuid4())
        self.history: list[tuple[str, int]] = []
        self.log: list[WalTxn] = []  # committed since the last snapshot (what WAL files would carry)
        self.log_base = 0  # ldt of the last snapshot: a replica behind it needs a snapshot
        self._last_digest: tuple[Any, ...] | None = None

    # ----- start -----

    def recover(self, recover_data: bool = True) -> int:
        """Load the data directory (or move it to .backup), then burn one timestamp (2.4). Returns the
        number of transactions replayed from WAL files."""
        rec = self.files.recover(recover_data)
        with self.lock:
            if rec.snapshot is not None:
                self._load(rec.snapshot)
                self.log_base = self.ldt
            for t in rec.txns:
                self._apply_ops(t.ops)
                self.ldt = t.ts
            self.log = list(rec.txns)
            if rec.epoch is not None:
                self.epoch = rec.epoch
                self.history = list(rec.history)
            if rec.snapshot is not None or rec.txns:
                self.ts = max(self.ts, self.ldt + 1)  # T = max(T, recovered next_timestamp)
            self.ts += 1  # DbmsHandler::RestoreTriggers opens one accessor at startup (reference 2.4)
            self._last_digest = self._digest() if rec.snapshot is not None else None
        return len(rec.txns)

    def close(self) -> None:
        with self.lock:
            self.files.close()

    # ----- transactions and timestamps -----

    def begin(self) -> Txn:
        """Start a storage transaction: `start = T++` (reference 2.4)."""
        with self.lock:
            txn = Txn(self.ts)
            self.ts += 1
            return txn

    def next_commit_ts(self) -> int:
        with self.lock:
            ts = self.ts
            self.ts += 1
            return ts

    def write_wal(self, ts: int, ops: list[dict[str, Any]], committed: bool) -> WalPosition:
        """Step 3 of 7.1: the transaction goes to the local WAL (commit=false in a two-phase commit)."""
        with self.lock:
            wal, offset = self.files.write_txn(self.epoch, ts, ops, committed)
            return WalPosition(wal, offset)

    def make_visible(self, ts: int, ops: list[dict[str, Any]], pos: WalPosition | None,
                     flip: bool) -> None:
        """Step 5 of 7.1: flip the WAL commit flag if asked, make the writes visible, advance ldt."""
        with self.lock:
            if flip and pos is not None:
                pos.wal.flip(pos.offset)
            self._apply_ops(ops)
            self.ldt = ts
            self.ts = max(self.ts, ts + 1)
            self.log.append(WalTxn(self.epoch, ts, ops))

    def commit(self, ops: list[dict[str, Any]], ts: int) -> None:
        """A one-phase commit (WAL with commit=true, then visible): a SYNC/ASYNC replica or recovery."""
        with self.lock:
            self.make_visible(ts, ops, self.write_wal(ts, ops, committed=True), flip=False)

    def _apply_ops(self, ops: list[dict[str, Any]]) -> None:
        for op in ops:
            if op["op"] == "create":
                self.nodes.append({"labels": list(op["labels"]), "props": dict(op["props"])})
            elif op["op"] == "index":
                key = (op["label"], op["prop"])
                if key not in self.indexes:
                    self.indexes.append(key)

    # ----- epochs (reference 4.1, 7.2) -----

    def save_latest_history(self) -> None:
        with self.lock:
            if not self.history or self.history[-1][1] != self.ldt:
                self.history.append((self.epoch, self.ldt))

    def new_epoch(self) -> str:
        """Promotion (`PrepareForNewEpoch`, then a new epoch): NOT written to disk here (7.2)."""
        with self.lock:
            self.files.finalize_wal()
            self.save_latest_history()
            self.epoch = str(uuid.uuid4())
            self.ts = max(self.ts, self.ldt + 1)
            log.info("Generated new epoch %s", self.epoch)
            return self.epoch

    def adopt_epoch(self, epoch: str) -> None:
        """Replica side: a transaction from another epoch arrives (PrepareCommitHandler, 4.1)."""
        with self.lock:
            if epoch == self.epoch:
                return
            self.files.finalize_wal()
            self.save_latest_history()
            self.epoch = epoch

    def last_epoch_with_commit(self) -> str:
        """The last history epoch if the current epoch has no commits, else the current one (4.1)."""
        with self.lock:
            if self.history and self.history[-1][1] == self.ldt:
                return self.history[-1][0]
            return self.epoch

    # ----- snapshots -----

    def _digest(self) -> tuple[Any, ...]:
        return (self.epoch, tuple(self.history), self.ldt)

    def snapshot_doc(self) -> dict[str, Any]:
        with self.lock:
            return {"k": "snapshot", "nodes": [dict(n) for n in self.nodes],
                    "indexes": [list(i) for i in self.indexes], "ldt": self.ldt, "epoch": self.epoch,
                    "history": [list(h) for h in self.history]}

    def create_snapshot(self, force: bool) -> Path:
        """`CREATE SNAPSHOT` (force) or a periodic / on-exit one (skipped when nothing changed): the
        snapshot carries the epoch and its history (7.2)."""
        with self.lock:
            if not force and self._digest() == self._last_digest:
                raise NothingNewToWrite("Nothing has been written since the last snapshot")
            path = self.files.write_snapshot(self.snapshot_doc())
            self._last_digest = self._digest()
            self.log, self.log_base = [], self.ldt
            log.info("snapshot written: %s", path)
            return path

    def _load(self, snap: dict[str, Any]) -> None:
        self.nodes = [{"labels": list(n["labels"]), "props": dict(n["props"])} for n in snap["nodes"]]
        self.indexes = [(str(a), str(b)) for a, b in snap["indexes"]]
        self.ldt = int(snap["ldt"])
        self.epoch = str(snap["epoch"])
        self.history = [(str(e), int(t)) for e, t in snap["history"]]

    def install_snapshot(self, snap: dict[str, Any]) -> None:
        """Replica: replace everything with the MAIN's snapshot (reference 3.2 RecoverReplica)."""
        with self.lock:
            self.files.install_snapshot(snap)
            self._load(snap)
            self.log, self.log_base = [], self.ldt
            self._last_digest = self._digest()
            self.ts = max(self.ts, self.ldt + 1)

    def apply_wal_txns(self, txns: list[WalTxn]) -> None:
        """Replica: load WAL files shipped by the MAIN (each adopts its epoch, as loading a WAL does)."""
        with self.lock:
            for t in txns:
                if t.ts <= self.ldt:
                    continue
                self.adopt_epoch(t.epoch)
                self.commit(t.ops, t.ts)

    def recovery_payload(self, replica_ldt: int) -> tuple[dict[str, Any] | None, list[WalTxn]]:
        """What catches a replica at `replica_ldt` up: WAL transactions when they cover the gap, else the
        latest snapshot plus the WAL transactions after it (7.4, recovery.cpp:55-75)."""
        with self.lock:
            if replica_ldt >= self.log_base:
                return None, [t for t in self.log if t.ts > replica_ldt]
            snap = self.files.latest_snapshot()
            if snap is None or int(snap["ldt"]) != self.log_base:
                snap = self.snapshot_doc()  # (no file yet: what a snapshot taken now would hold)
                return snap, []
            return snap, list(self.log)

    # ----- reads -----

    def _visible(self, txn: Txn | None) -> list[dict[str, Any]]:
        ops = txn.ops if txn else []
        pending = [{"labels": op["labels"], "props": op["props"]} for op in ops if op["op"] == "create"]
        return self.nodes + pending if pending else self.nodes

    def count(self, label: str | None, txn: Txn | None = None) -> int:
        with self.lock:
            return sum(1 for n in self._visible(txn) if label is None or label in n["labels"])

    def values(self, label: str | None, key: str, txn: Txn | None = None) -> list[Any]:
        with self.lock:
            return [n["props"].get(key) for n in self._visible(txn) if label is None or label in n["labels"]]

    def vertex_count(self) -> int:
        with self.lock:
            return len(self.nodes)
