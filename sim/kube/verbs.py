"""The verbs of the Kubernetes API emulator: what a routed, authorized request does to the store.

Role: get, list, watch, create, update, patch, delete and deletecollection on a served resource, and
GET of the discovery and OpenAPI documents, as the apiserver answers them: list items without
kind/apiVersion (reference bolt-and-kube-emulation.md 3.2), a `Status` for a removed object of kinds
whose delete answers one, a Table instead of the object when the client's Accept asks for one
(`tables.py`), fields checked by the request's `fieldValidation` (`decoding.py`), and for a PUT that
creates (Lease: `AllowCreateOnUpdate`) the `create` permission checked as the update handler's
`withAuthorization` does. Each verb returns an `Answer` the HTTP handler writes.

Must never: write to the socket, or change the store for a request it answers with an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sim.kube import decoding, discovery, errors, openapi, tables, watch
from sim.kube.requestinfo import RequestInfo, Route
from sim.kube.selectors import make_filter

if TYPE_CHECKING:
    from sim.kube.server import KubeEmulator

_RETURNS_DELETED_OBJECT = {"Pod", "Service"}


@dataclass
class Answer:
    code: int
    body: dict[str, Any] | None = None
    raw: bytes | None = None
    content_type: str = "application/json"
    events: Iterator[dict[str, Any]] | None = None  # a watch stream
    warnings: list[str] = field(default_factory=list)


@dataclass
class Request:
    emu: KubeEmulator
    method: str
    info: RequestInfo
    route: Route | None
    query: dict[str, list[str]]
    raw: bytes
    content_type: str
    accept: str
    authorize: Callable[[RequestInfo], None]  # raises 403 when the request's user may not do `info`
    alive: Callable[[], bool]  # False once a watch client went away
    client: str = ""  # the source address (a stale view is keyed by it: sim.kube.faults)


def _q(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def serve(req: Request) -> Answer:
    if req.route is None:
        return _non_resource(req)
    if req.method != "GET" and "dryRun" in req.query:
        raise errors.bad_request("emulator: dryRun is not supported")
    verb = req.info.verb
    if req.route.namespace is None and verb not in ("list", "watch"):
        raise errors.method_not_allowed(verb)
    handler = _VERBS.get(verb)
    if handler is None:
        raise errors.method_not_allowed(verb)
    return handler(req, req.route)


def _non_resource(req: Request) -> Answer:
    path = req.info.path.rstrip("/") or "/"
    if req.info.resource_request or req.method != "GET":
        raise errors.path_not_found()
    if path.startswith("/openapi/v3"):
        data = openapi.document(path)
        if data is None:
            raise errors.path_not_found()
        return Answer(200, raw=data)
    aggregated = discovery.wants_aggregated(req.accept) and path in ("/api", "/apis")
    doc = discovery.document(path, req.emu.port, aggregated)
    if doc is None:
        raise errors.path_not_found()
    return Answer(200, doc, content_type=discovery.AGGREGATED_V2 if aggregated else "application/json")


def _object(
    req: Request, route: Route, obj: dict[str, Any], code: int = 200, warn: list[str] | None = None
) -> Answer:
    if tables.wants_table(req.accept):
        rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        return Answer(code, tables.table(route.rt, [obj], rv), content_type=tables.TABLE_CONTENT_TYPE)
    return Answer(code, obj, warnings=warn or [])


def _get(req: Request, route: Route) -> Answer:
    return _object(req, route, req.emu.store.get(route.rt, route.namespace or "", route.name))


def _list(req: Request, route: Route) -> Answer:
    rt = route.rt
    flt = make_filter(_q(req.query, "labelSelector"), _q(req.query, "fieldSelector"), rt.kind)
    delay = req.emu.faults.stale_delay(req.client, "list", rt.plural)
    store = req.emu.store
    if delay > 0:
        items, rv = store.select_as_of(rt, route.namespace, flt, store.clock() - delay)
    else:
        items, rv = store.select(rt, route.namespace, flt)
    if tables.wants_table(req.accept):
        return Answer(200, tables.table(rt, items, str(rv)), content_type=tables.TABLE_CONTENT_TYPE)
    for item in items:  # the apiserver strips kind/apiVersion from list items
        item.pop("kind", None)
        item.pop("apiVersion", None)
    body = {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(rv)}}
    return Answer(200, {**body, "items": items})


def _checked_body(req: Request, route: Route) -> tuple[dict[str, Any], list[str]]:
    mode = decoding.directive(req.query, req.info.verb)
    body = decoding.parse(req.raw)
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    return body, decoding.check(route.rt, body, mode)


def _create(req: Request, route: Route) -> Answer:
    body, warnings = _checked_body(req, route)
    return _object(req, route, req.emu.store.create(route.rt, route.namespace or "", body), 201, warnings)


def _update(req: Request, route: Route) -> Answer:
    rt, ns = route.rt, route.namespace or ""
    body, warnings = _checked_body(req, route)
    if rt.create_on_update and req.emu.store.peek_meta(rt, ns, route.name) is None:
        req.authorize(replace(req.info, verb="create"))
    obj, created = req.emu.store.replace(rt, ns, route.name, body, route.sub == "status")
    return _object(req, route, obj, 201 if created else 200, warnings)


def _patch(req: Request, route: Route) -> Answer:
    mode = decoding.directive(req.query, "patch")
    warnings: list[str] = []

    def decode(obj: dict[str, Any]) -> None:
        warnings.extend(decoding.check(route.rt, obj, mode))

    obj = req.emu.store.patch(
        route.rt, route.namespace or "", route.name, req.content_type, decoding.parse(req.raw),
        route.sub == "status", decode=decode,
    )  # fmt: skip
    return _object(req, route, obj, 200, warnings)


def _delete_options(req: Request) -> tuple[int | None, dict[str, Any] | None]:
    opts = decoding.parse(req.raw) or {}
    grace = opts.get("gracePeriodSeconds") if isinstance(opts, dict) else None
    grace_q = _q(req.query, "gracePeriodSeconds")
    if grace_q is not None:
        grace = int(grace_q)
    pre = opts.get("preconditions") if isinstance(opts, dict) else None
    return grace, pre


def _delete(req: Request, route: Route) -> Answer:
    grace, pre = _delete_options(req)
    rt = route.rt
    obj, removed = req.emu.store.delete(rt, route.namespace or "", route.name, grace, pre)
    if removed and rt.kind not in _RETURNS_DELETED_OBJECT:
        details = {"name": route.name, "kind": rt.plural, "uid": (obj.get("metadata") or {}).get("uid", "")}
        if rt.group:
            details["group"] = rt.group
        obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
    return Answer(200, obj)


def _deletecollection(req: Request, route: Route) -> Answer:
    """Delete every matching object, each as a DELETE of it would (pods gracefully); the answer lists
    the objects as the deletes left them."""
    rt, ns = route.rt, route.namespace or ""
    grace, _ = _delete_options(req)
    flt = make_filter(_q(req.query, "labelSelector"), _q(req.query, "fieldSelector"), rt.kind)
    items, _ = req.emu.store.select(rt, ns, flt)
    deleted = []
    for item in items:
        try:
            deleted.append(req.emu.store.delete(rt, ns, item["metadata"]["name"], grace)[0])
        except errors.ApiError as err:
            if err.code != 404:  # gone meanwhile: as the apiserver, skip it
                raise
    meta = {"resourceVersion": str(req.emu.store.revision)}
    body = {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta}
    return Answer(200, {**body, "items": deleted})


def _watch(req: Request, route: Route) -> Answer:
    rt = route.rt
    rv = _q(req.query, "resourceVersion")
    if rv not in (None, "", "0") and not str(rv).isdigit():
        raise errors.bad_request(f"invalid resource version: {rv!r}")
    timeout = _q(req.query, "timeoutSeconds")
    wreq = watch.WatchRequest(
        rt=rt,
        namespace=route.namespace,
        matches=make_filter(_q(req.query, "labelSelector"), _q(req.query, "fieldSelector"), rt.kind),
        resource_version=rv,
        timeout_s=float(timeout) if timeout else None,
        bookmarks=_q(req.query, "allowWatchBookmarks") in ("true", "1"),
        delay_s=lambda: req.emu.faults.stale_delay(req.client, "watch", rt.plural),
    )
    emu = req.emu
    events = watch.stream(emu.store, wreq, req.alive, emu.faults.hold, emu.watch_max_s)
    if tables.wants_table(req.accept):
        events = _as_tables(rt, events)
    return Answer(200, events=events)


def _as_tables(rt: Any, events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for ev in events:
        obj = ev.get("object") or {}
        if ev.get("type") in ("ADDED", "MODIFIED", "DELETED"):
            rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
            ev = {"type": ev["type"], "object": tables.table(rt, [obj], rv)}
        yield ev


_VERBS: dict[str, Callable[[Request, Route], Answer]] = {
    "get": _get,
    "list": _list,
    "watch": _watch,
    "create": _create,
    "update": _update,
    "patch": _patch,
    "delete": _delete,
    "deletecollection": _deletecollection,
}
