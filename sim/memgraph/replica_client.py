"""The MAIN's client for one registered replica: state machine, frequent check, recovery, shipping.

Role: everything reference memgraph-replication section 3 says a MAIN does per replica.
- States (3.1): ready / replicating / recovery / invalid (MAYBE_BEHIND, the initial state) / diverged
  (terminal until DROP). `status = None` means "no per-database client" and prints `data_info {}`
  (1.4: REGISTER of an unreachable replica).
- Heartbeat (3.2 `UpdateReplicaState`): Heartbeat(main_uuid, main_ldt, epoch); a refused UUID
  (`success: false`) leaves the state unchanged; then the divergence rule of 4.1; then ready when
  `replica_ldt >= main_ldt`, else recovery.
- Frequent check (3.2): every `check_s` a FrequentHeartbeat; on success an invalid client re-runs the
  heartbeat (invalid -> recovery -> ready); after 3 consecutive failures the client goes invalid.
- Recovery (3.2 `RecoverReplica`): simplified to one Recover RPC carrying the main's whole snapshot, sent
  while holding the commit lock so it cannot race a commit; ready if the replica reached the main's ldt.
- Shipping (3.2 "On commit", 5): SYNC/STRICT_SYNC synchronously from the commit path, ASYNC on a worker
  thread; an ASYNC commit that finds the previous one still in flight after 50 ms sets invalid.
- `ts` is the cached replica ldt (v3.1+ "best estimation"); `behind = ts - main_ldt` (2.2).

Must never: hold the commit lock while waiting on anything but its own bounded RPC, raise out of the
background threads, or change state after `stop()`.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.memgraph import replication_wire as wire

if TYPE_CHECKING:
    from sim.memgraph.replication import Replication

log = logging.getLogger(__name__)
HEARTBEAT_TIMEOUT_S = 1.0
DATA_TIMEOUT_S = 3.0
ASYNC_LOCK_WAIT_S = 0.05  # "ASYNC only tries the RPC lock for 50 ms" (reference 3.2)
MISSES_TO_INVALID = 3


@dataclass(frozen=True)
class ReplicaConfig:
    """A registered replica as persisted (`__replication_replica:<name>`, reference 4.3)."""

    name: str
    mode: str  # sync | async | strict_sync
    address: str  # exactly as registered ("host:port")
    host: str
    port: int


class ReplicaClient:
    """One replica as seen by this MAIN."""

    def __init__(self, cfg: ReplicaConfig, repl: Replication) -> None:
        self.cfg = cfg
        self.repl = repl
        self.status: str | None = None
        self.ts = 0
        self.misses = 0
        self._diverged_logged = False
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._threads: list[threading.Thread] = []

    # ----- plumbing -----

    def rpc(self, msg: dict[str, Any], timeout_s: float = DATA_TIMEOUT_S) -> dict[str, Any]:
        """One request to the replica; raises wire.LinkError."""
        msg = dict(msg, main_uuid=self.repl.main_uuid, sender=self.repl.sender)
        return wire.request(self.cfg.address, self.cfg.host, self.cfg.port, msg, self.repl.faults,
                            self.repl.hosts_file, timeout_s)

    def set_status(self, status: str | None) -> None:
        with self.repl.lock:
            if self.status != status:
                log.info("replica %s: %s -> %s", self.cfg.name, self.status, status)
            self.status = status

    def start(self) -> None:
        """Start the frequent-check thread (and the ASYNC shipping worker)."""
        t = threading.Thread(target=self._check_loop, name=f"check-{self.cfg.name}", daemon=True)
        self._threads.append(t)
        if self.cfg.mode == "async":
            self._threads.append(threading.Thread(target=self._async_loop, name=f"ship-{self.cfg.name}",
                                                  daemon=True))
        for th in self._threads:
            th.start()

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            if th is not threading.current_thread():
                th.join(timeout=HEARTBEAT_TIMEOUT_S + DATA_TIMEOUT_S)

    # ----- heartbeat and divergence (3.2, 4.1) -----

    def update_state(self) -> str | None:
        """Synchronous heartbeat; returns the new status (unchanged when unreachable or refused)."""
        storage = self.repl.storage
        try:
            resp = self.rpc({"type": "Heartbeat", "main_ldt": storage.ldt, "epoch": storage.epoch},
                            HEARTBEAT_TIMEOUT_S)
        except wire.LinkError as exc:
            log.info("heartbeat to %s failed: %s", self.cfg.name, exc)
            if self.status is None:
                self.set_status("invalid")
            return self.status
        if self.status is None:
            self.set_status("invalid")
        if not resp.get("success"):
            log.info("replica %s refused this main's heartbeat (it follows another main)", self.cfg.name)
            return self.status
        r_ldt, r_epoch = int(resp.get("ldt", 0)), str(resp.get("epoch", ""))
        self.ts = r_ldt
        with self.repl.commit_lock:
            if self._stop.is_set() or self.status == "diverged":
                return self.status
            if self._diverged(r_epoch, r_ldt):
                self._log_divergence()
                self.set_status("diverged")
            elif r_ldt >= storage.ldt:
                self.set_status("ready")
            else:
                self.set_status("recovery")
        return self.status

    def _diverged(self, r_epoch: str, r_ldt: int) -> bool:
        """Reference 4.1 (v2.16+): same epoch or empty replica -> fine; else the epoch must be in our
        history with at least the replica's ldt."""
        storage = self.repl.storage
        with storage.lock:
            if r_epoch == storage.epoch or r_ldt == 0:
                return False
            for epoch, ldt in reversed(storage.history):
                if epoch == r_epoch:
                    return ldt < r_ldt
            return True

    def _log_divergence(self) -> None:
        if not self._diverged_logged:
            self._diverged_logged = True
            n = self.cfg.name
            log.error("You cannot register Replica %s to this Main because at one point Replica %s acted "
                      "as the Main instance. Both the Main and Replica %s now hold unique data. Please "
                      "resolve data conflicts and start the replication on a clean instance.", n, n, n)

    # ----- frequent check and recovery -----

    def _check_loop(self) -> None:
        period = self.repl.check_s
        if period <= 0:
            return  # checks (and therefore recovery) disabled (reference 4.4)
        if self.status == "recovery":
            self.recover()  # UpdateReplicaState queues the recovery task at once (reference 3.2)
        while not self._stop.wait(period):
            try:
                self._check_once()
            except Exception:
                log.exception("frequent check of %s failed unexpectedly", self.cfg.name)

    def _check_once(self) -> None:
        try:
            self.rpc({"type": "FrequentHeartbeat"}, HEARTBEAT_TIMEOUT_S)
        except wire.LinkError as exc:
            self.misses += 1
            if self.misses >= MISSES_TO_INVALID and self.status not in ("invalid", "diverged"):
                log.warning("replica %s missed %d heartbeats: %s", self.cfg.name, self.misses, exc)
                self.set_status("invalid")
            return
        self.misses = 0
        if self.status == "invalid":
            self.update_state()
        if self.status == "recovery":
            self.recover()

    def recover(self) -> None:
        """Ship the whole snapshot under the commit lock; ready if the replica caught up (3.2)."""
        if not self.repl.commit_lock.acquire(timeout=DATA_TIMEOUT_S):
            log.warning("recovery of %s postponed: commit lock busy", self.cfg.name)
            return
        try:
            if self._stop.is_set() or self.status != "recovery":
                return
            snap = self.repl.storage.snapshot()
            try:
                resp = self.rpc({"type": "Recover", "snapshot": snap})
            except wire.LinkError as exc:
                log.warning("recovery of %s failed: %s", self.cfg.name, exc)
                self.set_status("invalid")
                return
            if resp.get("success"):
                self.ts = int(resp.get("ldt", 0))
            caught_up = bool(resp.get("success")) and self.ts >= self.repl.storage.ldt
            self.set_status("ready" if caught_up else "invalid")
        finally:
            self.repl.commit_lock.release()

    # ----- shipping commits (called with the commit lock held) -----

    def prepare(self, rec: dict[str, Any], two_phase: bool) -> tuple[bool, str]:
        """Ship one transaction synchronously. Returns (ok, failure reason) as in storage_error.cpp."""
        if self.status != "ready":
            reason = {"diverged": "replica has diverged from main"}.get(str(self.status),
                                                                        "replica is not reachable or not in "
                                                                        "sync with the main")
            return False, reason
        self.set_status("replicating")
        try:
            resp = self.rpc(dict(rec, type="PrepareCommit", two_phase=two_phase))
        except wire.LinkError as exc:
            log.warning("replicating to %s failed: %s", self.cfg.name, exc)
            self.set_status("invalid")
            return False, "replica is not reachable or not in sync with the main"
        if not resp.get("success"):
            self.set_status("invalid")
            return False, "replica is not reachable or not in sync with the main"
        self.ts = int(resp.get("ldt", self.ts))
        self.set_status("ready")
        return True, ""

    def finalize(self, commit_ts: int, decision: bool) -> None:
        """Second phase of STRICT_SYNC; failures are not reported to the client (reference 5)."""
        try:
            resp = self.rpc({"type": "FinalizeCommit", "commit_ts": commit_ts, "decision": decision})
            if decision and resp.get("success"):
                self.ts = int(resp.get("ldt", self.ts))
            elif decision:
                self.set_status("invalid")
        except wire.LinkError as exc:
            log.warning("finalize on %s failed: %s", self.cfg.name, exc)
            self.set_status("invalid")

    def ship_async(self, rec: dict[str, Any]) -> None:
        """Queue a committed transaction for the ASYNC worker (never an error for the client)."""
        if self.status == "replicating" and not self._idle.wait(ASYNC_LOCK_WAIT_S):
            self.set_status("invalid")
            return
        if self.status != "ready":
            return
        self._idle.clear()
        self.set_status("replicating")
        self._queue.put(rec)

    def _async_loop(self) -> None:
        while not self._stop.is_set():
            try:
                rec = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                resp = self.rpc(dict(rec, type="PrepareCommit", two_phase=False))
                ok = bool(resp.get("success"))
                if ok:
                    self.ts = int(resp.get("ldt", self.ts))
            except wire.LinkError as exc:
                log.info("async replication to %s failed: %s", self.cfg.name, exc)
                ok = False
            with self.repl.lock:
                if self.status == "replicating":
                    self.set_status("ready" if ok else "invalid")
            self._idle.set()

    # ----- SHOW REPLICAS -----

    def row(self, main_ldt: int) -> list[Any]:
        """One SHOW REPLICAS row (reference 2.2): system_info Null without a license."""
        data_info: dict[str, Any] = {}
        if self.status is not None:
            data_info = {"memgraph": {"ts": self.ts, "behind": self.ts - main_ldt, "status": self.status}}
        return [self.cfg.name, self.cfg.address, self.cfg.mode, None, data_info]
