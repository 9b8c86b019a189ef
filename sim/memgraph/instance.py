"""One emulated Memgraph instance: wires storage, replication, the engine, Bolt and the admin server.

Role: process-level assembly and the in-process fault API for tests (`cut`, `heal`, `delay`, `isolate`,
`unisolate`, `state`). Startup order: recover storage (2.4 burns one timestamp), restore the replication
state (4.3), then listen for Bolt. Shutdown: stop listening, stop replica clients and the replication
server, close the WAL (every commit was already fsync'ed, so nothing is flushed here).

Must never: be imported by agent/ or coordinator/ code (the fault API is for tests and sim/ only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.memgraph.bolt import BoltServer
from sim.memgraph.engine import Engine
from sim.memgraph.replication import Replication
from sim.memgraph.replication_wire import Faults
from sim.memgraph.storage import Storage

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
    check_s: float = 1.0


class Instance:
    """A running emulated Memgraph (in the current process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.faults = Faults()
        self.storage = Storage(settings.data_dir)
        self.storage.recover()
        self.bolt_port = 0
        self.repl: Replication | None = None
        self.bolt: BoltServer | None = None

    def start(self) -> None:
        s = self.settings
        auth = (s.user, s.password or "") if s.user else None
        self.repl = Replication(self.storage, s.data_dir, s.host, f"{s.host}:{s.bolt_port}", s.restore,
                                s.check_s, s.hosts_file, self.faults)
        engine = Engine(self.storage, self.repl, s.bolt_port)
        self.bolt = BoltServer(s.host, s.bolt_port, engine, auth, self.faults)
        self.bolt_port = engine.bolt_port = self.bolt.port
        self.repl.sender = {"host": s.host, "id": f"{s.host}:{self.bolt_port}"}
        self.repl.start()
        self.bolt.start()
        log.info("memgraph emulator listening on %s:%d (role %s)", s.host, self.bolt_port, self.repl.role)

    def stop(self) -> None:
        if self.bolt is not None:
            self.bolt.close()
        if self.repl is not None:
            self.repl.stop()
        self.storage.close()

    # ----- fault API (tests only) -----

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
        doc.update(bolt_port=self.bolt_port, faults=self.faults.as_dict())
        return doc
