"""Object store of the Kubernetes API emulator: objects, one global revision, a bounded change history.

Role: the etcd + registry part of the emulator. Reference bolt-and-kube-emulation.md 3.3 ("Minimum
faithful model"): "One global, monotonically increasing revision counter (etcd-like). Every create,
update, patch or delete bumps it, and stamps the object's `metadata.resourceVersion` as a string";
"a body `metadata.resourceVersion` that differs from the stored one -> 409 Conflict"; "an empty RV ->
allowed only where the strategy allows unconditional updates ... Leases no, which answers 422";
"a PUT of a missing object -> 404, except for kinds with `AllowCreateOnUpdate` (Lease: yes -> created)";
"No-op writes (the result equals the stored object) do not bump the RV and emit no watch event".
Graceful pod deletion (3.8): "emit MODIFIED (with deletionTimestamp) and then DELETED". A pod bound to a
node (`spec.nodeName`) is removed only by its kubelet (`finalize_pod`) or a force delete (grace 0), as in
Kubernetes; an unbound pod is removed when its grace period ends.

Must never: hand out a stored dict (callers get deep copies; stored dicts are replaced, never mutated,
so the history can share them), block while holding its lock, or bump the revision for a no-op write.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from sim.kube import errors, patch
from sim.kube.resources import ResourceType, prepare_create, rfc3339
from sim.kube.validation import check_update, validate

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (resource key, namespace, name)


@dataclass(frozen=True)
class Change:
    """One committed write. `new` is the state after it (for DELETED: the last state, deletion's RV)."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    namespace: str
    old: Obj | None
    new: Obj
    t: float = 0.0  # the store's clock when it was committed (a stale view replays it `delay` later)


@dataclass(frozen=True)
class Signals:
    """Counters that wake watchers besides new changes: bookmark requests, stream cuts, shutdown."""

    bookmarks: int = 0
    cuts: int = 0
    stopped: bool = False


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _without_rv(obj: Obj) -> Obj:
    out = dict(obj)
    out["metadata"] = {k: v for k, v in _meta(obj).items() if k != "resourceVersion"}
    return out


class Store:
    """Thread-safe object store. Time for grace periods comes from `clock` (monotonic seconds)."""

    def __init__(
        self,
        history_size: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cond = threading.Condition()
        self.clock = clock
        self.wall = wall
        self.history_size = max(1, history_size)
        self.revision = 1
        self.compacted = 1  # a watch from an RV below this gets 410 Expired
        self._objects: dict[Key, Obj] = {}
        self._history: deque[Change] = deque()
        self._deadlines: dict[Key, float] = {}  # graceful deletions pending, monotonic deadline
        self._ips = 0
        self._kind_revs: dict[str, int] = {}  # resource key -> revision of its last write
        self.signals = Signals()

    # ---- reads -------------------------------------------------------------------------------

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        with self.cond:
            obj = self._objects.get((rt.key, ns, name))
            if obj is None:
                raise errors.not_found(rt.plural, rt.group, name)
            return copy.deepcopy(obj)

    def peek_meta(self, rt: ResourceType, ns: str, name: str) -> Obj | None:
        """A shallow copy of an object's metadata, or None (cheap: for per-request token checks)."""
        with self.cond:
            obj = self._objects.get((rt.key, ns, name))
            return dict(_meta(obj)) if obj is not None else None

    def kind_revision(self, rt: ResourceType) -> int:
        """The revision of the last write to any object of `rt` (0: never written); caches key on it."""
        with self.cond:
            return self._kind_revs.get(rt.key, 0)

    def select(
        self, rt: ResourceType, ns: str | None, flt: Callable[[Obj | None], bool]
    ) -> tuple[list[Obj], int]:
        """Matching objects (namespace None = all), sorted by namespace/name, and the list RV."""
        with self.cond:
            items = [
                copy.deepcopy(o)
                for (k, n, _), o in sorted(self._objects.items())
                if k == rt.key and (ns is None or n == ns) and flt(o)
            ]
            return items, self.revision

    def select_as_of(
        self, rt: ResourceType, ns: str | None, flt: Callable[[Obj | None], bool], cutoff: float
    ) -> tuple[list[Obj], int]:
        """As `select`, but the state at store-clock time `cutoff`: the changes committed after it are
        undone from the history, and the RV is that of the last change kept (a watch from it replays the
        undone ones). When the history does not reach back that far, the oldest state it can rebuild."""
        with self.cond:
            state = {k: o for k, o in self._objects.items() if k[0] == rt.key}
            rv = self.revision
            for ch in reversed(self._history):
                if ch.t <= cutoff:
                    rv = ch.rv
                    break
                rv = max(self.compacted, ch.rv - 1)
                if ch.key != rt.key:
                    continue
                key = (ch.key, ch.namespace, str(_meta(ch.new).get("name", "")))
                if ch.old is None:
                    state.pop(key, None)
                else:
                    state[key] = ch.old
            items = [copy.deepcopy(o) for (_, n, _), o in sorted(state.items())
                     if (ns is None or n == ns) and flt(o)]
            return items, rv

    # ---- writes ------------------------------------------------------------------------------

    def create(self, rt: ResourceType, ns: str, obj: Obj, keep_status: bool = False) -> Obj:
        obj = copy.deepcopy(obj)
        meta = _meta(obj)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        if not meta.get("name"):
            raise errors.invalid(
                rt.kind,
                rt.group,
                "",
                [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")],
            )
        if meta.get("namespace") and meta["namespace"] != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        with self.cond:
            key = (rt.key, ns, meta["name"])
            if key in self._objects:
                raise errors.already_exists(rt.plural, rt.group, meta["name"])
            self._ips += 1
            prepare_create(rt, obj, keep_status, f"10.96.{self._ips // 250}.{self._ips % 250 + 1}")
            validate(rt, obj, ns)
            for drop in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(drop, None)
            meta.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=rfc3339(self.wall()))
            if rt.has_generation:
                meta["generation"] = 1
            return self._commit(rt, key, None, obj)

    def replace(
        self, rt: ResourceType, ns: str, name: str, obj: Obj, status: bool = False
    ) -> tuple[Obj, bool]:
        """PUT. Returns (object, created)."""
        obj = copy.deepcopy(obj)
        meta = _meta(obj)
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        rv = str(meta.get("resourceVersion") or "")
        with self.cond:
            key = (rt.key, ns, name)
            old = self._objects.get(key)
            if old is None:
                if not rt.create_on_update or status:
                    raise errors.not_found(rt.plural, rt.group, name)
                meta["name"] = name
                return self.create(rt, ns, obj), True
            if not rv and not rt.unconditional_update:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    name,
                    [
                        (
                            "metadata.resourceVersion",
                            "FieldValueInvalid",
                            "Invalid value: 0x0: must be specified for an update",
                        )
                    ],
                )
            if rv and rv != _meta(old)["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
            return self._update(rt, key, old, obj, status), False

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        content_type: str,
        body: Any,
        status: bool = False,
        decode: Callable[[Obj], None] | None = None,
    ) -> Obj:
        """PATCH. `decode` sees (and may prune) the patched object before it is validated and stored."""
        with self.cond:
            key = (rt.key, ns, name)
            old = self._objects.get(key)
            if old is None:
                raise errors.not_found(rt.plural, rt.group, name)
            new = patch.apply(content_type, old, body, rt)
            if decode is not None:
                decode(new)
            rv = _meta(new).get("resourceVersion")
            if rv is not None and str(rv) != _meta(old)["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
            return self._update(rt, key, old, new, status)

    def delete(
        self, rt: ResourceType, ns: str, name: str, grace: int | None = None, preconditions: Obj | None = None
    ) -> tuple[Obj, bool]:
        """DELETE. Returns (object, removed now). Pods get a grace period (reference 3.8)."""
        with self.cond:
            key = (rt.key, ns, name)
            old = self._objects.get(key)
            if old is None:
                raise errors.not_found(rt.plural, rt.group, name)
            self._check_preconditions(rt, old, preconditions or {})
            meta = _meta(old)
            if not rt.graceful_delete:
                if not meta.get("finalizers"):
                    return self._remove(key), True
                if meta.get("deletionTimestamp"):
                    return copy.deepcopy(old), False
                return self._stamp_deletion(rt, key, old, 0), False
            if grace is None:
                grace = int((old.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            current = meta.get("deletionGracePeriodSeconds")
            if current is not None and grace >= current:
                return copy.deepcopy(old), False  # a longer grace never extends a pending one
            if grace <= 0:
                self._deadlines.pop(key, None)
                if not meta.get("finalizers"):
                    return self._remove(key), True
            elif not (old.get("spec") or {}).get("nodeName"):
                self._deadlines[key] = self.clock() + grace
            # a pod bound to a node is removed by its kubelet once its containers stopped (finalize_pod),
            # or by a force delete; never by the API server when the grace period ends: on a lost node it
            # stays Terminating
            return self._stamp_deletion(rt, key, old, max(grace, 0)), False

    def finalize_pod(self, rt: ResourceType, ns: str, name: str) -> bool:
        """Kubelet's last step: the containers stopped, remove the pod (grace 0). True if it is gone."""
        _, removed = self.delete(rt, ns, name, grace=0)
        return removed

    def reap(self) -> int:
        """Remove pods whose grace period ended on `clock`; returns how many were removed."""
        removed = 0
        with self.cond:
            now = self.clock()
            for key in [k for k, deadline in self._deadlines.items() if deadline <= now]:
                del self._deadlines[key]
                removed += int(self._maybe_remove(key)[1])
        return removed

    # ---- watch support -----------------------------------------------------------------------

    def compact(self) -> int:
        """Drop the whole history (watches from any older RV get 410). Returns the compacted RV."""
        with self.cond:
            self._history.clear()
            self.compacted = self.revision
            return self.compacted

    def signal(self, bookmarks: bool = False, cut: bool = False, stop: bool = False) -> None:
        with self.cond:
            s = self.signals
            self.signals = Signals(s.bookmarks + int(bookmarks), s.cuts + int(cut), s.stopped or stop)
            self.cond.notify_all()

    def changes_after(self, after: int, timeout_s: float, seen: Signals) -> tuple[list[Change], Signals]:
        """Changes with RV > `after`, waiting at most `timeout_s` for one (or for a signal)."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while self.revision <= after and self.signals == seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
            if after < self.compacted:
                raise errors.expired(after, self.compacted + 1)
            start = max(0, len(self._history) - (self.revision - after))
            return list(islice(self._history, start, None)), self.signals

    # ---- internals (call with the lock held) ---------------------------------------------------

    def _check_preconditions(self, rt: ResourceType, old: Obj, pre: Obj) -> None:
        meta = _meta(old)
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            want = pre.get(field)
            if want and want != meta.get(field):
                err = errors.conflict(rt.plural, rt.group, meta["name"])
                what = f'{errors.qualified(rt.plural, rt.group)} "{meta["name"]}"'
                err.message = (
                    f"Operation cannot be fulfilled on {what}: Precondition failed: "
                    f"{label} in precondition: {want}, {label} in object meta: {meta.get(field)}"
                )
                raise err

    def _update(self, rt: ResourceType, key: Key, old: Obj, new: Obj, status: bool) -> Obj:
        """Apply the registry strategy (status vs main resource, immutable metadata) and commit."""
        if status:
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status")
            new = merged
        else:
            if rt.has_status:
                new["status"] = copy.deepcopy(old.get("status"))
            check_update(rt, old, new)
            meta, old_meta = _meta(new), _meta(old)
            for keep in (
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ):
                if keep in old_meta:
                    meta[keep] = old_meta[keep]
                else:
                    meta.pop(keep, None)
        validate(rt, new, key[1])
        result = self._commit(rt, key, old, new)
        if _meta(result).get("deletionTimestamp"):
            obj, _ = self._maybe_remove(key)
            return obj
        return result

    def _commit(self, rt: ResourceType, key: Key, old: Obj | None, new: Obj) -> Obj:
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if old is not None and _without_rv(old) == _without_rv(new):
            return copy.deepcopy(old)  # no-op write: no new RV, no watch event
        if old is not None and rt.has_generation and old.get("spec") != new.get("spec"):
            _meta(new)["generation"] = int(_meta(old).get("generation", 1)) + 1
        self.revision += 1
        _meta(new)["resourceVersion"] = str(self.revision)
        self._objects[key] = new
        self._record(Change(self.revision, "ADDED" if old is None else "MODIFIED", key[0], key[1], old, new,
                           self.clock()))
        return copy.deepcopy(new)

    def _remove(self, key: Key) -> Obj:
        old = self._objects.pop(key)
        self._deadlines.pop(key, None)
        self.revision += 1
        last = dict(old)
        last["metadata"] = {**_meta(old), "resourceVersion": str(self.revision)}
        self._record(Change(self.revision, "DELETED", key[0], key[1], old, last, self.clock()))
        return copy.deepcopy(last)

    def _stamp_deletion(self, rt: ResourceType, key: Key, old: Obj, grace: int) -> Obj:
        new = copy.deepcopy(old)
        _meta(new)["deletionTimestamp"] = rfc3339(self.wall() + timedelta(seconds=grace))
        _meta(new)["deletionGracePeriodSeconds"] = grace
        return self._commit(rt, key, old, new)

    def _maybe_remove(self, key: Key) -> tuple[Obj, bool]:
        """Remove a terminating object once nothing holds it (grace period over, no finalizers)."""
        obj = self._objects[key]
        meta = _meta(obj)
        if _awaits_kubelet(obj):
            return copy.deepcopy(obj), False
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and key not in self._deadlines:
            return self._remove(key), True
        return copy.deepcopy(obj), False

    def _record(self, change: Change) -> None:
        self._kind_revs[change.key] = change.rv
        self._history.append(change)
        while len(self._history) > self.history_size:
            self.compacted = self._history.popleft().rv
        self.cond.notify_all()


def _awaits_kubelet(obj: Obj) -> bool:
    """A terminating pod bound to a node: only its kubelet (finalize_pod) or a force delete removes it."""
    spec = obj.get("spec") or {}
    return (obj.get("kind") == "Pod" and bool(spec.get("nodeName"))
            and int(_meta(obj).get("deletionGracePeriodSeconds") or 0) > 0)
