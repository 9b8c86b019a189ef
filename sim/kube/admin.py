"""Admin endpoint of the Kubernetes API emulator (JSON over HTTP, on its own port).

Role: the fault controls and the direct store access of `KubeEmulator`, for a test or a simulated
cluster that runs the emulator as a separate process (`python -m sim.kube --admin-port A`). Served on
its own listening socket so that API outages never reach it. Routes:

  GET    /healthz                       {"ok": true}
  GET    /state                         revision, compacted revision, outage, latency, injections
  POST   /outage      {"mode": "refuse"|"503"|"hang", "seconds": 2.5?}     DELETE /outage
  POST   /latency     {"ms": 200, "path_prefix": "/apis/coordination.k8s.io"?}  DELETE /latency
  POST   /inject      {"code": 409, "verb": "update"?, "path": "regex"?, "count": 1?}  DELETE /inject
  GET    /counters    {user agent: {verb: n}}                             DELETE /counters
  POST   /bookmarks   POST /compact   POST /watches/cut
  POST   /objects     {"object": {...}, "keep_status": false}  -> the created object
  GET    /objects/<kind>/<ns>/<name>
  PATCH  /objects/<kind>/<ns>/<name>           body: a merge patch
  PATCH  /objects/<kind>/<ns>/<name>/status    body: status fields to merge
  DELETE /objects/<kind>/<ns>/<name>?grace=N
  POST   /pods/<ns>/<name>/finalize            -> {"removed": bool}

Must never: be subject to the API server's faults or token, or bind outside loopback.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sim.kube import errors

if TYPE_CHECKING:
    from sim.kube.server import KubeEmulator

log = logging.getLogger(__name__)


class AdminHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small answers; no 40 ms delayed-ACK stalls on keep-alive
    timeout = 60

    @property
    def emu(self) -> KubeEmulator:
        return self.server.emu  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kube emulator admin %s", format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        try:
            body = json.loads(raw) if raw else {}
            code, answer = self._route(method, url.path.rstrip("/"), parse_qs(url.query), body)
        except errors.ApiError as err:
            code, answer = err.code, err.status()
        except (ValueError, KeyError, TypeError) as exc:
            log.info("kube emulator admin: bad request %s %s: %s", method, url.path, exc)
            code, answer = 400, {"error": "bad request", "detail": str(exc)}
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        emu = self.emu
        simple = {
            ("GET", "/healthz"): lambda: {"ok": True},
            ("GET", "/state"): lambda: {
                "revision": emu.revision,
                "compacted": emu.store.compacted,
                **emu.faults.describe(),
            },
            ("POST", "/outage"): lambda: emu.outage(str(body["mode"]), body.get("seconds")),
            ("DELETE", "/outage"): emu.clear_outage,
            ("POST", "/latency"): lambda: emu.set_latency(
                float(body["ms"]), str(body.get("path_prefix", ""))
            ),
            ("DELETE", "/latency"): emu.clear_latency,
            ("POST", "/inject"): lambda: emu.inject(
                int(body["code"]), body.get("verb"), str(body.get("path", ".*")), int(body.get("count", 1))
            ),
            ("DELETE", "/inject"): emu.clear_injections,
            ("GET", "/counters"): emu.counters,
            ("DELETE", "/counters"): emu.reset_counters,
            ("POST", "/bookmarks"): emu.send_bookmarks,
            ("POST", "/compact"): lambda: {"compacted": emu.compact()},
            ("POST", "/watches/cut"): emu.cut_watches,
            ("POST", "/objects"): lambda: emu.create(body["object"], bool(body.get("keep_status", False))),
        }
        fn = simple.get((method, path))
        if fn is not None:
            result = fn()
            return 200, {"ok": True} if result is None else result
        return self._object_route(method, path.strip("/").split("/"), query, body)

    def _object_route(
        self, method: str, segs: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        emu = self.emu
        if len(segs) == 4 and segs[0] == "pods" and segs[3] == "finalize" and method == "POST":
            return 200, {"removed": emu.finalize_pod(segs[1], segs[2])}
        if segs[0] != "objects" or len(segs) not in (4, 5):
            return 404, {"error": "not found", "detail": "/" + "/".join(segs)}
        kind, ns, name = segs[1], segs[2], segs[3]
        if len(segs) == 5 and segs[4] == "status" and method == "PATCH":
            return 200, emu.patch_status(kind, ns, name, body)
        if len(segs) == 4 and method == "GET":
            return 200, emu.get(kind, ns, name)
        if len(segs) == 4 and method == "PATCH":
            return 200, emu.patch(kind, ns, name, body)
        if len(segs) == 4 and method == "DELETE":
            grace = query.get("grace")
            obj, removed = emu.delete(kind, ns, name, int(grace[0]) if grace else None)
            return 200, {"object": obj, "removed": removed}
        return 405, {"error": "method not allowed", "detail": f"{method} /{'/'.join(segs)}"}
