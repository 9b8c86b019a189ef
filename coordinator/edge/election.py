"""Lease elector: acquire, renew, release, callbacks (the cluster record: election_record.py).

Role: elect one agent through a `coordination.k8s.io/v1` Lease (client-go semantics, reference
kubernetes-and-helm B.3, bolt-and-kube-emulation 4; CNPG `tryTakeOver`, ha-anchors 2.3). What a round
does with what it observed is decided by the pure `coordinator.core.lease_rules.classify`:
- an empty (released) Lease, or one naming us, is claimed at once;
- another holder's Lease is taken over only after its (holder, renewTime, resourceVersion) was seen
  unchanged for the `leaseDurationSeconds` written in it, on our monotonic clock;
- every claim, renewal and record update is a replace with the resourceVersion just known (CAS);
- leadership ends when no renewal succeeded within `renew_deadline` of the last successful renewal's
  start; `is_leader()` is computed from that deadline, so it turns false on time even while the
  renewing thread is stuck in a call.

Must never: compare a remote timestamp with the local clock, write the Lease without a
resourceVersion, claim leadership from an ambiguous write it cannot prove was its own, block a
renewal on a callback, or wait without a bound.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from coordinator.core.lease_rules import ElectionConfig, LeaseFacts, LeaseMove, classify
from coordinator.edge.election_callbacks import Notice, Notifier
from coordinator.edge.election_record import RecordAccess
from coordinator.edge.lease_store import (
    Conflict,
    LeaseRecord,
    LeaseStore,
    LeaseStoreError,
    NotFound,
    Stamps,
    ambiguous,
    utc_now,
)
from coordinator.edge.logs import log_event

log = logging.getLogger(__name__)

Clock = Callable[[], float]
WallClock = Callable[[], dt.datetime]


class LeaderElector(RecordAccess):
    """One candidate. `start()` runs `step()` every retry period on a thread; tests call `step()`."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        config: ElectionConfig | None = None,
        *,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        clock: Clock = time.monotonic,
        wall: WallClock = utc_now,
    ) -> None:
        if not identity:
            raise ValueError("elector identity (the pod name) must not be empty")
        self.config = config or ElectionConfig()
        if not 0 < store.request_timeout < self.config.retry_period_s:
            raise ValueError(
                f"request timeout ({store.request_timeout}s) must be positive and shorter than the retry "
                f"period ({self.config.retry_period_s}s)")
        self.identity, self._store, self._clock = identity, store, clock
        self._stamps = Stamps(wall)  # renewTime values, strictly increasing: each write is recognisable
        self._state = threading.Lock()  # guards the fields below; never held during an API call
        self._write = threading.Lock()  # serializes API writes of this elector (renew vs record update)
        self._leading = False
        self._term = 0
        self._renewed_at = 0.0
        self._cache: LeaseRecord | None = None  # last version we know (our own write or a read)
        self._seen: LeaseRecord | None = None  # last version read or written, for last_seen_annotations
        self._seen_at: float | None = None  # local clock when `_seen` was last read or written
        self._observed_key: tuple[object, ...] | None = None
        self._observed_at = 0.0
        self._leader_seen = ""
        self._failures = 0
        self._failing_since = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.notifier = Notifier(self, on_started_leading, on_stopped_leading, on_new_leader)

    # ---- queries (any thread) ----------------------------------------------------------------

    def is_leader(self) -> bool:
        """True only while a renewal succeeded within the renew deadline (from its start)."""
        with self._state:
            return self._live_locked(self._term)

    def current_term(self) -> int:
        """The number of the current (or last) leadership term; it grows with every acquisition."""
        with self._state:
            return self._term

    def term_alive(self, term: int) -> bool:
        with self._state:
            return self._live_locked(term)

    def lease_valid_for(self) -> float:
        """Seconds left before the renew deadline; 0 when not leading. Re-check before every mutation."""
        with self._state:
            live = self._live_locked(self._term)
            return self._renewed_at + self.config.renew_deadline_s - self._clock() if live else 0.0

    def leader_identity(self) -> str:
        """The holder last seen in the Lease ("" when none); our identity while we lead."""
        with self._state:
            return self.identity if self._live_locked(self._term) else self._leader_seen

    def api_failing_for(self) -> float | None:
        """Seconds since this elector's Lease calls started failing; None while the last one succeeded."""
        with self._state:
            return self._clock() - self._failing_since if self._failures else None

    def _live_locked(self, term: int) -> bool:
        return (self._leading and term == self._term and not self._stop.is_set()
                and self._clock() < self._renewed_at + self.config.renew_deadline_s)

    # ---- the loop --------------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the election loop and the callback thread."""
        if self._thread is not None:
            raise RuntimeError("elector already started")
        self.notifier.start()
        self._thread = threading.Thread(target=self._run, name=f"elector-{self.identity}", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True, timeout_s: float | None = None) -> None:
        """Stop campaigning; leadership ends at once. Release the Lease (CAS) if it names us.

        `release=False` models a crash: the Lease is left to expire.
        """
        bound = timeout_s if timeout_s is not None else 2 * self._store.request_timeout + 1.0
        self._stop.set()
        if self._thread is not None:
            self._thread.join(bound)
            if self._thread.is_alive():
                log_event(log, "election loop did not stop in time", level=logging.WARNING,
                          elector=self.identity, bound_s=bound)
        with self._state:
            self._end_term_locked("stopping")
        self.notifier.drain()
        if release and not self._write.acquire(timeout=bound):
            log_event(log, "lease not released: a Lease call still runs", level=logging.WARNING,
                      elector=self.identity, bound_s=bound)
        elif release:
            try:
                self._release()
            finally:
                self._write.release()
        self.notifier.stop(bound)

    def _run(self) -> None:
        period = self.config.retry_period_s
        next_at = self._clock()
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("election step failed", extra={"fields": {"elector": self.identity}})
            next_at += period
            delay = next_at - self._clock()
            if delay < 0:
                next_at, delay = self._clock(), 0.0
            self._stop.wait(delay)

    def step(self) -> None:
        """One round: renew if we lead, otherwise read the Lease and claim it when allowed."""
        if self._stop.is_set():
            return
        with self._write:
            with self._state:
                if self._leading:
                    now = self._clock()
                    facts = LeaseFacts(self.identity, now, leading=True, renewed_at=self._renewed_at)
                    if classify(facts, self.config) is LeaseMove.LOST:
                        self._end_term_locked("no renewal succeeded within the renew deadline")
                leading = self._leading
            if leading:
                self._renew()
            else:
                self._campaign()

    # ---- leader side -----------------------------------------------------------------------------

    def _renew(self, retry_if_ours: bool = True) -> None:
        base = self._cache
        assert base is not None
        desired = base.evolve(holder=self.identity, lease_duration_s=self.config.written_duration_s,
                              renew_time=self._stamp())
        start = self._clock()
        try:
            self._renewed(self._store.replace(desired), start)
        except LeaseStoreError as err:
            self._failed("renew", err)
            if isinstance(err, NotFound):
                with self._state:
                    self._end_term_locked("the Lease was deleted")
                    self._cache = None
            elif ambiguous(err) and self._resolve(desired, start, "renew") and retry_if_ours:
                self._renew(retry_if_ours=False)

    def _resolve(self, desired: LeaseRecord, start: float, what: str) -> bool:
        """After an ambiguous write: re-read. Returns True when the Lease is ours but lacks our write."""
        try:
            fresh = self._store.get()
        except NotFound:
            with self._state:
                self._end_term_locked("the Lease was deleted")
                self._cache = None
            return False
        except LeaseStoreError as err:
            self._failed(f"re-read after {what}", err, new_attempt=False)
            return False
        if fresh.holder != self.identity:
            with self._state:
                self._end_term_locked(f"the Lease now names {fresh.holder or 'nobody'!r}")
        self._observe(fresh)
        if fresh.holder == self.identity and fresh.renew_time == desired.renew_time:
            log_event(log, "lease write applied despite the error (re-read shows it)",
                      elector=self.identity, call=what)
            if self._leading:
                self._renewed(fresh, start)
            else:
                self._acquired(fresh, start)
            return False
        with self._state:
            self._cache = fresh
        return fresh.holder == self.identity and self._leading

    def _renewed(self, rec: LeaseRecord, start: float) -> None:
        with self._state:
            self._cache = rec
            self._seen, self._seen_at = rec, self._clock()
            if self._stop.is_set() or not self._leading:
                return
            if not self._live_locked(self._term):
                # Too late: callbacks may have reported the loss already; reclaim as a new term instead.
                self._end_term_locked("the renewal finished after the renew deadline")
                return
            self._renewed_at = max(self._renewed_at, start)
            self._note_success_locked()
            self._observed_key, self._observed_at = _key(rec), self._clock()

    def _release(self) -> None:
        rec = self._cache
        if rec is None or rec.holder != self.identity:
            return
        for attempt in (1, 2):
            now = self._stamp()
            desired = rec.evolve(holder="", lease_duration_s=1, renew_time=now, acquire_time=now)
            try:
                self._store.replace(desired)
                log_event(log, "lease released", elector=self.identity)
                return
            except Conflict:
                try:
                    rec = self._store.get()
                except LeaseStoreError as err:
                    log_event(log, "lease release: re-read failed", level=logging.WARNING,
                              elector=self.identity, error=f"{type(err).__name__}: {err}")
                    return
                if rec.holder != self.identity:
                    log_event(log, "lease release not needed", elector=self.identity, holder=rec.holder)
                    return
            except LeaseStoreError as err:
                log_event(log, "lease release failed", level=logging.WARNING, elector=self.identity,
                          attempt=attempt, error=f"{type(err).__name__}: {err}")
                return

    # ---- candidate side --------------------------------------------------------------------------

    def _campaign(self) -> None:
        try:
            rec = self._store.get()
        except NotFound:
            self._create()
            return
        except LeaseStoreError as err:
            self._failed("read", err)
            return
        self._observe(rec)
        self._note_success()
        with self._state:
            facts = LeaseFacts(self.identity, self._clock(), holder=rec.holder,
                               written_duration_s=rec.lease_duration_s, unchanged_since=self._observed_at)
        if classify(facts, self.config) is LeaseMove.CLAIM:
            self._claim(rec)

    def _claim(self, rec: LeaseRecord) -> None:
        now = self._stamp()
        desired = rec.evolve(
            holder=self.identity, lease_duration_s=self.config.written_duration_s, acquire_time=now,
            renew_time=now, transitions=rec.transitions + (0 if rec.holder == self.identity else 1))
        start = self._clock()
        try:
            self._acquired(self._store.replace(desired), start)
        except LeaseStoreError as err:
            self._failed(f"claim (held by {rec.holder!r})", err)
            if ambiguous(err) and not isinstance(err, Conflict):
                self._resolve(desired, start, "claim")

    def _create(self) -> None:
        now = self._stamp()
        desired = LeaseRecord(name=getattr(self._store, "name", ""), holder=self.identity,
                              lease_duration_s=self.config.written_duration_s, acquire_time=now,
                              renew_time=now, transitions=0)
        start = self._clock()
        try:
            self._acquired(self._store.create(desired), start)
        except Conflict:
            log_event(log, "lease created by another candidate; re-reading", elector=self.identity)
            try:
                rec = self._store.get()
            except LeaseStoreError as err:
                self._failed("read after create conflict", err)
                return
            self._observe(rec)
            if rec.holder == "":
                self._claim(rec)
        except LeaseStoreError as err:
            self._failed("create", err)
            if ambiguous(err):
                self._resolve(desired, start, "create")

    def _acquired(self, rec: LeaseRecord, start: float) -> None:
        with self._state:
            self._cache = rec
            self._seen, self._seen_at = rec, self._clock()
            if self._stop.is_set():
                return
            self._leading, self._term, self._renewed_at = True, self._term + 1, start
            self._note_success_locked()
            self._observed_key, self._observed_at = _key(rec), self._clock()
            is_new, self._leader_seen = self._leader_seen != self.identity, self.identity
            term = self._term
        log_event(log, "became leader", elector=self.identity, term=term, lease_transitions=rec.transitions)
        if is_new:
            self.notifier.post(Notice.NEW_LEADER, self.identity)
        self.notifier.post(Notice.STARTED, term)

    def _observe(self, rec: LeaseRecord) -> None:
        """Remember when this version was first seen (local clock); report a new holder."""
        with self._state:
            self._seen, self._seen_at = rec, self._clock()
            key = _key(rec)
            if key != self._observed_key:
                self._observed_key, self._observed_at = key, self._clock()
            changed = rec.holder != self._leader_seen
            self._leader_seen = rec.holder
            if rec.holder != self.identity and self._cache is not None:
                self._cache = rec  # no longer ours: never renew or release from it
        if changed and rec.holder:
            log_event(log, "lease holder changed", elector=self.identity, holder=rec.holder)
            self.notifier.post(Notice.NEW_LEADER, rec.holder)

    # ---- helpers -------------------------------------------------------------------------------------

    def _stamp(self) -> dt.datetime:
        return self._stamps.next()

    def _end_term_locked(self, reason: str) -> None:
        if self._leading:
            self._leading = False
            log_event(log, "stopped leading", elector=self.identity, term=self._term, reason=reason)
            self.notifier.post(Notice.STOPPED, self._term)

    def _failed(self, what: str, err: LeaseStoreError, new_attempt: bool = True) -> None:
        """Log one failed call; follow-up re-reads share the attempt number of the call they resolve."""
        with self._state:
            if self._failures == 0:
                self._failing_since = self._clock()
            if new_attempt:
                self._failures += 1
            attempt, elapsed = self._failures, self._clock() - self._failing_since
            left = (self._renewed_at + self.config.renew_deadline_s - self._clock()) if self._leading else 0.0
        log_event(log, "lease call failed", level=logging.WARNING, elector=self.identity, call=what,
                  attempt=attempt, failing_s=round(elapsed, 2), lease_left_s=round(max(left, 0.0), 2),
                  error=f"{type(err).__name__}: {err}")

    def _note_success(self) -> None:
        with self._state:
            self._note_success_locked()

    def _note_success_locked(self) -> None:
        if self._failures:
            log_event(log, "lease calls succeed again", elector=self.identity, failures=self._failures)
        self._failures = 0


def _key(rec: LeaseRecord) -> tuple[object, ...]:
    return (rec.holder, rec.renew_time, rec.resource_version)
