"""The cluster record in the Lease: read it, and change it with compare-and-swap while leading.

Role: the part of the elector (`LeaderElector` inherits `RecordAccess`) that the coordinator's record
port (coordinator.runtime.wiring.TermRecord), the guard and the agent use: read the Lease's annotations
(a leader answers from its last write), and set or remove annotations with a replace carrying the
resourceVersion just known, retried on a conflict only while the Lease still names this candidate.

Must never: write the record while not leading or when the Lease names another holder, write without a
resourceVersion, or hold the state lock during an API call.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from coordinator.edge.lease_store import LeaseRecord, LeaseStore, LeaseStoreError, ambiguous
from coordinator.edge.logs import log_event

log = logging.getLogger("coordinator.edge.election")
MAX_RECORD_WRITES = 3  # one record update: the write and at most two retries after conflicts


class _Elector(Protocol):
    """What the record access uses of its elector (coordinator.edge.election.LeaderElector)."""

    identity: str
    _store: LeaseStore
    _state: threading.Lock
    _write: threading.Lock
    _cache: LeaseRecord | None
    _seen: LeaseRecord | None
    _seen_at: float | None
    _term: int
    _clock: Callable[[], float]

    def lease_valid_for(self) -> float: ...
    def _live_locked(self, term: int) -> bool: ...
    def _observe(self, rec: LeaseRecord) -> None: ...
    def _stamp(self) -> dt.datetime: ...
    def _renewed(self, rec: LeaseRecord, start: float) -> None: ...
    def _failed(self, what: str, err: LeaseStoreError, new_attempt: bool = True) -> None: ...
    def _resolve(self, desired: LeaseRecord, start: float, what: str) -> bool: ...


class RecordAccess:
    """Mixin of LeaderElector: the cluster record kept in the Lease's annotations."""

    def last_seen_annotations(self: _Elector) -> dict[str, str] | None:
        """Annotations of the Lease as last read or written by this elector; None before the first read.

        No API request: the guard in every agent checks the cluster record every retry period, and a
        follower already reads the Lease that often to watch for expiry.
        """
        with self._state:
            rec = self._seen
        return dict(rec.annotations) if rec is not None else None

    def seen_age_s(self: _Elector) -> float | None:
        """Seconds since this elector last read or wrote the Lease (its record's age); None before the
        first. It stays within a retry period while the API server answers; a pod frozen (a paused VM,
        a stopped node) or cut from the API server holds an older copy."""
        with self._state:
            return None if self._seen_at is None else self._clock() - self._seen_at

    def read_record(self: _Elector, fresh: bool = False) -> tuple[dict[str, str], str]:
        """Annotations of the Lease and their resourceVersion. A leader answers from its last write.

        Raises LeaseStoreError when a read was needed and failed.
        """
        with self._state:
            cache = self._cache
            cached_ok = cache is not None and self._live_locked(self._term)
        if cache is not None and cached_ok and not fresh:
            return dict(cache.annotations), cache.resource_version
        rec = self._store.get()
        self._observe(rec)
        return dict(rec.annotations), rec.resource_version

    def update_annotations(self: _Elector, changes: Mapping[str, str | None]) -> bool:
        """Set (str) or remove (None) annotations, only while we lead and the Lease names us (CAS).

        A conflict re-reads and retries while the Lease is still ours (at most 3 writes in all).
        A successful write also counts as a renewal. Returns False when not written.
        """
        if not self._write.acquire(timeout=max(0.0, self.lease_valid_for())):
            log_event(log, "record update refused: not leader", level=logging.WARNING, elector=self.identity)
            return False
        try:
            for _attempt in range(MAX_RECORD_WRITES):
                with self._state:
                    base = self._cache
                    live = self._live_locked(self._term)
                if not live or base is None or base.holder != self.identity:
                    log_event(log, "record update refused: not leader", level=logging.WARNING,
                              elector=self.identity)
                    return False
                annotations = {k: v for k, v in base.annotations.items() if k not in changes}
                annotations.update({k: v for k, v in changes.items() if v is not None})
                desired = base.evolve(annotations=annotations, renew_time=self._stamp())
                start = self._clock()
                try:
                    self._renewed(self._store.replace(desired), start)
                    return True
                except LeaseStoreError as err:
                    self._failed("record update", err)
                    if not ambiguous(err) or not self._resolve(desired, start, "record update"):
                        with self._state:
                            return self._cache is not None and self._cache.annotations == annotations \
                                and self._cache.renew_time == desired.renew_time
            return False
        finally:
            self._write.release()
