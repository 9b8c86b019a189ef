"""Deterministic doubles for the elector: an in-memory Lease store with real CAS (the clocks: tests.support).

`MemoryLeaseStore` follows reference bolt-and-kube-emulation 3.3 ("resourceVersion / 409 semantics"):
one global revision counter stamped as a string on every write; a replace whose resourceVersion differs
from the stored one is a 409 Conflict; a create of an existing Lease is 409 AlreadyExists. Faults are
scripted per call: raise an error before applying, apply and then raise (a timeout after sending), or
block until released (a stuck call).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from coordinator.edge.lease_store import Conflict, LeaseRecord, LeaseStoreError, NotFound


@dataclass
class Fault:
    """What the next matching call does instead of (or after) its normal work."""

    op: str  # "get" | "create" | "replace"
    error: LeaseStoreError | None = None  # None: only run `hook`, then do the call normally
    after_apply: bool = False  # apply the write, then raise (the answer was lost)
    block: threading.Event | None = None  # wait for this event first (a hung call)
    hook: Callable[[], object] | None = None  # runs first: another party writing in between


@dataclass
class MemoryLeaseStore:
    """One Lease in memory. Thread-safe; `calls` counts requests per operation."""

    name: str = "memgraph-ha"
    request_timeout: float = 0.5
    record: LeaseRecord | None = None
    revision: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    down: LeaseStoreError | None = None  # while set, every call fails with it (an API outage)

    def get(self) -> LeaseRecord:
        self._fault("get")
        with self.lock:
            if self.record is None:
                raise NotFound(f"leases.coordination.k8s.io \"{self.name}\" not found", 404)
            return self.record.evolve()

    def create(self, record: LeaseRecord) -> LeaseRecord:
        fault = self._fault("create")
        with self.lock:
            if self.record is not None:
                raise Conflict(f"leases.coordination.k8s.io \"{self.name}\" already exists", 409)
            stored = self._store(record)
        if fault is not None and fault.error is not None:
            raise fault.error
        return stored

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        fault = self._fault("replace")
        with self.lock:
            if self.record is None:
                raise NotFound(f"leases.coordination.k8s.io \"{self.name}\" not found", 404)
            if record.resource_version != self.record.resource_version:
                raise Conflict(f"leases \"{self.name}\": the object has been modified", 409)
            stored = self._store(record)
        if fault is not None and fault.error is not None:
            raise fault.error
        return stored

    # ---- test controls -----------------------------------------------------------------------

    def put_directly(self, **fields: object) -> LeaseRecord:
        """Write the Lease as another party would (bumps the revision)."""
        with self.lock:
            base = self.record or LeaseRecord(name=self.name)
            return self._store(base.evolve(**fields))

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self.revision += 1
        self.record = record.evolve(resource_version=str(self.revision))
        return self.record.evolve()

    def _fault(self, op: str) -> Fault | None:
        """Count the call; raise a pre-apply fault now, return an after-apply one for the caller."""
        with self.lock:
            self.calls[op] += 1
            if self.down is not None:
                raise self.down
            fault = next((f for f in self.faults if f.op == op), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is None:
            return None
        if fault.hook is not None:
            fault.hook()
        if fault.block is not None:
            fault.block.wait(10.0)
        if fault.error is not None and not fault.after_apply:
            raise fault.error
        return fault
