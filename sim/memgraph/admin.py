"""Tiny JSON admin server of the emulator: test controls (never used by agent/ or coordinator/).

Role: `GET /state`; `POST /cut {"peer": "host:port"|"host"}`, `POST /heal {"peer"?}`,
`POST /delay {"ms": N}`, `POST /isolate`, `POST /unisolate`, `POST /busy {"seconds": S, "workers"?: N}`
(N Bolt workers, default all, run a query of S seconds), `POST /commit-fault {"step", "action",
"times"?}` (crash or stop the process at a step of the next commit, `controls.py`; an empty body clears
it). Listens on the instance's --host only (stdlib http.server); answers JSON, errors as
`{"error": ...}` with 400/404.

Must never: listen on anything but the configured loopback host, or expose data beyond `state`.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sim.memgraph.instance import Instance

log = logging.getLogger(__name__)


class _UnknownAction(Exception):
    """POST to a path the admin server does not serve (404)."""


class _Handler(BaseHTTPRequestHandler):
    server: AdminServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("admin: " + format, *args)

    def _reply(self, code: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/state":
            self._reply(200, self.server.instance.state())
        else:
            self._reply(404, {"error": "not found", "detail": self.path})

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            self._reply(200, self._act(self.path, body))
        except _UnknownAction as exc:
            self._reply(404, {"error": "not found", "detail": str(exc)})
        except (KeyError, ValueError, TypeError) as exc:
            self._reply(400, {"error": "bad request", "detail": str(exc)})

    def _act(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        inst = self.server.instance
        if path == "/cut":
            inst.cut(str(body["peer"]))
        elif path == "/heal":
            inst.heal(str(body["peer"]) if body.get("peer") else None)
        elif path == "/delay":
            inst.delay(int(body["ms"]))
        elif path == "/isolate":
            inst.isolate(True)
        elif path == "/unisolate":
            inst.isolate(False)
        elif path == "/busy":
            workers = body.get("workers")
            inst.busy(float(body["seconds"]), None if workers is None else int(workers))
        elif path == "/commit-fault":
            if body:
                inst.commit_faults.arm(str(body["step"]), str(body["action"]), int(body.get("times", 1)))
            else:
                inst.commit_faults.clear()
        else:
            raise _UnknownAction(path)
        return {"ok": True, "faults": inst.faults.as_dict(), "commit_fault": inst.commit_faults.as_dict()}


class AdminServer(ThreadingHTTPServer):
    """HTTP server bound to (host, port), serving one Instance."""

    daemon_threads = True

    def __init__(self, host: str, port: int, instance: Instance) -> None:
        self.instance = instance
        super().__init__((host, port), _Handler)
        self.port = int(self.server_address[1])
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="admin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
