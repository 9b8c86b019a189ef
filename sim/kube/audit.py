"""The audit log of the Kubernetes API emulator: one record per mutating request, as the apiserver's is.

Role: keep, in memory and bounded, what an apiserver's audit backend writes for every mutating request
at level `Metadata`, stage `ResponseComplete` (Kubernetes "Auditing": an `audit.k8s.io/v1` Event carries
`verb`, `user`, `sourceIPs` -- "the originating IP and any intermediate proxies", the connection's
remote address last --, `userAgent`, `objectRef` {resource, namespace, name, subresource},
`responseStatus.code`, `requestReceivedTimestamp` and `stageTimestamp`), plus two things tests need to
tell who did what: for a Lease write that succeeded, the `holderIdentity` it left (the Lease's own
`spec`, as a `RequestResponse` level would show it), and for a pod patch, its body (level `Request`).
Requests refused before authentication (401) are recorded too, as the apiserver's failed-authentication
audit does; requests that got no answer (a `refuse` or `hang` outage) are not.

The times are `time.monotonic()` (CLOCK_MONOTONIC, the same clock in every process of the machine), so
they compare with the emulated Memgraphs' command audit (`sim.memgraph.audit`) and the fault log.

Must never: record a token or an Authorization header, grow without a bound, or block a request on
anything but its own short lock.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
MAX_RECORDS = 200_000  # a 30-minute soak writes ~50k (three agents renewing twice a second)
MAX_BODY = 2048  # bytes of a pod patch kept


@dataclass(frozen=True)
class AuditRecord:
    """One mutating request, as the apiserver's audit Event has it (the fields the tests read)."""

    received: float  # requestReceivedTimestamp (monotonic seconds)
    completed: float  # stageTimestamp of ResponseComplete
    source_ip: str  # the connection's remote address (no proxy in front of the emulator)
    user: str  # "" when authentication failed
    user_agent: str
    verb: str
    resource: str  # plural name, e.g. "leases", "pods", "events"
    namespace: str
    name: str
    subresource: str
    code: int
    holder: str | None = None  # a successful Lease write: spec.holderIdentity after it ("" = released)
    body: str = ""  # a pod patch's request body (truncated to MAX_BODY bytes)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def patch_body(self) -> dict[str, Any]:
        """The pod patch's body as JSON ({} when there is none or it was cut)."""
        try:
            doc = json.loads(self.body) if self.body else {}
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}


class AuditLog:
    """The bounded, thread-safe record list."""

    def __init__(self, size: int = MAX_RECORDS) -> None:
        self._records: deque[AuditRecord] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, record: AuditRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[AuditRecord]:
        with self._lock:
            return list(self._records)


def lease_holder(body: dict[str, Any] | None) -> str | None:
    """The holderIdentity a Lease answer shows ("" when none), None when the answer is not a Lease."""
    if not isinstance(body, dict) or body.get("kind") != "Lease":
        return None
    spec = body.get("spec") or {}
    return str(spec.get("holderIdentity") or "")


def kept_body(resource: str, verb: str, raw: bytes) -> str:
    """What of a request body the record keeps: a pod patch's, truncated; nothing else."""
    if resource != "pods" or verb != "patch" or not raw:
        return ""
    return raw[:MAX_BODY].decode("utf-8", errors="replace")
