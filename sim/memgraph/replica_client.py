"""The MAIN's client for one registered replica: state machine, frequent check, recovery, shipping.

Role: what reference memgraph-replication sections 3 and 7 say a MAIN does per replica, as
`src/storage/v2/replication/replication_client.cpp` and `replication_handler.cpp:150-200` (memgraph/memgraph
df0f636) have it:
- States (3.1): ready / replicating / recovery / invalid (MAYBE_BEHIND, the initial state) / diverged.
  `status = None` means "no per-database client" and prints `data_info {}` (1.4: REGISTER of an
  unreachable replica; the v3.12 zombie entry after `Error: 3`).
- UpdateReplicaState (`:67-300`): a Heartbeat (10 s; an ASYNC replica only tries the RPC lock for 5 s);
  an RPC failure -> invalid; `success: false` (UUID refused) -> unchanged; then the divergence rule of 4.1
  -> diverged, with `ts` NOT refreshed (so a diverged row shows ts 0 and behind = -(MAIN's ldt), 7.3);
  else, under the engine (commit) lock, unless recovering: `ts = max(ts, replica ldt)` and ready when the
  replica is not behind, else recovery with a RecoverReplica task queued.
- Frequent check (`replication_handler.cpp:155-200`): every `--replication-replica-check-frequency-sec` a
  FrequentHeartbeat (5 s) on the same RPC lock; on success an invalid client gets an UpdateReplicaState
  task; the 3rd consecutive failure sets invalid (whatever the state, diverged included).
- RecoverReplica (`:667-960`): runs on the client's single task thread, NOT under the commit lock: WAL
  transactions when they cover the gap, else the latest snapshot and the WAL after it; each step under the
  RPC lock; at the end, under the commit lock, `ts` = the replica's ldt and ready only if the MAIN did not
  commit meanwhile (else invalid, and the next check starts again). A STRICT_SYNC replica in recovery
  makes every commit abort (7.1 step 2), so recovery always finishes.
- StartTransactionReplication (`:368-450`): recovery -> skip; replicating -> invalid ("missed a
  transaction"); invalid -> an async state check; diverged -> skip; ready -> take the RPC lock (ASYNC tries
  for 50 ms, else invalid), connect (failure -> invalid) -> replicating. The lock then stays held until the
  transaction's shipping ends (an ASYNC shipping task releases it when done).
- FinalizePrepareCommitPhase / FinalizeTransactionReplication / SendFinalizeCommitRpc (`:450-650`):
  vote or ship; a failure -> invalid with the reason of `storage_error.cpp`; a failed FinalizeCommit is
  only reported back (state unchanged).

Must never: hold the RPC lock while taking the commit lock, raise out of its threads, or change state
after `stop()`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.memgraph import replication_wire as wire

if TYPE_CHECKING:
    from sim.memgraph.replication import Replication

log = logging.getLogger(__name__)
NOT_IN_SYNC = "replica is not reachable or not in sync with the main"
FAILED_TO_GET_LOCK = "failed to obtain RPC lock (another transaction is in progress)"
RPC_ERROR = "RPC communication error"
DIVERGED = "replica has diverged from main"
TIMEOUT = "RPC timeout while replicating"


@dataclass(frozen=True)
class ReplicaConfig:
    """A registered replica as persisted (`__replication_replica:<name>`, reference 4.3)."""

    name: str
    mode: str  # sync | async | strict_sync
    address: str  # exactly as registered ("host:port")
    host: str
    port: int


class Stream:
    """A commit's hold on one replica (ReplicaStream): owns the RPC lock until released."""

    def __init__(self, client: ReplicaClient) -> None:
        self.client = client
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.client.rpc.lock.release()


class ReplicaClient:
    """One replica as seen by this MAIN."""

    def __init__(self, cfg: ReplicaConfig, repl: Replication) -> None:
        self.cfg, self.repl = cfg, repl
        self.t = repl.timings
        self.rpc = wire.RpcClient(cfg.address, cfg.host, cfg.port, repl.faults, repl.hosts_file,
                                  self.t.connect_timeout_s)
        self.status: str | None = None
        self.ts = 0
        self.misses = 0
        self._state = threading.Lock()
        self._diverged_logged = False
        self._stop = threading.Event()
        self._tasks: queue.Queue[Callable[[], object]] = queue.Queue()
        self._threads: list[threading.Thread] = []

    # ----- plumbing -----

    def msg(self, **fields: Any) -> dict[str, Any]:
        return dict(fields, main_uuid=self.repl.main_uuid, sender=self.repl.sender)

    def set_status(self, status: str | None) -> None:
        with self._state:
            if self._stop.is_set():
                return
            if self.status != status:
                log.info("replica %s: %s -> %s", self.cfg.name, self.status, status)
            self.status = status

    def lock_rpc(self, timeout_s: float | None = None) -> bool:
        """Take the RPC lock: within `timeout_s`, or (None) as long as it takes while not stopped."""
        if timeout_s is not None:
            return self.rpc.lock.acquire(timeout=timeout_s)
        while not self._stop.is_set():
            if self.rpc.lock.acquire(timeout=0.5):
                return True
        return False

    def call(self, msg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """One RPC while already holding the RPC lock."""
        return self.rpc.call(self.msg(**msg), timeout_s)

    def start_tasks(self) -> None:
        """The client's single task thread (Memgraph's per-client thread pool)."""
        self._spawn(self._task_loop, f"tasks-{self.cfg.name}")

    def start_checks(self) -> None:
        """The frequent check (StartReplicaClient)."""
        self._spawn(self._check_loop, f"check-{self.cfg.name}")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        th = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(th)
        th.start()

    def submit(self, task: Callable[[], object]) -> None:
        self._tasks.put(task)

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            if th is not threading.current_thread():
                th.join(timeout=5.0)
        self.rpc.close()

    def _task_loop(self) -> None:
        while not self._stop.is_set():
            try:
                task = self._tasks.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                task()
            except Exception:
                log.exception("task of replica client %s failed", self.cfg.name)

    # ----- heartbeat and divergence (3.2, 4.1, 7.3) -----

    def update_state(self) -> str | None:
        """UpdateReplicaState + TryCheckReplicaStateSync; returns the status afterwards."""
        storage = self.repl.storage
        if not self.lock_rpc(self.t.async_heartbeat_lock_s if self.cfg.mode == "async" else None):
            log.warning("Couldn't get RPC lock while trying to UpdateReplicaState")
            return self.status
        try:
            resp = self.call({"type": "Heartbeat", "main_ldt": storage.ldt, "epoch": storage.epoch},
                             self.t.heartbeat_timeout_s)
        except wire.LinkError as exc:
            log.error("Failed to connect to replica %s at the endpoint %s. (%s)", self.cfg.name,
                      self.cfg.address, exc)
            self.set_status("invalid")
            return self.status
        finally:
            self.rpc.lock.release()
        if not resp.get("success"):
            log.info("replica %s refused this main's heartbeat (it follows another main)", self.cfg.name)
            return self.status
        r_ldt, r_epoch = int(resp.get("ldt", 0)), str(resp.get("epoch", ""))
        if self._diverged(r_epoch, r_ldt):
            if self.status != "diverged":
                self._log_divergence()
            self.set_status("diverged")
            return self.status
        with self.repl.commit_lock:
            if self.status == "recovery":
                return self.status
            self.ts = max(self.ts, r_ldt)
            if r_ldt >= storage.ldt:
                self.set_status("ready")
            else:
                self.set_status("recovery")
                self.submit(lambda: self.recover(r_ldt))
        return self.status

    def _diverged(self, r_epoch: str, r_ldt: int) -> bool:
        """Reference 4.1 (v2.16+): same epoch or empty replica -> fine; else the epoch must be in our
        history with at least the replica's ldt (replication_client.cpp:143-207)."""
        storage = self.repl.storage
        with storage.lock:
            if r_epoch == storage.epoch or r_ldt == 0:
                return False
            for epoch, ldt in storage.history:
                if epoch == r_epoch:
                    return ldt < r_ldt
            return True

    def _log_divergence(self) -> None:
        n = self.cfg.name
        log.error("You cannot register Replica %s to this Main because at one point Replica %s acted as the "
                  "Main instance. Both the Main and Replica %s now hold unique data. Please resolve data "
                  "conflicts and start the replication on a clean instance.", n, n, n)

    # ----- frequent check and recovery -----

    def _check_loop(self) -> None:
        if self.t.check_frequency_s <= 0:
            return  # checks (and therefore recovery) disabled (reference 4.4)
        while not self._stop.wait(self.t.check_frequency_s):
            try:
                self._check_once()
            except Exception:
                log.exception("frequent check of %s failed unexpectedly", self.cfg.name)

    def _check_once(self) -> None:
        if not self.lock_rpc():
            return
        try:
            self.call({"type": "FrequentHeartbeat"}, self.t.frequent_heartbeat_timeout_s)
        except wire.LinkError as exc:
            self.misses += 1
            if self.misses == 3:  # kFailureAfterN
                log.warning("replica %s missed %d checks: %s", self.cfg.name, self.misses, exc)
                self.set_status("invalid")
            return
        finally:
            self.rpc.lock.release()
        self.misses = 0
        if self.status == "invalid":
            self.submit(self.update_state)

    def recover(self, replica_ldt: int) -> None:
        """RecoverReplica: WAL or snapshot + WAL, not under the commit lock (3.2, 7.4)."""
        if self.status != "recovery":
            return
        storage = self.repl.storage
        snap, txns = storage.recovery_payload(replica_ldt)
        steps: list[tuple[dict[str, Any], float]] = []
        if snap is not None:
            steps.append(({"type": "Snapshot", "snapshot": snap}, self.t.snapshot_timeout_s))
        if txns:
            wal = [{"epoch": t.epoch, "ts": t.ts, "ops": t.ops} for t in txns]
            steps.append(({"type": "WalFiles", "txns": wal}, self.t.wal_timeout_s))
        for msg, timeout_s in steps:
            if not self.lock_rpc():
                return
            try:
                resp = self.call(msg, timeout_s)
            except wire.LinkError as exc:
                log.error("Couldn't replicate data to %s. (recovery: %s)", self.cfg.name, exc)
                self.ts = replica_ldt
                self.set_status("invalid")
                return
            finally:
                self.rpc.lock.release()
            if not resp.get("success"):
                self.ts = replica_ldt
                self.set_status("invalid")
                return
            replica_ldt = int(resp.get("ldt", replica_ldt))
        with self.repl.commit_lock:
            self.ts = replica_ldt
            self.set_status("ready" if storage.ldt <= replica_ldt else "invalid")

    # ----- shipping one transaction (called by the commit path under the commit lock) -----

    def start_txn(self) -> tuple[Stream | None, str]:
        """StartTransactionReplication: a Stream, or (None, failure reason)."""
        with self._state:
            state = self.status
            if state == "replicating":
                self.status = "invalid"
                log.info("replica %s: replicating -> invalid (missed a transaction)", self.cfg.name)
        if state in ("recovery", "replicating"):
            return None, NOT_IN_SYNC
        if state == "invalid":
            log.error("Couldn't replicate data to %s.", self.cfg.name)
            self.submit(self.update_state)
            return None, NOT_IN_SYNC
        if state == "diverged":
            log.error("Couldn't replicate data to %s since replica has diverged from main.", self.cfg.name)
            return None, DIVERGED
        if not self.lock_rpc(self.t.async_commit_lock_s if self.cfg.mode == "async" else None):
            self.set_status("invalid")
            return None, FAILED_TO_GET_LOCK
        stream = Stream(self)
        try:
            self.rpc.ensure_connected()
        except wire.LinkError as exc:
            log.error("Failed to connect to replica %s while starting txn replication (%s)", self.cfg.name,
                      exc)
            stream.release()
            self.set_status("invalid")
            return None, NOT_IN_SYNC
        self.set_status("replicating")
        return stream, ""

    def _still_replicating(self, stream: Stream) -> bool:
        """"Recovery finished between the txn start and txn finish": not replicating -> no shipping."""
        if self.status == "replicating":
            return True
        if self.status == "ready":
            self.set_status("invalid")
        stream.release()
        return False

    def _ship(self, stream: Stream, rec: dict[str, Any], two_phase: bool, keep: bool) -> str:
        """Send the PrepareCommit; '' on success, else the failure reason (state set to invalid)."""
        if not self._still_replicating(stream):
            return RPC_ERROR
        return self._send(stream, rec, two_phase, keep)

    def _send(self, stream: Stream, rec: dict[str, Any], two_phase: bool, keep: bool) -> str:
        try:
            resp = self.call(dict(rec, type="PrepareCommit", two_phase=two_phase), self.t.prepare_timeout_s)
        except wire.LinkError as exc:
            log.error("Couldn't replicate data to %s. (%s)", self.cfg.name, exc)
            stream.release()
            self.set_status("invalid")
            return TIMEOUT if isinstance(exc, wire.RpcTimeout) else RPC_ERROR
        if not keep:
            stream.release()
        if self.status != "replicating":
            return RPC_ERROR
        if not resp.get("success"):
            self.set_status("invalid")
            return RPC_ERROR
        self.set_status("ready")
        return ""

    def prepare(self, stream: Stream, rec: dict[str, Any]) -> str:
        """STRICT_SYNC phase one (FinalizePrepareCommitPhase): the vote; the stream stays for the finalize."""
        return self._ship(stream, rec, two_phase=True, keep=True)

    def ship_sync(self, stream: Stream, rec: dict[str, Any]) -> str:
        """SYNC without a two-phase commit (FinalizeTransactionReplication, waited for)."""
        return self._ship(stream, rec, two_phase=False, keep=False)

    def ship_async(self, stream: Stream, rec: dict[str, Any]) -> None:
        """ASYNC: shipped by the task thread, which releases the RPC lock when done."""
        if not self._still_replicating(stream):
            return

        def task() -> None:
            if self._send(stream, rec, two_phase=False, keep=False) == "":
                self.ts = max(self.ts, int(rec["commit_ts"]))
        self.submit(task)

    def finalize(self, stream: Stream | None, commit_ts: int, decision: bool) -> bool:
        """STRICT_SYNC phase two (SendFinalizeCommitRpc): the outcome only, the state is unchanged."""
        if stream is None or not stream.held:
            return True
        try:
            return bool(self.call({"type": "FinalizeCommit", "commit_ts": commit_ts, "decision": decision},
                                  self.t.finalize_timeout_s).get("success"))
        except wire.LinkError as exc:
            log.warning("FinalizeCommit on %s failed: %s", self.cfg.name, exc)
            return False
        finally:
            stream.release()

    def note_committed(self, commit_ts: int) -> None:
        """UpdateCommitTsInfo: a SYNC/STRICT_SYNC replica that took part is assumed at this timestamp."""
        self.ts = max(self.ts, commit_ts)

    # ----- SHOW REPLICAS -----

    def row(self, main_ldt: int) -> list[Any]:
        """One SHOW REPLICAS row (reference 2.2): system_info Null without a license."""
        data_info: dict[str, Any] = {}
        if self.status is not None:
            data_info = {"memgraph": {"ts": self.ts, "behind": self.ts - main_ldt, "status": self.status}}
        return [self.cfg.name, self.cfg.address, self.cfg.mode, None, data_info]
