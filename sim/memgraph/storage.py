"""Graph data, transactions, timestamps, epochs and durability of one emulated Memgraph instance.

Role: hold the nodes and indexes, hand out timestamps exactly as reference memgraph-replication 2.4 says
(one shared counter T; every storage transaction takes `start = T++`, a write commit takes one more;
`ldt` is the commit timestamp of the last write; a fresh instance burns T = 0 at startup, so the first
write commits at 2), keep the epoch and its history (reference 4.1: `SaveLatestHistory` pushes
`(epoch, ldt)` unless the last entry has the same ldt), and make every commit durable before it is
acknowledged: an append-only JSON-lines log `wal.jsonl` in the data directory, fsync'ed per record,
compacted by an atomic rename when a replica loads a recovery snapshot. A torn last line (kill -9 during
a write that was never acknowledged) is ignored at recovery.

Must never: acknowledge a commit before it is on disk, talk to the network, or know about roles.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
WAL_NAME = "wal.jsonl"


@dataclass
class Txn:
    """One storage transaction: its start timestamp and the writes it buffers until commit."""

    start_ts: int
    ops: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_write(self) -> bool:
        return bool(self.ops)


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, doc: Any) -> None:
    """Write `doc` to `path` through a temporary file, fsync and rename (all or nothing)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Storage:
    """In-memory graph plus its write-ahead log. Thread-safe through one internal lock."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.lock = threading.RLock()
        self.nodes: list[dict[str, Any]] = []
        self.indexes: list[tuple[str, str]] = []
        self.ts = 0  # the shared counter T
        self.ldt = 0
        self.epoch = str(uuid.uuid4())
        self.history: list[tuple[str, int]] = []
        self.wal_path = data_dir / WAL_NAME
        self._wal: Any = None

    # ----- recovery and durability -----

    def recover(self) -> int:
        """Replay the WAL (if any), open it for appends, and burn one timestamp for startup (2.4).

        Returns the number of records replayed.
        """
        n = 0
        if self.wal_path.exists():
            with open(self.wal_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        log.warning("ignoring a torn WAL record at the end of %s", self.wal_path)
                        break
                    self._replay(rec)
                    n += 1
        if n:
            self.ts = max(self.ts, self.ldt + 1)  # T = max(T, recovered next_timestamp)
        self._wal = open(self.wal_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self.ts += 1  # DbmsHandler::RestoreTriggers opens one accessor at startup (reference 2.4)
        return n

    def _replay(self, rec: dict[str, Any]) -> None:
        kind = rec.get("k")
        if kind == "commit":
            self._apply_ops(rec["ops"])
            self.ldt = int(rec["ts"])
            self.epoch = rec["epoch"]
        elif kind == "epoch":
            self.epoch = rec["epoch"]
            self.history = [(e, int(t)) for e, t in rec["history"]]
        elif kind == "snapshot":
            self._load(rec)

    def _append(self, rec: dict[str, Any]) -> None:
        if self._wal is None:
            raise RuntimeError("storage not recovered/opened")
        self._wal.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._wal.flush()
        os.fsync(self._wal.fileno())

    def close(self) -> None:
        with self.lock:
            if self._wal is not None:
                with contextlib.suppress(OSError):
                    self._wal.close()
                self._wal = None

    # ----- transactions and timestamps -----

    def begin(self) -> Txn:
        """Start a storage transaction: `start = T++` (reference 2.4)."""
        with self.lock:
            txn = Txn(self.ts)
            self.ts += 1
            return txn

    def next_commit_ts(self) -> int:
        """A write commit takes one more timestamp (reference 2.4)."""
        with self.lock:
            ts = self.ts
            self.ts += 1
            return ts

    def commit(self, ops: list[dict[str, Any]], commit_ts: int) -> None:
        """Make a write durable (fsync) and visible. Used by a MAIN and by a replica applying a commit."""
        with self.lock:
            self._append({"k": "commit", "ts": commit_ts, "epoch": self.epoch, "ops": ops})
            self._apply_ops(ops)
            self.ldt = commit_ts
            self.ts = max(self.ts, commit_ts + 1)

    def _apply_ops(self, ops: list[dict[str, Any]]) -> None:
        for op in ops:
            if op["op"] == "create":
                self.nodes.append({"labels": list(op["labels"]), "props": dict(op["props"])})
            elif op["op"] == "index":
                key = (op["label"], op["prop"])
                if key not in self.indexes:
                    self.indexes.append(key)

    # ----- epochs (reference 4.1) -----

    def save_latest_history(self) -> None:
        with self.lock:
            if not self.history or self.history[-1][1] != self.ldt:
                self.history.append((self.epoch, self.ldt))

    def new_epoch(self) -> str:
        """Promotion: save history, generate a new epoch, bump T past ldt, persist (reference 4.1)."""
        with self.lock:
            self.save_latest_history()
            self.epoch = str(uuid.uuid4())
            self.ts = max(self.ts, self.ldt + 1)
            self._persist_epoch()
            log.info("Generated new epoch %s", self.epoch)
            return self.epoch

    def adopt_epoch(self, epoch: str) -> None:
        """Replica side: a transaction from another epoch arrives (PrepareCommitHandler, reference 4.1)."""
        with self.lock:
            if epoch == self.epoch:
                return
            self.save_latest_history()
            self.epoch = epoch
            self._persist_epoch()

    def _persist_epoch(self) -> None:
        self._append({"k": "epoch", "epoch": self.epoch, "history": [list(h) for h in self.history]})

    def last_epoch_with_commit(self) -> str:
        """The last history epoch if the current epoch has no commits, else the current one (4.1)."""
        with self.lock:
            if self.history and self.history[-1][1] == self.ldt:
                return self.history[-1][0]
            return self.epoch

    # ----- snapshots (recovery of a replica) -----

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "k": "snapshot",
                "nodes": [dict(n) for n in self.nodes],
                "indexes": [list(i) for i in self.indexes],
                "ldt": self.ldt,
                "epoch": self.epoch,
                "history": [list(h) for h in self.history],
            }

    def _load(self, snap: dict[str, Any]) -> None:
        self.nodes = [{"labels": list(n["labels"]), "props": dict(n["props"])} for n in snap["nodes"]]
        self.indexes = [(str(a), str(b)) for a, b in snap["indexes"]]
        self.ldt = int(snap["ldt"])
        self.epoch = snap["epoch"]
        self.history = [(e, int(t)) for e, t in snap["history"]]

    def install_snapshot(self, snap: dict[str, Any]) -> None:
        """Replace everything with a main's snapshot; the WAL is rewritten atomically to that snapshot."""
        with self.lock:
            snap = dict(snap, k="snapshot")
            if self._wal is not None:
                self._wal.close()
            tmp = self.wal_path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(json.dumps(snap, separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.wal_path)
            fsync_dir(self.data_dir)
            self._wal = open(self.wal_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self._load(snap)
            self.ts = max(self.ts, self.ldt + 1)

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
