"""Replication role, main UUID and registered replicas of one instance, and their persistence.

Role: what reference memgraph-replication sections 1.2-1.4, 3.2-3.3 and 4 (v3.12 column) describe.
- Default role MAIN with a random main UUID (4.3). Promotion (`DoToMainPromotion`,
  `replication_handler.cpp:264-320`): the replication server is shut down and its running handlers
  joined, a prepared two-phase transaction is ABORTED, the WAL is finalized and the history saved, the role
  persisted with a new main UUID, a new epoch taken (in memory only, 7.2), no replicas.
- Demotion: replica clients stopped, persisted replicas deleted, the replication server started on
  `--replication-bind-address:port` (Memgraph binds 0.0.0.0, `kDefaultReplicationServerIp`), a NEW random
  main UUID stored, so only a main that then REGISTERs it is accepted (1.2, 4.2).
- REGISTER (1.4, v3.12): NAME_EXISTS=1, ENDPOINT_EXISTS=2; persisted before SwapMainUUID (10 s); an
  unreachable replica gives Error 5 and stays registered with `data_info {}` and no checks; then one
  synchronous heartbeat (10 s); a diverged replica gives Error 3 and -- the v2.21-v3.12 bug, whose rollback
  failed with NO_ACCESS -- stays as a zombie entry WITHOUT a per-database client (`data_info: {}`) until
  the MAIN restarts, when it is restored and shows `diverged` (7.3).
- Persistence in `<data_dir>/replication/` only with --replication-restore-state-on-startup=true; a
  restored MAIN re-creates its replicas with one synchronous heartbeat each and never re-sends
  SwapMainUUID (`replication/state.cpp:189`: `try_set_uuid` only for a state persisted without a main
  UUID, i.e. before v2.15), so replicas registered by another main since then refuse it and stay invalid.

- Locking (`rwlock.py`): role changes, REGISTER and DROP only try the replication-state lock and fail at
  once while a commit holds it; SHOW REPLICATION ROLE / SHOW REPLICAS wait for it.

Must never: hold `lock` across network I/O, send SwapMainUUID anywhere but REGISTER, persist when the
restore flag is off, or take the commit lock inside a replica-side handler.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sim.memgraph import durability
from sim.memgraph import replication_wire as wire
from sim.memgraph.commit import commit_write
from sim.memgraph.controls import CommitFaults
from sim.memgraph.errors import ReplicationQueryError
from sim.memgraph.replica_client import ReplicaClient, ReplicaConfig
from sim.memgraph.replica_handlers import ReplicaHandlers
from sim.memgraph.rwlock import ReplStateLock
from sim.memgraph.storage import Storage
from sim.memgraph.timings import MemgraphTimings

log = logging.getLogger(__name__)


NO_ACCESS_DROP = ("Failed to unregister replica due to lack of unique access over the cluster state. Please "
                  "try again later on.")


class Replication:
    """Replication state of one instance: `state_lock` is Memgraph's repl-state lock, `commit_lock` its
    engine lock (one commit at a time)."""

    def __init__(self, storage: Storage, data_dir: Path, bind: str, sender: dict[str, str], restore: bool,
                 timings: MemgraphTimings, hosts_file: Path | None, faults: wire.Faults,
                 controls: CommitFaults) -> None:
        self.storage, self.data_dir, self.bind = storage, data_dir, bind
        self.sender, self.restore, self.timings = sender, restore, timings
        self.hosts_file, self.faults, self.controls = hosts_file, faults, controls
        self.lock = threading.RLock()
        self.state_lock = ReplStateLock()
        self.commit_lock = threading.RLock()
        self.role = "main"
        self.main_uuid = str(uuid.uuid4())
        self.replica_port: int | None = None
        self.replicas: dict[str, ReplicaClient] = {}
        self.server: wire.ReplicationServer | None = None
        self.handlers = ReplicaHandlers(self)

    # ----- persistence (4.3) -----

    def _persist(self) -> None:
        if not self.restore:
            return
        doc = {"role": self.role, "main_uuid": self.main_uuid, "port": self.replica_port,
               "replicas": [asdict(c.cfg) for c in self.replicas.values()]}
        durability.save_replication_state(self.data_dir, doc)

    def accept_main_uuid(self, main_uuid: str) -> None:
        """SwapMainUUID on a replica: store and persist the new owner."""
        with self.lock:
            self.main_uuid = main_uuid
            self._persist()
        log.info("Set replica data UUID to main uuid %s", main_uuid)

    def _server(self, port: int) -> wire.ReplicationServer:
        return wire.ReplicationServer(self.bind, port, self.handlers.handle, self.faults)

    def start(self) -> None:
        """Restore the persisted role and replicas (4.3, 3.2 "Restart of the main") or start as MAIN."""
        if not self.restore:
            log.warning("Replication configuration will NOT be stored. When the server restarts, "
                        "replication state will be forgotten.")
            return
        doc = durability.load_replication_state(self.data_dir)
        if doc is None:
            self._persist()
            return
        self.main_uuid = str(doc["main_uuid"])
        if doc["role"] == "replica":
            self.role, self.replica_port = "replica", int(doc["port"])
            try:
                self.server = self._server(self.replica_port)
            except OSError as exc:
                raise SystemExit(f"Couldn't initialize replication server on replica. ({exc})") from exc
            return
        for raw in sorted(doc.get("replicas", []), key=lambda r: r["name"]):
            client = ReplicaClient(ReplicaConfig(**raw), self)
            self.replicas[client.cfg.name] = client
            client.start_tasks()
            client.set_status("invalid")
            if client.update_state() == "invalid":
                log.warning("Connection failed when registering replica %s. Replica will still be "
                            "registered.", client.cfg.name)
            client.start_checks()

    def stop(self) -> None:
        with self.lock:
            clients, server = list(self.replicas.values()), self.server
        for c in clients:
            c.stop()
        if server is not None:
            server.close()

    # ----- role changes (1.2, 4.1, 7.2) -----

    def show_role(self) -> str:
        with self.state_lock.read():
            return self.role

    def set_main(self) -> None:
        with self.state_lock.try_write() as got:
            if not got or self.role == "main":
                raise ReplicationQueryError("Couldn't set replication role to main!")
            server, self.server = self.server, None
            if server is not None:
                server.close()  # joins a running handler (a PrepareCommit only tries the read lock)
            with self.commit_lock:
                self.handlers.abort_prepared("promoted to MAIN")
                with self.lock:
                    self.role, self.main_uuid, self.replica_port = "main", str(uuid.uuid4()), None
                    self.replicas = {}
                    self._persist()
                self.storage.new_epoch()

    def set_replica(self, port: int) -> None:
        with self.state_lock.try_write() as got:
            if not got or self.role == "replica":
                raise ReplicationQueryError("Couldn't set role to replica!")
            try:
                server = self._server(port)
            except OSError as exc:
                log.warning("cannot bind replication server on %s:%d: %s", self.bind, port, exc)
                raise ReplicationQueryError("Couldn't set role to replica!") from exc
            with self.lock:
                clients = list(self.replicas.values())
                self.replicas = {}
                self.role, self.replica_port, self.server = "replica", port, server
                self.main_uuid = str(uuid.uuid4())
                self._persist()
            for c in clients:
                c.stop()

    # ----- REGISTER / DROP (1.3, 1.4) -----

    def register(self, cfg: ReplicaConfig) -> None:
        fail = f"Couldn't register replica {cfg.name}. Error: "
        with self.state_lock.try_write() as got:
            if not got:
                raise ReplicationQueryError(fail + "6")  # NO_ACCESS
            if self.role != "main":
                raise ReplicationQueryError("Replica can't register another replica!")
            with self.lock:
                if cfg.name in self.replicas:
                    raise ReplicationQueryError(fail + "1")
                if any((c.cfg.host, c.cfg.port) == (cfg.host, cfg.port) for c in self.replicas.values()):
                    raise ReplicationQueryError(fail + "2")
                client = ReplicaClient(cfg, self)
                self.replicas[cfg.name] = client
                self._persist()
            if not self._swap_main_uuid(client):
                raise ReplicationQueryError(fail + "5")
            client.start_tasks()
            client.set_status("invalid")  # a new per-database client starts MAYBE_BEHIND
            if client.update_state() == "diverged":
                client.stop()
                client.status = None  # v3.12: the rollback failed; the entry stays without a client
                raise ReplicationQueryError(fail + "3")
            client.start_checks()

    def _swap_main_uuid(self, client: ReplicaClient) -> bool:
        if not client.lock_rpc(self.timings.swap_uuid_timeout_s):
            return False
        try:
            ok = bool(client.call({"type": "SwapMainUUID", "uuid": self.main_uuid},
                                  self.timings.swap_uuid_timeout_s).get("success"))
        except wire.LinkError as exc:
            log.warning("registering %s: %s", client.cfg.name, exc)
            ok = False
        finally:
            client.rpc.lock.release()
        return ok

    def drop(self, name: str) -> None:
        with self.state_lock.try_write() as got:
            if not got:
                raise ReplicationQueryError(NO_ACCESS_DROP)
            if self.role != "main":
                raise ReplicationQueryError(
                    "Replica can't unregister a replica! Please rerun the query on main in order to "
                    "unregister a replica from the cluster.")
            with self.lock:
                client = self.replicas.pop(name, None)
                if client is not None:
                    self._persist()
            if client is None:
                raise ReplicationQueryError(f"Failed to unregister the replica {name}.")
            client.stop()

    def rows(self) -> list[list[Any]]:
        with self.state_lock.read():
            if self.role != "main":
                raise ReplicationQueryError("Show replicas query should only be run on the main instance.")
            with self.lock:
                return [c.row(self.storage.ldt) for c in self.replicas.values()]

    # ----- commit path on the MAIN (7.1) -----

    def commit_write(self, ops: list[dict[str, Any]]) -> int:
        return commit_write(self, ops, self.controls)

    def create_snapshot(self, force: bool) -> Path:
        """`CREATE SNAPSHOT` or a periodic snapshot, under the engine lock: it waits for the commit in
        flight, so it never finalizes the WAL file whose commit flag a two-phase commit is about to flip
        (a snapshot never breaks a commit; reference 7.2 uses CREATE SNAPSHOT on a MAIN taking writes)."""
        with self.commit_lock:
            return self.storage.create_snapshot(force)
