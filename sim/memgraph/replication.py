"""Replication role, main UUID, registered replicas, commit modes and the replica-side RPC handlers.

Role: what reference memgraph-replication sections 1.2-1.4, 3, 4 and 5 (v3.12 column) describe.
- Default role MAIN with a random main UUID (4.3). Promotion: new epoch, new main UUID, no replicas (4.1).
  Demotion: replica clients stopped, persisted replicas deleted, replication server started on the given
  port, a NEW random main UUID stored, so only a main that then REGISTERs it is accepted (1.2, 4.2).
- REGISTER (1.4, v3.12): NAME_EXISTS=1, ENDPOINT_EXISTS=2; persisted before SwapMainUUID; an unreachable
  replica gives Error 5 and stays registered with `data_info {}` and no heartbeat thread; a synchronous
  heartbeat follows; a diverged replica gives Error 3 and -- like v2.21-v3.12, whose rollback failed with
  NO_ACCESS -- the zombie entry stays registered and shows `diverged`.
- The replica accepts SwapMainUUID unconditionally and every other data RPC only from the main UUID it
  stores (3.3), so the last main that registered it owns it.
- Commit (5, v3.10-3.12 texts): STRICT_SYNC two-phase first (abort everywhere on any failure), then the
  local durable commit, then SYNC (error after commit) and ASYNC (background).
- Persistence (4.3) in `<data_dir>/replication.json` (atomic rename) only with
  --replication-restore-state-on-startup=true; a restored MAIN re-creates its replicas with one
  synchronous Heartbeat each and NEVER re-sends SwapMainUUID (DESIGN.md open question), so replicas
  registered by another main since then refuse it and show `invalid`.

Must never: hold `lock` across network I/O, send SwapMainUUID anywhere but REGISTER, or persist when the
restore flag is off.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sim.memgraph import replication_wire as wire
from sim.memgraph.replica_client import ReplicaClient, ReplicaConfig
from sim.memgraph.storage import Storage, atomic_write_json

log = logging.getLogger(__name__)
STATE_NAME = "replication.json"
SUFFIX = ("Replica will be recovered automatically. Transaction {what}. Check the status of the replicas "
          "using 'SHOW REPLICAS' query.")
NOT_MAIN_COMMIT = "Cannot commit because instance is not main anymore."


class ReplicationQueryError(Exception):
    """A replication query failed (QueryException -> ClientError)."""


class ReplicationCommitError(Exception):
    """ReplicationException at commit (v3.8+: ClientError). `committed` says whether main kept it."""

    def __init__(self, message: str, committed: bool) -> None:
        super().__init__(message)
        self.committed = committed


def commit_error_text(kind: str, failures: list[tuple[str, str]]) -> str:
    """v3.10-3.12 texts (reference 5): one or several failed SYNC / STRICT_SYNC replicas."""
    what = "is still committed on the main instance and other alive replicas" if kind == "SYNC" else \
        "was aborted on all instances"
    if len(failures) == 1:
        name, reason = failures[0]
        head = f"Failed to replicate to {kind} replica '{name}': {reason}."
        suffix = SUFFIX
    else:
        names = ", ".join(f"'{n}'" for n, _ in failures[:-1]) + f" and '{failures[-1][0]}'"
        reason = failures[0][1].replace("replica is", "replicas are").replace("replica has", "replicas have")
        head = f"Failed to replicate to {kind} replicas {names}: {reason}."
        suffix = SUFFIX.replace("Replica will", "Replicas will")
    return f"Replication Exception: {head} {suffix.format(what=what)}"


class Replication:
    """Replication state of one instance; `commit_lock` serialises commits and system queries."""

    def __init__(self, storage: Storage, data_dir: Path, host: str, sender_id: str, restore: bool,
                 check_s: float, hosts_file: Path | None, faults: wire.Faults) -> None:
        self.storage = storage
        self.state_path = data_dir / STATE_NAME
        self.host = host
        self.sender = {"host": host, "id": sender_id}
        self.restore = restore
        self.check_s = check_s
        self.hosts_file = hosts_file
        self.faults = faults
        self.lock = threading.RLock()
        self.commit_lock = threading.RLock()
        self.role = "main"
        self.main_uuid = str(uuid.uuid4())
        self.replica_port: int | None = None
        self.replicas: dict[str, ReplicaClient] = {}
        self.server: wire.ReplicationServer | None = None
        self._pending: dict[int, dict[str, Any]] = {}

    # ----- persistence -----

    def _persist(self) -> None:
        if not self.restore:
            return
        doc = {"role": self.role, "main_uuid": self.main_uuid, "port": self.replica_port,
               "replicas": [asdict(c.cfg) for c in self.replicas.values()]}
        atomic_write_json(self.state_path, doc)

    def start(self) -> None:
        """Restore the persisted role and replicas (4.3, 3.2 "Restart of the main") or start as MAIN."""
        if not self.restore:
            log.warning("Replication configuration will NOT be stored. When the server restarts, "
                        "replication state will be forgotten.")
            return
        if not self.state_path.exists():
            self._persist()
            return
        doc = json.loads(self.state_path.read_text(encoding="utf-8"))
        self.main_uuid = str(doc["main_uuid"])
        if doc["role"] == "replica":
            self.role, self.replica_port = "replica", int(doc["port"])
            try:
                self.server = wire.ReplicationServer(self.host, self.replica_port, self.handle, self.faults)
            except OSError as exc:
                raise SystemExit(f"Couldn't initialize replication server on replica. ({exc})") from exc
            return
        for raw in sorted(doc.get("replicas", []), key=lambda r: r["name"]):
            client = ReplicaClient(ReplicaConfig(**raw), self)
            self.replicas[client.cfg.name] = client
            if client.update_state() == "invalid":
                log.warning("Connection failed when registering replica %s. Replica will still be "
                            "registered.", client.cfg.name)
            client.start()

    def stop(self) -> None:
        with self.lock:
            clients, server = list(self.replicas.values()), self.server
        for c in clients:
            c.stop()
        if server is not None:
            server.close()

    # ----- role changes (1.2, 4.1) -----

    def set_main(self) -> None:
        with self.commit_lock:
            if self.role == "main":
                raise ReplicationQueryError("Couldn't set replication role to main!")
            if self.server is not None:
                self.server.close()
                self.server = None
            self.storage.new_epoch()
            with self.lock:
                self.role, self.main_uuid, self.replica_port = "main", str(uuid.uuid4()), None
                self.replicas = {}
                self._pending.clear()
            self._persist()

    def set_replica(self, port: int) -> None:
        with self.commit_lock:
            if self.role == "replica":
                raise ReplicationQueryError("Couldn't set role to replica!")
            try:
                server = wire.ReplicationServer(self.host, port, self.handle, self.faults)
            except OSError as exc:
                log.warning("cannot bind replication server on %s:%d: %s", self.host, port, exc)
                raise ReplicationQueryError("Couldn't set role to replica!") from exc
            with self.lock:
                clients = list(self.replicas.values())
                self.replicas = {}
                self.role, self.replica_port, self.server = "replica", port, server
                self.main_uuid = str(uuid.uuid4())
            for c in clients:
                c.stop()
            self._persist()

    # ----- REGISTER / DROP (1.3, 1.4) -----

    def register(self, cfg: ReplicaConfig) -> None:
        with self.commit_lock:
            if self.role != "main":
                raise ReplicationQueryError("Replica can't register another replica!")
            fail = f"Couldn't register replica {cfg.name}. Error: "
            with self.lock:
                if cfg.name in self.replicas:
                    raise ReplicationQueryError(fail + "1")
                if any((c.cfg.host, c.cfg.port) == (cfg.host, cfg.port) for c in self.replicas.values()):
                    raise ReplicationQueryError(fail + "2")
                client = ReplicaClient(cfg, self)
                self.replicas[cfg.name] = client
            self._persist()
            try:
                resp = client.rpc({"type": "SwapMainUUID", "uuid": self.main_uuid}, 1.0)
                if not resp.get("success"):
                    raise wire.LinkError("SwapMainUUID refused")
            except wire.LinkError as exc:
                log.warning("registering %s: %s", cfg.name, exc)
                raise ReplicationQueryError(fail + "5") from exc
        if client.update_state() == "diverged":
            raise ReplicationQueryError(fail + "3")  # zombie entry stays (v3.12, see module doc)
        client.start()

    def drop(self, name: str) -> None:
        with self.commit_lock:
            if self.role != "main":
                raise ReplicationQueryError(
                    "Replica can't unregister a replica! Please rerun the query on main in order to "
                    "unregister a replica from the cluster.")
            with self.lock:
                client = self.replicas.pop(name, None)
            if client is None:
                raise ReplicationQueryError(f"Failed to unregister the replica {name}.")
            client.stop()
            self._persist()

    def rows(self) -> list[list[Any]]:
        if self.role != "main":
            raise ReplicationQueryError("Show replicas query should only be run on the main instance.")
        with self.lock:
            return [c.row(self.storage.ldt) for c in self.replicas.values()]

    # ----- commit path on the MAIN (5) -----

    def commit_write(self, ops: list[dict[str, Any]]) -> int:
        """Commit one write transaction; returns its commit timestamp or raises."""
        with self.commit_lock:
            if self.role != "main":
                raise ReplicationQueryError(NOT_MAIN_COMMIT)
            with self.lock:
                clients = [c for c in self.replicas.values() if c.status is not None]
            rec: dict[str, Any] = {"ops": ops, "commit_ts": self.storage.next_commit_ts(),
                                   "prev_ldt": self.storage.ldt, "epoch": self.storage.epoch}
            strict = [c for c in clients if c.cfg.mode == "strict_sync"]
            prepared, failures = [], []
            for c in strict:
                ok, reason = c.prepare(rec, two_phase=True)
                (prepared.append(c) if ok else failures.append((c.cfg.name, reason)))
            if failures:
                for c in prepared:
                    c.finalize(rec["commit_ts"], decision=False)
                raise ReplicationCommitError(commit_error_text("STRICT_SYNC", failures), committed=False)
            self.storage.commit(ops, rec["commit_ts"])
            for c in prepared:
                c.finalize(rec["commit_ts"], decision=True)
            sync_failures = []
            for c in clients:
                if c.cfg.mode == "sync":
                    ok, reason = c.prepare(rec, two_phase=False)
                    if not ok:
                        sync_failures.append((c.cfg.name, reason))
                elif c.cfg.mode == "async":
                    c.ship_async(rec)
            if sync_failures:
                raise ReplicationCommitError(commit_error_text("SYNC", sync_failures), committed=True)
            return int(rec["commit_ts"])

    # ----- replica side: the RPC handlers (3.3) -----

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        kind = msg.get("type")
        with self.commit_lock:
            if self.role != "replica":
                return {"success": False, "error": "not a replica"}
            if kind == "SwapMainUUID":
                with self.lock:
                    self.main_uuid = str(msg["uuid"])
                    self._pending.clear()
                self._persist()
                return {"success": True}
            if kind == "FrequentHeartbeat":
                return {"success": True}
            if msg.get("main_uuid") != self.main_uuid:
                log.warning("Received %sRpc with main_id: %s != current_main_uuid: %s", kind,
                            msg.get("main_uuid"), self.main_uuid)
                return {"success": False, "ldt": self.storage.ldt}
            return self._handle_data(str(kind), msg)

    def _handle_data(self, kind: str, msg: dict[str, Any]) -> dict[str, Any]:
        st = self.storage
        if kind == "Heartbeat":
            return {"success": True, "ldt": st.ldt, "epoch": st.last_epoch_with_commit()}
        if kind == "PrepareCommit":
            if int(msg["prev_ldt"]) != st.ldt:
                return {"success": False, "ldt": st.ldt}
            st.adopt_epoch(str(msg["epoch"]))
            if msg.get("two_phase"):
                self._pending[int(msg["commit_ts"])] = msg
            else:
                st.commit(msg["ops"], int(msg["commit_ts"]))
            return {"success": True, "ldt": st.ldt}
        if kind == "FinalizeCommit":
            pending = self._pending.pop(int(msg["commit_ts"]), None)
            if msg.get("decision") and pending is not None:
                st.commit(pending["ops"], int(pending["commit_ts"]))
            return {"success": pending is not None or not msg.get("decision"), "ldt": st.ldt}
        if kind == "Recover":
            st.install_snapshot(msg["snapshot"])
            self._pending.clear()
            return {"success": True, "ldt": st.ldt}
        return {"success": False, "error": f"unknown request {kind}"}
