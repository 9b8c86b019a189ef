"""HTTP request handling of the Kubernetes API emulator: faults, authentication, authorization, output.

Role: one `ApiHandler` per connection (HTTP/1.1 keep-alive, as urllib3 and client-go use it). Every
request is counted per `User-Agent` and verb, passes the fault gate (outage, latency), is authenticated
(`auth.py`: bearer token -> user, 401 otherwise) and authorized (`rbac.py`: 403 with the apiserver's
Status, recorded as a denial) before an injected error or the verb (`verbs.py`) runs, in the
apiserver's filter order; every answered mutating request goes into the audit log (`audit.py`);
answers are JSON (`Status` objects for errors, with `Warning` headers for dropped fields), watches
are chunked JSON lines (reference bolt-and-kube-emulation.md 3.4: "HTTP 200, `Content-Type:
application/json`, `Transfer-Encoding: chunked`. One JSON object per line ... Flush after each line").

Must never: answer before it has read the request body (keep-alive would go out of step), leave a
request without an answer except on purpose (refuse/hang outages, cut watches), or log a token.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import ssl
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sim.kube import audit, errors, rbac, verbs, watch
from sim.kube.auth import User
from sim.kube.faults import MAX_HANG_S
from sim.kube.requestinfo import RequestInfo, request_info, route_of

if TYPE_CHECKING:
    from sim.kube.server import KubeEmulator

log = logging.getLogger(__name__)


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
        received = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        info = request_info(method, url.path, query)
        faults = self.emu.faults
        faults.count(self.headers.get("User-Agent") or "unknown", info.verb)
        if not self._pass_outage():
            return
        delay = faults.delay_s(url.path)
        if delay > 0:
            time.sleep(delay)
        user: User | None = None

        def record(code: int, body: dict[str, Any] | None = None) -> None:
            self._audit(received, info, user, code, body, raw)

        try:
            user = self.emu.authn.authenticate(url.path, self.headers.get("Authorization"))
            if user is not None:
                self.emu.count_identity(user.name, self.headers.get("User-Agent") or "unknown")
            self._authorize(user, info)
            injected = faults.take_injection(info.verb, url.path)
            if injected is not None:
                raise self._injected_error(injected, user, info)
            answer = verbs.serve(
                verbs.Request(
                    emu=self.emu,
                    method=method,
                    info=info,
                    route=route_of(info),
                    query=query,
                    raw=raw,
                    content_type=self.headers.get("Content-Type") or "",
                    accept=self.headers.get("Accept") or "",
                    authorize=lambda asked: self._authorize(user, asked),
                    alive=self._client_alive,
                    client=str(self.client_address[0]),
                )
            )
        except errors.ApiError as err:
            record(err.code)
            self._send_json(err.code, err.status())
            return
        except Exception as exc:  # a bug in the emulator must answer 500
            log.exception("kube emulator internal error on %s %s: %s", method, url.path, exc)
            record(500)
            self._send_json(500, errors.generic(500, f"emulator internal error: {exc}").status())
            return
        record(answer.code, answer.body)
        if answer.events is not None:
            self._stream(answer.events)
        else:
            body = answer.raw or json.dumps(answer.body, separators=(",", ":")).encode()
            self._send(answer.code, body, answer.content_type, answer.warnings)

    def _audit(self, received: float, info: RequestInfo, user: User | None, code: int,
               body: dict[str, Any] | None, raw: bytes) -> None:
        """The audit record of a mutating request (sim.kube.audit); other requests are not recorded."""
        if not info.resource_request or info.verb not in audit.MUTATING_VERBS:
            return
        ok = 200 <= code < 300
        self.emu.audit.add(audit.AuditRecord(
            received=received, completed=time.monotonic(), source_ip=str(self.client_address[0]),
            user=user.name if user is not None else "", user_agent=self.headers.get("User-Agent") or "",
            verb=info.verb, resource=info.resource, namespace=info.namespace, name=info.name,
            subresource=info.subresource, code=code,
            holder=audit.lease_holder(body) if ok and info.resource == "leases" else None,
            body=audit.kept_body(info.resource, info.verb, raw)))

    def _authorize(self, user: User | None, info: RequestInfo) -> None:
        if user is None:
            return  # an anonymous health check (auth.ANONYMOUS_PATHS)
        allowed, reason = self.emu.authz.authorize(user, info)
        if not allowed:
            err = rbac.forbidden(user, info, reason)
            self.emu.record_denial(user.name, info, err.message)
            raise err

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

    @staticmethod
    def _injected_error(code: int, user: User | None, info: RequestInfo) -> errors.ApiError:
        if not info.resource_request:
            return errors.generic(code)
        if code == 409:
            return errors.conflict(info.resource, info.group, info.name)
        if code == 403:
            return rbac.forbidden(user, info)
        if code == 404:
            return errors.not_found(info.resource, info.group, info.name)
        return errors.generic(code)

    # ---- output ------------------------------------------------------------------------------

    def _stream(self, events: Iterator[dict[str, Any]]) -> None:
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
        except errors.ApiError as err:  # raised before the first event (bad selector): the stream ends
            log.info("kube emulator: watch ended with %s", err)
            self.close_connection = True
        except OSError as exc:
            log.debug("kube emulator: watch client went away: %s", exc)
            self.close_connection = True

    def _client_alive(self) -> bool:
        """False once the client closed its end (a watch client sends nothing after the request). The
        raw socket is peeked (under TLS too): end of stream, or a TLS alert record (close_notify, type
        21) first, means the client is gone."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return True
            head = socket.socket.recv(self.connection, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            return head != b"" and not (isinstance(self.connection, ssl.SSLSocket) and head == b"\x15")
        except (OSError, ValueError):
            return False

    def _send_json(self, code: int, body: dict[str, Any]) -> None:
        self._send(code, json.dumps(body, separators=(",", ":")).encode(), "application/json", [])

    def _send(self, code: int, data: bytes, content_type: str, warnings: list[str]) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for w in warnings:  # RFC 7234 warning, as the apiserver sends it: 299 - "<text>"
                self.send_header("Warning", "299 - " + json.dumps(w))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:
            log.debug("kube emulator: client went away before the answer: %s", exc)
            self.close_connection = True
