"""The Lease as the elector sees it, and where it is stored.

Role: `LeaseRecord` (one read of the Lease: spec, annotations, resourceVersion), the `LeaseStore`
protocol the elector is written against (get / create / replace, each raising typed errors), and
`KubeLeaseStore`, the implementation on `kubernetes.client.CoordinationV1Api`.

CAS-critical methods (the safety of the election rests on them, reference bolt-and-kube-emulation 3.3):
- `replace(record)` must send `record.resource_version` and fail with `Conflict` when the stored
  Lease has another one (HTTP 409); it never does an unconditional update.
- `create(record)` must fail with `Conflict` when the Lease already exists (409 AlreadyExists).

Must never: retry on its own (the elector owns retries and deadlines), let one call run longer than
`request_timeout`, log a credential, or format MicroTime with anything but six fractional digits + `Z`.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

log = logging.getLogger(__name__)


class LeaseStoreError(Exception):
    """A Lease call failed; `status` is the HTTP status (0 when no response arrived)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(LeaseStoreError):
    """The Lease does not exist (404)."""


class Conflict(LeaseStoreError):
    """409: stale resourceVersion on replace, or AlreadyExists on create."""


class TransientError(LeaseStoreError):
    """403, 429, 5xx, timeout, connection refused: the outcome of a write may be unknown."""


class PermanentError(LeaseStoreError):
    """Any other answer (400, 401, 422, ...): retried by the elector like a transient one, but named."""


TRANSIENT_STATUSES = frozenset({401, 403, 408, 429, 500, 502, 503, 504})


def ambiguous(err: LeaseStoreError) -> bool:
    """True when a failed write may still have been applied (409, no response, or a 5xx)."""
    return isinstance(err, Conflict) or err.status == 0 or err.status >= 500


def utc_now() -> dt.datetime:
    """Wall clock, UTC. Only ever written into the Lease, never compared with a remote time."""
    return dt.datetime.now(dt.UTC)


class MicroTime(dt.datetime):
    """A datetime that serializes like the API server's MicroTime: `2006-01-02T15:04:05.000000Z`.

    The kubernetes client sends `datetime.isoformat()`, which drops the fraction when microseconds are 0
    and the apiserver then rejects the value (reference bolt-and-kube-emulation 3.3, "Time fields").
    """

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return format_micro_time(self)

    @classmethod
    def of(cls, value: dt.datetime) -> MicroTime:
        v = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return cls(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=dt.UTC)


class Stamps:
    """Wall-clock stamps for renewTime/acquireTime, strictly increasing (a clock that stalls or steps back
    still gives each write its own stamp, so a re-read can tell whether a write of ours was applied)."""

    def __init__(self, wall: Callable[[], dt.datetime] = utc_now) -> None:
        self._wall = wall
        self._last: dt.datetime | None = None

    def next(self) -> dt.datetime:
        now = self._wall()
        if self._last is not None and now <= self._last:
            now = self._last + dt.timedelta(microseconds=1)
        self._last = now
        return now


def format_micro_time(value: dt.datetime) -> str:
    """RFC 3339 with exactly six fractional digits and `Z`."""
    v = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """One version of the Lease. `resource_version` is opaque and compared only for equality.

    `holder` "" means nobody holds it (our release writes it so). `raw` is the client object it came
    from, kept so a replace preserves every field this record does not model (labels, owners...).
    """

    name: str
    holder: str = ""
    lease_duration_s: int = 0
    acquire_time: dt.datetime | None = None
    renew_time: dt.datetime | None = None
    transitions: int = 0
    annotations: dict[str, str] = field(default_factory=dict)
    resource_version: str = ""
    raw: Any = field(default=None, compare=False, repr=False)

    def evolve(self, **changes: Any) -> LeaseRecord:
        """A copy with `changes`; annotations are copied so records never share a dict."""
        changes.setdefault("annotations", dict(self.annotations))
        return replace(self, **changes)


class LeaseStore(Protocol):
    """Where the Lease lives. Every call is bounded by `request_timeout` seconds."""

    request_timeout: float

    def get(self) -> LeaseRecord:
        """Read the Lease. Raises NotFound, TransientError, PermanentError."""
        ...

    def create(self, record: LeaseRecord) -> LeaseRecord:
        """Create it; returns the stored version. Raises Conflict (AlreadyExists), TransientError, ..."""
        ...

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        """PUT with `record.resource_version` as precondition. Raises Conflict, NotFound, TransientError."""
        ...


class KubeLeaseStore:
    """`LeaseStore` on CoordinationV1Api (read / create / replace_namespaced_lease).

    It builds its own ApiClient from the given one's configuration with urllib3 retries disabled, so
    one call is one HTTP request and never outlasts `request_timeout` (urllib3 would otherwise retry a
    timed-out PUT three times).
    """

    def __init__(self, api_client: Any, namespace: str, name: str, request_timeout: float = 1.0) -> None:
        from kubernetes import client

        if request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive, got {request_timeout}")
        config = copy.deepcopy(api_client.configuration)
        config.retries = False
        self._client = client.ApiClient(configuration=config)
        self._client.default_headers.update(getattr(api_client, "default_headers", {}))
        self._api = client.CoordinationV1Api(self._client)
        self.namespace = namespace
        self.name = name
        self.request_timeout = request_timeout
        self.calls: Counter[str] = Counter()  # requests sent, by operation (for load figures)

    def close(self) -> None:
        """Close the connection pool of the private ApiClient."""
        self._client.close()

    def get(self) -> LeaseRecord:
        lease = self._call("read", lambda t: self._api.read_namespaced_lease(
            self.name, self.namespace, _request_timeout=t))
        return self._to_record(lease)

    def create(self, record: LeaseRecord) -> LeaseRecord:
        body = self._to_body(record, with_rv=False)
        lease = self._call("create", lambda t: self._api.create_namespaced_lease(
            self.namespace, body, _request_timeout=t))
        return self._to_record(lease)

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        if not record.resource_version:
            raise ValueError("replace needs a resourceVersion (a Lease allows no unconditional update)")
        body = self._to_body(record, with_rv=True)
        lease = self._call("replace", lambda t: self._api.replace_namespaced_lease(
            self.name, self.namespace, body, _request_timeout=t))
        return self._to_record(lease)

    # ---- mapping -----------------------------------------------------------------------------

    def _call(self, what: str, fn: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        self.calls[what] += 1
        try:
            return fn(self.request_timeout)
        except ApiException as e:
            raise _classify(what, self.name, int(e.status or 0), str(e.reason)) from e
        except (OSError, _urllib3_error()) as e:
            raise TransientError(f"{what} lease {self.name}: {type(e).__name__}: {e}", 0) from e

    def _to_body(self, record: LeaseRecord, with_rv: bool) -> Any:
        from kubernetes import client

        lease = copy.deepcopy(record.raw) if record.raw is not None else client.V1Lease()
        meta = lease.metadata or client.V1ObjectMeta()
        meta.name = self.name
        meta.namespace = self.namespace
        meta.annotations = dict(record.annotations) or None
        meta.resource_version = record.resource_version if with_rv else None
        if not with_rv:
            meta.uid = None
            meta.creation_timestamp = None
        lease.metadata = meta
        spec = lease.spec or client.V1LeaseSpec()
        spec.holder_identity = record.holder
        spec.lease_duration_seconds = int(record.lease_duration_s)
        spec.acquire_time = MicroTime.of(record.acquire_time) if record.acquire_time else None
        spec.renew_time = MicroTime.of(record.renew_time) if record.renew_time else None
        spec.lease_transitions = int(record.transitions)
        lease.spec = spec
        lease.api_version = "coordination.k8s.io/v1"
        lease.kind = "Lease"
        return lease

    def _to_record(self, lease: Any) -> LeaseRecord:
        meta, spec = lease.metadata, lease.spec
        return LeaseRecord(
            name=self.name,
            holder=(spec.holder_identity or "") if spec else "",
            lease_duration_s=(spec.lease_duration_seconds or 0) if spec else 0,
            acquire_time=spec.acquire_time if spec else None,
            renew_time=spec.renew_time if spec else None,
            transitions=(spec.lease_transitions or 0) if spec else 0,
            annotations=dict(meta.annotations or {}) if meta else {},
            resource_version=(meta.resource_version or "") if meta else "",
            raw=lease,
        )


def _classify(what: str, name: str, status: int, reason: str) -> LeaseStoreError:
    msg = f"{what} lease {name}: HTTP {status} {reason}"
    if status == 404:
        return NotFound(msg, status)
    if status == 409:
        return Conflict(msg, status)
    if status in TRANSIENT_STATUSES or status >= 500 or status == 0:
        return TransientError(msg, status)
    return PermanentError(msg, status)


def _urllib3_error() -> type[Exception]:
    import urllib3.exceptions

    return urllib3.exceptions.HTTPError
