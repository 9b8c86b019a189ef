"""One emulated Memgraph instance: wires storage, replication, the engine, Bolt and the test controls.

Role: process-level assembly and the in-process API for tests (`cut`, `heal`, `delay`, `isolate`,
`busy`, `commit_faults`, `state`). Startup order: recover storage from the data directory (or move it to
`.backup` with --data-recovery-on-startup=false; 2.4 burns one timestamp), restore the replication state
(4.3), start the periodic snapshot (`--storage-snapshot-interval-sec`, Memgraph's packaged default 300 s),
then listen for Bolt. Shutdown: stop listening, stop replica clients and the replication server, write a
snapshot when `--storage-snapshot-on-exit` (packaged default true, so a clean stop puts the epoch on disk
too, reference 7.2), close the WAL.

Must never: be imported by agent/ or coordinator/ code (the test API is for tests and sim/ only).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.memgraph.audit import CommandAudit
from sim.memgraph.bolt import BoltServer
from sim.memgraph.controls import CommitFaults
from sim.memgraph.durability import load_auth
from sim.memgraph.engine import Engine
from sim.memgraph.replication import Replication
from sim.memgraph.replication_wire import Faults
from sim.memgraph.storage import NothingNewToWrite, Storage
from sim.memgraph.timings import MemgraphTimings
from sim.memgraph.workers import BoltWorkers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Command-line settings of one instance."""

    host: str
    bolt_port: int
    replication_port: int
    data_dir: Path
    user: str | None = None
    password: str | None = None
    hosts_file: Path | None = None
    admin_port: int = 0
    restore: bool = True
    recover_data: bool = True
    replication_bind: str = "0.0.0.0"
    bolt_workers: int = 2
    snapshot_interval_s: float = 300.0
    snapshot_on_exit: bool = True
    snapshot_retention: int = 3
    wal_flush_every_n: int = 100000
    timings: MemgraphTimings = field(default_factory=MemgraphTimings)
    audit_file: Path | None = None  # the replication-command audit (sim.memgraph.audit)


class Instance:
    """A running emulated Memgraph (in the current process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.faults = Faults()
        self.commit_faults = CommitFaults()
        self.workers = BoltWorkers(settings.bolt_workers)
        self.storage = Storage(settings.data_dir, settings.wal_flush_every_n, settings.snapshot_retention)
        self.storage.recover(settings.recover_data)
        self.bolt_port = 0
        self.repl: Replication | None = None
        self.bolt: BoltServer | None = None
        self._stop = threading.Event()
        self._snapshotter: threading.Thread | None = None

    def start(self) -> None:
        s = self.settings
        auth = load_auth(s.data_dir, s.user, s.password)
        sender = {"host": s.host, "id": f"{s.host}:{s.bolt_port}"}
        self.repl = Replication(self.storage, s.data_dir, s.replication_bind, sender, s.restore, s.timings,
                                s.hosts_file, self.faults, self.commit_faults)
        engine = Engine(self.storage, self.repl, s.bolt_port)
        self.bolt = BoltServer(s.host, s.bolt_port, engine, auth, self.faults, self.workers,
                               CommandAudit(s.audit_file))
        self.bolt_port = engine.bolt_port = self.bolt.port
        self.repl.sender = {"host": s.host, "id": f"{s.host}:{self.bolt_port}"}
        self.repl.start()
        if s.snapshot_interval_s > 0:
            self._snapshotter = threading.Thread(target=self._periodic_snapshots, name="snapshots",
                                                 daemon=True)
            self._snapshotter.start()
        self.bolt.start()
        log.info("memgraph emulator listening on %s:%d (role %s)", s.host, self.bolt_port, self.repl.role)

    def _periodic_snapshots(self) -> None:
        while not self._stop.wait(self.settings.snapshot_interval_s):
            self._snapshot("periodic")

    def _snapshot(self, trigger: str) -> None:
        """Periodic or on exit; the periodic one waits for a commit in flight (Replication.create_snapshot),
        the one on exit runs after Bolt and replication stopped."""
        try:
            if self.repl is not None and trigger == "periodic":
                self.repl.create_snapshot(force=False)
            else:
                self.storage.create_snapshot(force=False)
        except NothingNewToWrite:
            log.info("%s snapshot skipped: Nothing has been written since the last snapshot", trigger)
        except OSError as exc:
            log.warning("%s snapshot failed: %s", trigger, exc)

    def stop(self) -> None:
        self._stop.set()
        if self.bolt is not None:
            self.bolt.close()
        if self.repl is not None:
            self.repl.stop()
        if self.settings.snapshot_on_exit:
            self._snapshot("on-exit")
        self.storage.close()

    # ----- test controls (the admin server's, never Bolt's) -----

    def cut(self, peer: str) -> None:
        with self.faults.lock:
            self.faults.cut.add(peer)
        log.warning("fault: replication link to/from %s cut", peer)

    def heal(self, peer: str | None = None) -> None:
        with self.faults.lock:
            if peer is None:
                self.faults.cut.clear()
            else:
                self.faults.cut.discard(peer)
        log.warning("fault: healed %s", peer or "all links")

    def delay(self, ms: int) -> None:
        with self.faults.lock:
            self.faults.delay_ms = max(0, int(ms))
        log.warning("fault: replication delayed by %d ms", ms)

    def isolate(self, on: bool = True) -> None:
        with self.faults.lock:
            self.faults.isolated = on
        log.warning("fault: isolated=%s", on)

    def busy(self, seconds: float, workers: int | None = None) -> None:
        self.workers.occupy(self.workers.mixed if workers is None else workers, seconds)

    def state(self) -> dict[str, Any]:
        repl = self.repl
        st = self.storage
        with st.lock:
            doc: dict[str, Any] = {"epoch": st.epoch, "ldt": st.ldt, "ts": st.ts, "history": st.history,
                                   "vertex_count": len(st.nodes), "indexes": st.indexes}
        if repl is not None:
            with repl.lock:
                doc.update(role=repl.role, uuid=repl.main_uuid, replica_port=repl.replica_port,
                           replicas={n: {"address": c.cfg.address, "mode": c.cfg.mode, "status": c.status,
                                         "ts": c.ts} for n, c in repl.replicas.items()})
            prepared = repl.handlers.prepared
            doc["prepared_commit_ts"] = None if prepared is None else prepared.commit_ts
        doc.update(bolt_port=self.bolt_port, faults=self.faults.as_dict(), workers=self.workers.stats(),
                   commit_fault=self.commit_faults.as_dict())
        return doc
