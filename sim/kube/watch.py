"""Watch streams of the Kubernetes API emulator.

Role: turn the store's change history into the events one watch request sees. Reference
bolt-and-kube-emulation.md 3.4:
- "`resourceVersion` unset or `"0"`: first send synthetic `ADDED` events for every current matching
  object, then live changes. A specific RV: replay the changes after it."
- "If that RV is older than the emulator's retained history ("compacted"), send an `ERROR` event whose
  object is `Status` `{code:410, reason:"Expired", message:"too old resource version: X (Y)"}` inside
  the 200 stream."
- "emit `ADDED` when a modified object enters the selector and `DELETED` when it leaves" (the cacher
  sends the previous object content with the event's resource version).
- "`timeoutSeconds`: end the stream cleanly ... at the deadline"; "`allowWatchBookmarks=true`: ...
  send them on demand from tests" (`{"type":"BOOKMARK","object":{"kind":...,"apiVersion":...,
  "metadata":{"resourceVersion":"N"}}}`).

A stale view (`delay_s` > 0, sim.kube.faults: one client learns of changes late): the initial ADDED
events are the state of `delay_s` ago (`Store.select_as_of`), and each change is delivered once it is
`delay_s` old, in RV order -- later changes wait behind it.

Must never: block for longer than its deadline, or deliver an event the selector excludes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sim.kube import errors
from sim.kube.resources import ResourceType
from sim.kube.store import Change, Obj, Store

DEFAULT_MAX_WATCH_S = 1800.0  # the apiserver's --min-request-timeout when timeoutSeconds is unset
POLL_S = 0.25  # how often a waiting watch checks its client, deadline and faults


class StreamCut(Exception):
    """The stream must end abruptly (test cut, emulator stop, outage): no terminating chunk."""


@dataclass(frozen=True)
class WatchRequest:
    rt: ResourceType
    namespace: str | None
    matches: Callable[[Obj | None], bool]
    resource_version: str | None = None
    timeout_s: float | None = None
    bookmarks: bool = False
    # a stale view: every change delivered this long after it was committed; asked before each batch, so
    # an open stream follows the view as it is set and cleared
    delay_s: Callable[[], float] = lambda: 0.0


def translate(change: Change, req: WatchRequest) -> dict[str, Any] | None:
    """The event (type, object) a watcher of `req` sees for `change`, or None."""
    if change.key != req.rt.key or (req.namespace is not None and change.namespace != req.namespace):
        return None
    if change.type == "DELETED":
        return {"type": "DELETED", "object": change.new} if req.matches(change.new) else None
    new_ok = req.matches(change.new)
    old_ok = change.old is not None and req.matches(change.old)
    if new_ok:
        return {"type": "MODIFIED" if old_ok else "ADDED", "object": change.new}
    if old_ok and change.old is not None:
        last = dict(change.old)
        last["metadata"] = {**change.old.get("metadata", {}), "resourceVersion": str(change.rv)}
        return {"type": "DELETED", "object": last}
    return None


def bookmark(rt: ResourceType, rv: int) -> dict[str, Any]:
    return {
        "type": "BOOKMARK",
        "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(rv)}},
    }


def error_event(err: errors.ApiError) -> dict[str, Any]:
    return {"type": "ERROR", "object": err.status()}


def start_position(store: Store, req: WatchRequest) -> tuple[list[dict[str, Any]], int]:
    """Initial events and the RV to continue from. Raises 400 for a malformed RV."""
    rv = req.resource_version
    if rv in (None, "", "0"):
        delay = req.delay_s()
        if delay > 0:
            items, pos = store.select_as_of(req.rt, req.namespace, req.matches, store.clock() - delay)
        else:
            items, pos = store.select(req.rt, req.namespace, req.matches)
        return [{"type": "ADDED", "object": o} for o in items], pos
    try:
        pos = int(str(rv))
    except ValueError as exc:
        raise errors.bad_request(f"invalid resource version: {rv!r}") from exc
    return [], pos


def stream(
    store: Store,
    req: WatchRequest,
    alive: Callable[[], bool],
    hold: Callable[[float], bool],
    max_s: float = DEFAULT_MAX_WATCH_S,
) -> Iterator[dict[str, Any]]:
    """Yield watch events until the deadline. `alive()` is False once the client went away; `hold(t)`
    blocks up to t seconds while the API is hung and returns True if it still is (events are held back,
    as on a partitioned TCP connection). Raises StreamCut when the stream must break off."""
    seen = store.signals
    deadline = time.monotonic() + (req.timeout_s if req.timeout_s is not None else max_s)
    initial, pos = start_position(store, req)
    yield from initial
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not alive():
            return
        if hold(min(POLL_S, remaining)):
            continue
        try:
            changes, sig = store.changes_after(pos, min(POLL_S, remaining), seen)
        except errors.ApiError as err:
            yield error_event(err)
            return
        if sig.stopped or sig.cuts != seen.cuts:
            raise StreamCut("watch streams cut")
        if hold(0):
            continue  # the API hung while we waited: hold these back, they are re-read from history
        delay = req.delay_s()
        due = _due(store, changes, delay)
        if len(due) < len(changes):  # a stale view: the rest are re-read once they are old enough
            wait = changes[len(due)].t + delay - store.clock()
            time.sleep(max(0.0, min(POLL_S, wait, deadline - time.monotonic())))
        for change in due:
            pos = change.rv
            event = translate(change, req)
            if event is not None:
                yield event
        if req.bookmarks and sig.bookmarks != seen.bookmarks:
            yield bookmark(req.rt, pos)
        seen = sig


def _due(store: Store, changes: list[Change], delay_s: float) -> list[Change]:
    """The leading changes old enough to deliver under a stale view of `delay_s` (all when 0)."""
    if delay_s <= 0:
        return changes
    cutoff = store.clock() - delay_s
    n = 0
    while n < len(changes) and changes[n].t <= cutoff:
        n += 1
    return changes[:n]
