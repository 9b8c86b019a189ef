"""HTTP request handling of the Kubernetes API emulator: faults, auth, routing, verbs, watch streaming.

Role: one `ApiHandler` per connection (HTTP/1.1 keep-alive, as urllib3 uses it). Every request is
counted per `User-Agent` and verb, passes the fault gate (outage, latency, injected error), the bearer
token check, then is routed to the store: paths and verbs as the kubernetes 37.0.2 client sends them
(reference bolt-and-kube-emulation.md 3.2), errors as `Status` objects, watches as chunked JSON lines
(3.4: "HTTP 200, `Content-Type: application/json`, `Transfer-Encoding: chunked`. One JSON object per
line ... Flush after each line").

Must never: answer before it has read the request body (keep-alive would go out of step), leave a
request without an answer except on purpose (refuse/hang outages, cut watches), or log a token.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sim.kube import discovery, errors, resources, watch
from sim.kube.faults import MAX_HANG_S
from sim.kube.resources import ResourceType
from sim.kube.selectors import make_filter

if TYPE_CHECKING:
    from sim.kube.server import KubeEmulator

log = logging.getLogger(__name__)

_RETURNS_DELETED_OBJECT = {"Pod", "Service"}
_UNAUTHENTICATED_PATHS = {"/healthz", "/livez", "/readyz"}


class Route:
    """A parsed resource path: `/api/v1/namespaces/ns/pods/name/status` and friends."""

    def __init__(self, rt: ResourceType, namespace: str | None, name: str, sub: str) -> None:
        self.rt, self.namespace, self.name, self.sub = rt, namespace, name, sub


def parse_route(path: str) -> Route | None:
    segs = [s for s in path.split("/") if s]
    if len(segs) >= 2 and segs[0] == "api":
        group, version, rest = "", segs[1], segs[2:]
    elif len(segs) >= 3 and segs[0] == "apis":
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces" and len(rest) <= 5:
        rt = resources.lookup(group, version, rest[2])
        name, sub = (rest[3] if len(rest) > 3 else ""), (rest[4] if len(rest) > 4 else "")
        if rt is None or (sub and (sub != "status" or not rt.has_status)):
            return None
        return Route(rt, rest[1], name, sub)
    if len(rest) == 1:
        rt = resources.lookup(group, version, rest[0])
        return Route(rt, None, "", "") if rt else None
    return None


def kube_verb(method: str, route: Route | None, query: dict[str, list[str]]) -> str:
    """The apiserver's verb for a request (what RBAC and audit logs call it)."""
    if method == "GET":
        if route is None or route.name:
            return "get"
        return "watch" if query.get("watch", [""])[0] in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
        method, "delete" if route is None or route.name else "deletecollection"
    )


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small answers; no 40 ms delayed-ACK stalls on keep-alive
    timeout = 300  # idle keep-alive connections are closed after this long
    server_version = "kube-emulator"

    @property
    def emu(self) -> KubeEmulator:
        return self.server.emu  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kube emulator %s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # ---- the request pipeline --------------------------------------------------------------

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        route = parse_route(url.path)
        verb = kube_verb(method, route, query)
        faults = self.emu.faults
        faults.count(self.headers.get("User-Agent") or "unknown", verb)
        if not self._pass_outage():
            return
        delay = faults.delay_s(url.path)
        if delay > 0:
            time.sleep(delay)
        try:
            self._check_auth(url.path)
            injected = faults.take_injection(verb, url.path)
            if injected is not None:
                raise self._injected_error(injected, route, verb)
            self._dispatch(method, verb, url.path, route, query, raw)
        except errors.ApiError as err:
            self._send_json(err.code, err.status())
        except Exception as exc:  # a bug in the emulator must answer 500
            log.exception("kube emulator internal error on %s %s: %s", method, url.path, exc)
            self._send_json(500, errors.generic(500, f"emulator internal error: {exc}").status())

    def _pass_outage(self) -> bool:
        """Apply an outage; False when the request must get no answer (connection dropped)."""
        faults = self.emu.faults
        if faults.outage_mode() == "hang" and faults.hold(MAX_HANG_S):
            self._drop()
            return False
        mode = faults.outage_mode()
        if mode == "refuse":
            self._drop()
            return False
        if mode == "503":
            err = errors.generic(
                503, "the server is currently unable to handle the request (emulated outage)"
            )
            self._send_json(503, err.status())
            return False
        return True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            log.debug("kube emulator: dropping a connection that was already gone: %s", exc)

    def _check_auth(self, path: str) -> None:
        token = self.emu.token
        if token is None or path in _UNAUTHENTICATED_PATHS:
            return
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or value.strip() != token:
            raise errors.unauthorized()

    def _injected_error(self, code: int, route: Route | None, verb: str) -> errors.ApiError:
        if route is None:
            return errors.generic(code)
        rt = route.rt
        if code == 409:
            return errors.conflict(rt.plural, rt.group, route.name)
        if code == 403:
            return errors.forbidden(rt.plural, rt.group, route.name, verb, route.namespace or "")
        if code == 404:
            return errors.not_found(rt.plural, rt.group, route.name)
        return errors.generic(code)

    # ---- routing -----------------------------------------------------------------------------

    def _dispatch(
        self, method: str, verb: str, path: str, route: Route | None, query: dict[str, list[str]], raw: bytes
    ) -> None:
        if route is None:
            doc = discovery.document(path.rstrip("/") or "/", self.emu.port) if method == "GET" else None
            if doc is None:
                raise errors.path_not_found()
            self._send_json(200, doc)
            return
        if method != "GET" and "dryRun" in query:
            raise errors.bad_request("emulator: dryRun is not supported")
        if route.namespace is None and verb not in ("list", "watch"):
            raise errors.method_not_allowed(verb)
        handler = getattr(self, f"_verb_{verb}", None)
        if handler is None:
            raise errors.method_not_allowed(verb)
        handler(route, query, raw)

    def _body(self, raw: bytes) -> Any:
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise errors.bad_request(f"the body of the request could not be decoded as JSON: {exc}") from exc

    def _verb_get(self, route: Route, query: dict[str, list[str]], raw: bytes) -> None:
        self._send_json(200, self.emu.store.get(route.rt, route.namespace or "", route.name))

    def _verb_list(self, route: Route, query: dict[str, list[str]], raw: bytes) -> None:
        rt = route.rt
        flt = make_filter(_q(query, "labelSelector"), _q(query, "fieldSelector"), rt.kind)
        items, rv = self.emu.store.select(rt, route.namespace, flt)
        for item in items:  # the apiserver strips kind/apiVersion from list items
            item.pop("kind", None)
            item.pop("apiVersion", None)
        self._send_json(
            200,
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(rv)},
                "items": items,
            },
        )

    def _verb_create(self, route: Route, query: dict[str, list[str]], raw: bytes) -> None:
        body = self._body(raw)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._send_json(201, self.emu.store.create(route.rt, route.namespace or "", body))

    def _verb_update(self, route: Route, query: dict[str, list[str]], raw: bytes) -> None:
        body = self._body(raw)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj, created = self.emu.store.replace(
            route.rt, route.namespace or "", route.name, body, route.sub == "status"
        )
        self._send_json(201 if created else 200, obj)

    def _verb_patch(self, route: Route, query: dict[str, list[str]], raw: bytes) -> None:
        ctype = self.headers.get("Content-Type") or ""
        obj = self.emu.store.patch(
            route.rt, route.namespace or "", route.name, ctype, self._body(raw), route.sub == "status"
        )
        self._send_json(200, obj)

    def _verb_delete(self, route: Route, query: dict[str, list[str]], raw: bytes) -> None:
        opts = self._body(raw) or {}
        grace_q = _q(query, "gracePeriodSeconds")
        grace = opts.get("gracePeriodSeconds") if isinstance(opts, dict) else None
        if grace_q is not None:
            grace = int(grace_q)
        pre = opts.get("preconditions") if isinstance(opts, dict) else None
        rt = route.rt
        obj, removed = self.emu.store.delete(rt, route.namespace or "", route.name, grace, pre)
        if removed and rt.kind not in _RETURNS_DELETED_OBJECT:
            meta = obj.get("metadata", {})
            details = {"name": route.name, "kind": rt.plural, "uid": meta.get("uid", "")}
            if rt.group:
                details["group"] = rt.group
            obj = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }
        self._send_json(200, obj)

    def _verb_watch(self, route: Route, query: dict[str, list[str]], raw: bytes) -> None:
        rt = route.rt
        rv = _q(query, "resourceVersion")
        if rv not in (None, "", "0") and not str(rv).isdigit():
            raise errors.bad_request(f"invalid resource version: {rv!r}")
        timeout = _q(query, "timeoutSeconds")
        req = watch.WatchRequest(
            rt=rt,
            namespace=route.namespace,
            matches=make_filter(_q(query, "labelSelector"), _q(query, "fieldSelector"), rt.kind),
            resource_version=rv,
            timeout_s=float(timeout) if timeout else None,
            bookmarks=_q(query, "allowWatchBookmarks") in ("true", "1"),
        )
        self._stream(
            watch.stream(self.emu.store, req, self._client_alive, self.emu.faults.hold, self.emu.watch_max_s)
        )

    # ---- output ------------------------------------------------------------------------------

    def _stream(self, events: Any) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for event in events:
                data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except watch.StreamCut:
            self._drop()
        except OSError as exc:
            log.debug("kube emulator: watch client went away: %s", exc)
            self.close_connection = True

    def _client_alive(self) -> bool:
        """False once the client closed its end (a watch client sends nothing after the request)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return True
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except (OSError, ValueError):
            return False

    def _send_json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:
            log.debug("kube emulator: client went away before the answer: %s", exc)
            self.close_connection = True


def _q(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None
