"""The emulator's data directory, laid out as Memgraph lays it out; the file formats are the emulator's own.

Role: every file the emulator keeps under `--data-dir`, with Memgraph's directory names and contents
(reference memgraph-replication 7.5, 4.3, 7.2-7.3; read at memgraph/memgraph df0f636):
- `snapshots/`: full snapshots named `<utc>_timestamp_<ldt>`, each with the graph, the last durable
  timestamp, the epoch AND the epoch history (`storage/v2/durability/snapshot.cpp` ~212-240, 491). Written
  by `CREATE SNAPSHOT`, every `--storage-snapshot-interval-sec` if something changed, on exit with
  `--storage-snapshot-on-exit`; the newest `--storage-snapshot-retention-count` are kept.
- `wal/`: write-ahead-log files. Each starts with a header carrying the epoch it was opened in (the only
  place the epoch reaches disk besides a snapshot: `PrepareForNewEpoch` only finalizes the current file,
  `storage/v2/inmemory/storage.cpp:4783`, so a new epoch is written with the next commit's new file). A
  transaction is written with a commit flag; a two-phase commit writes it `commit=false` and flips the
  flag in place once the votes are in (storage.cpp:1216); replay skips `commit=false` transactions
  (`wal.cpp:2261`). Writes reach the OS at once (a kill -9 loses nothing written), an fsync happens every
  `--storage-wal-file-flush-every-n-tx` transactions (Memgraph's default 100000).
- `replication/`: role, main UUID and registered replicas (Memgraph: a RocksDB; here `state.json`).
- `auth/`: users (Memgraph: a RocksDB; here `users.json` with a salted hash, never the password).
- `.backup/snapshots`, `.backup/wal`: where `--data-recovery-on-startup=false` moves old files
  (storage.cpp:462-489). `snapshots/.old`, `wal/.old`: where a replica moves its superseded files when it
  loads a snapshot from its MAIN (`ArchiveSupersededDurabilityFiles`, storage.cpp:3769; an older `.old`
  is dropped first, as Memgraph does).
Recovery follows `durability.cpp:600-790`: the newest snapshot gives data, epoch and history; the WAL
files then replay the transactions after it; every file that added committed transactions sets the epoch
(and pushes or updates its history entry); without a snapshot the epoch starts as the newest WAL file's.

Must never: acknowledge-then-lose a write on a process crash, delete a `.backup`, or read a torn last
line as data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SNAPSHOTS, WAL, REPLICATION, AUTH, BACKUP, OLD = "snapshots", "wal", "replication", "auth", ".backup", ".old"
_FLAG_PREFIX = '{"k":"txn","c":'


def fsync_dir(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, doc: Any) -> None:
    """Write `doc` to `path` through a temporary file, fsync and rename (all or nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")


@dataclass
class WalTxn:
    """A committed transaction as the WAL (and recovery by WAL files) carries it."""

    epoch: str
    ts: int
    ops: list[dict[str, Any]]


@dataclass
class Recovered:
    """What the data directory held at start."""

    snapshot: dict[str, Any] | None
    txns: list[WalTxn]  # committed transactions after the snapshot, in order
    epoch: str | None  # None: nothing on disk (a fresh storage takes a new random epoch)
    history: list[tuple[str, int]] = field(default_factory=list)
    wal_seq: int = 0


class WalFile:
    """One open WAL file: header with the epoch, then transactions; the commit flag can be flipped."""

    def __init__(self, path: Path, epoch: str, seq: int) -> None:
        self.path, self.epoch, self.seq = path, epoch, seq
        self.fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.size = 0
        self.max_ts = 0
        self._write(json.dumps({"k": "wal", "epoch": epoch, "seq": seq}, separators=(",", ":")) + "\n")

    def _write(self, text: str) -> int:
        data = text.encode("utf-8")
        at = self.size
        os.pwrite(self.fd, data, at)
        self.size += len(data)
        return at

    def append(self, ts: int, ops: list[dict[str, Any]], committed: bool) -> int:
        """Append a transaction; returns the offset of its commit flag."""
        body = json.dumps(ops, separators=(",", ":"))
        line = f'{_FLAG_PREFIX}{1 if committed else 0},"ts":{ts},"ops":{body}}}\n'
        self.max_ts = max(self.max_ts, ts)
        return self._write(line) + len(_FLAG_PREFIX)

    def flip(self, flag_offset: int) -> None:
        os.pwrite(self.fd, b"1", flag_offset)

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self.fd)
            os.close(self.fd)


def read_wal(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Header and records of a WAL file; a torn last line (kill -9 mid-write) ends the file."""
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                log.warning("ignoring a torn record at the end of %s", path)
                break
            if rec.get("k") == "wal":
                header = rec
            elif rec.get("k") == "txn":
                records.append(rec)
    return header, records


class Durability:
    """The data directory of one instance."""

    def __init__(self, data_dir: Path, flush_every_n: int = 100000, retention: int = 3) -> None:
        self.root = data_dir
        self.snap_dir, self.wal_dir = data_dir / SNAPSHOTS, data_dir / WAL
        self.flush_every_n = max(1, flush_every_n)
        self.retention = max(1, retention)
        self.wal: WalFile | None = None
        self.next_seq = 0
        self._since_fsync = 0

    # ----- start -----

    def recover(self, recover_data: bool) -> Recovered:
        for d in (self.snap_dir, self.wal_dir):
            d.mkdir(parents=True, exist_ok=True)
        if not recover_data:
            self._move_to_backup()
            return Recovered(None, [], None)
        snapshot = self.latest_snapshot()
        wal_files = self._wal_files()
        rec = Recovered(snapshot, [], None)
        last = 0
        if snapshot is not None:
            rec.epoch, last = str(snapshot["epoch"]), int(snapshot["ldt"])
            rec.history = [(str(e), int(t)) for e, t in snapshot["history"]]
        for path in wal_files:
            header, records = read_wal(path)
            if header is None:
                continue
            rec.wal_seq = max(rec.wal_seq, int(header["seq"]) + 1)
            if snapshot is None and rec.epoch is None:
                rec.epoch = str(self._newest_epoch(wal_files))
            added = [WalTxn(str(header["epoch"]), int(r["ts"]), r["ops"]) for r in records
                     if r.get("c") == 1 and int(r["ts"]) > last]
            if not added:
                continue
            rec.txns += added
            last = added[-1].ts
            if rec.history and rec.history[-1][0] == header["epoch"]:
                rec.history[-1] = (rec.history[-1][0], last)
            else:
                rec.history.append((str(header["epoch"]), last))
                rec.epoch = str(header["epoch"])
        self.next_seq = rec.wal_seq
        return rec

    def _newest_epoch(self, wal_files: list[Path]) -> str:
        header, _ = read_wal(wal_files[-1])
        return str(header["epoch"]) if header else ""

    def _move_to_backup(self) -> None:
        """--data-recovery-on-startup=false: old snapshot and WAL files go to `.backup/<dir>/`."""
        moved = 0
        for d in (self.snap_dir, self.wal_dir):
            for item in sorted(p for p in d.iterdir() if p.is_file()):
                target = self.root / BACKUP / d.name
                target.mkdir(parents=True, exist_ok=True)
                os.replace(item, target / item.name)
                moved += 1
        if moved:
            log.warning("Since Memgraph was not supposed to recover on startup and durability is enabled, "
                        "your current durability files will likely be overridden. To prevent important data "
                        "loss, Memgraph has stored those files into a .backup directory inside the storage "
                        "directory.")

    def _wal_files(self) -> list[Path]:
        return sorted(p for p in self.wal_dir.iterdir() if p.is_file() and p.name.startswith("wal_"))

    def _snapshot_files(self) -> list[Path]:
        return sorted(p for p in self.snap_dir.iterdir() if p.is_file() and "_timestamp_" in p.name
                      and not p.name.endswith(".tmp"))

    def latest_snapshot(self) -> dict[str, Any] | None:
        for path in reversed(self._snapshot_files()):
            try:
                doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                return doc
            except (OSError, ValueError) as exc:
                log.warning("Couldn't recover snapshot from %s because of: %s.", path, exc)
        return None

    # ----- the WAL -----

    def write_txn(self, epoch: str, ts: int, ops: list[dict[str, Any]],
                  committed: bool) -> tuple[WalFile, int]:
        """Append one transaction to the current WAL file (opened with `epoch` if none is open)."""
        if self.wal is None:
            self.wal = WalFile(self.wal_dir / f"wal_{self.next_seq:06d}", epoch, self.next_seq)
            self.next_seq += 1
            fsync_dir(self.wal_dir)
        offset = self.wal.append(ts, ops, committed)
        self._since_fsync += 1
        if self._since_fsync >= self.flush_every_n:
            self.wal.fsync()
            self._since_fsync = 0
        return self.wal, offset

    def finalize_wal(self) -> None:
        """Close the current WAL file; the next transaction opens a new one (with the then-current epoch)."""
        if self.wal is not None:
            self.wal.close()
            self.wal = None

    # ----- snapshots -----

    def write_snapshot(self, doc: dict[str, Any]) -> Path:
        """Write a snapshot file (atomic), keep the newest `retention`, drop WAL files they cover."""
        self.finalize_wal()
        path = self.snap_dir / f"{_stamp()}_timestamp_{int(doc['ldt'])}"
        atomic_write_json(path, doc)
        snaps = self._snapshot_files()
        for old in snaps[:-self.retention]:
            old.unlink(missing_ok=True)
        oldest_kept = int(json.loads(snaps[-self.retention:][0].read_text(encoding="utf-8"))["ldt"])
        for wal in self._wal_files():
            _, records = read_wal(wal)
            if all(int(r["ts"]) <= oldest_kept for r in records):
                wal.unlink(missing_ok=True)
        return path

    def install_snapshot(self, doc: dict[str, Any]) -> Path:
        """Replica loading its MAIN's snapshot: superseded files go to `<dir>/.old` (older `.old` dropped)."""
        self.finalize_wal()
        for d in (self.snap_dir, self.wal_dir):
            old = d / OLD
            shutil.rmtree(old, ignore_errors=True)
            files = [p for p in d.iterdir() if p.is_file()]
            if files:
                old.mkdir()
                for p in files:
                    os.replace(p, old / p.name)
        path = self.snap_dir / f"{_stamp()}_timestamp_{int(doc['ldt'])}"
        atomic_write_json(path, doc)
        return path

    def close(self) -> None:
        self.finalize_wal()


# ----- replication/ and auth/ -----


def load_replication_state(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / REPLICATION / "state.json"
    if not path.exists():
        return None
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def save_replication_state(data_dir: Path, doc: dict[str, Any]) -> None:
    atomic_write_json(data_dir / REPLICATION / "state.json", doc)


def _hash(password: str, salt: str) -> str:
    return hashlib.sha256((salt + password).encode("utf-8")).hexdigest()


def load_auth(data_dir: Path, user: str | None, password: str | None) -> tuple[str, str] | None:
    """The credentials Bolt checks. A --user given at start is stored in `auth/` (as Memgraph stores the
    MEMGRAPH_USER it is started with); without it, the users already in `auth/` still apply."""
    path = data_dir / AUTH / "users.json"
    if user:
        salt = secrets.token_hex(8)
        atomic_write_json(path, {"users": {user: {"salt": salt, "hash": _hash(password or "", salt)}}})
    if not path.exists():
        return None
    users = json.loads(path.read_text(encoding="utf-8")).get("users", {})
    if not users:
        return None
    name, entry = next(iter(users.items()))
    return str(name), f"{entry['salt']}:{entry['hash']}"


def check_password(stored: str, password: str) -> bool:
    salt, digest = stored.split(":", 1)
    return secrets.compare_digest(_hash(password, salt), digest)
