"""The agent's HTTP API (Flask): probes, local state, cluster status, preStop, switchover, pause, metrics,
and the status page's routes (agent/status_page.py).

Role: the HTTP layer only. It validates requests, checks access (loopback for preStop, a bearer token
for the mutating operator routes), forwards cluster-wide requests from a non-leader to the leader, makes
a repeated preStop join the one in progress (agent/prestop_join.py), and turns every error into JSON
`{"error": ..., "detail": ...}` with a proper status code (DESIGN "Agent HTTP API"). The work itself is
done by an `AgentServices` object that the agent process supplies.

Must never: make `/health` or `/ready` depend on the API server or the leader (DESIGN I7, "Start and
termination order"; here they only report what the services say), answer 500 for bad input, log a
token, or call the network without a timeout.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlparse

import flask
import requests
from werkzeug.exceptions import HTTPException

from agent import status_page
from agent.fence import FenceRequest
from agent.fence import parse as parse_fence
from agent.handover import HandoverRequest
from agent.handover import parse as parse_handover
from agent.metrics import CONTENT_TYPE, AgentMetrics
from agent.prestop_join import PrestopJoin, PrestopRequest, Result
from coordinator.core import defaults

log = logging.getLogger(__name__)

FORWARD_HEADER = "X-Memgraph-HA-Forwarded-By"
STATUS_FORWARD_TIMEOUT_S = 2.0
SWITCHOVER_FORWARD_TIMEOUT_S = (2.0, 120.0)  # connect, read: the leader holds the call during the switchover
HANDOVER_FORWARD_MARGIN_S = 2.0  # a forwarded hand-over waits its budget and this
DEFAULT_PRESTOP_BUDGET_S = defaults.PRESTOP_BUDGET_S  # a preStop request that names no budget
MAX_PRESTOP_BUDGET_S = 86400.0
MAX_BODY_BYTES = 64 * 1024
# A pod name (DNS-1123 subdomain), as docs/openapi.yaml states it; matched with `re.search` like the
# document's JSON-Schema validators do, so the code accepts exactly what the document allows.
POD_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_POD_NAME_CHARS = 253
MAX_UID_CHARS = 128


class AgentServices(Protocol):
    """What the HTTP layer needs from the agent process.

    `health()` says whether the agent's loops ran recently; it must not depend on Memgraph or the API
    server. `ready()` says whether the local Memgraph answers and this pod is not a rogue MAIN; it must
    never fail because the API server or the leader is unreachable (I7). `prestop()` blocks up to
    `budget_s` and answers 200 `{"outcome", "safe_to_stop", "new_main", "detail"}` or 202/409/503
    `{"retry_after_s"}`; the API layer already makes concurrent calls join one run (see `PrestopJoin`).
    `switchover`, `pause` and `resume` are only called on the leader; `cluster_status` answers None when
    this agent turns out not to lead.
    """

    @property
    def pod_name(self) -> str: ...

    def health(self) -> tuple[bool, str]: ...

    def ready(self) -> tuple[bool, str]: ...

    def local_state(self) -> dict[str, Any]: ...

    def is_leader(self) -> bool: ...

    def leader_url(self) -> str | None: ...

    def cluster_status(self) -> dict[str, Any] | None: ...

    def prestop(self, request: PrestopRequest) -> Result: ...

    def switchover(self, to: str | None) -> Result: ...

    def pause(self) -> Result: ...

    def resume(self) -> Result: ...

    def purge(self, pod: str, archive: str) -> Result: ...

    def known_pods(self) -> set[str]: ...

    def fence(self, request: FenceRequest) -> Result: ...

    def handover(self, request: HandoverRequest) -> Result: ...

    def api_token(self) -> str | None: ...

    def fence_token(self) -> str | None: ...


class ApiError(Exception):
    """An error answer: HTTP status, a short slug and a human detail."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


def _is_loopback(addr: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((addr or "").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _json_body(required: bool) -> dict[str, Any]:
    raw = flask.request.get_data(cache=True)
    if not raw:  # absent; whitespace alone is a body, and not JSON (docs/openapi.yaml: optional body)
        if required:
            raise ApiError(400, "bad-request", "a JSON object body is required")
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad-json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ApiError(400, "bad-json", "body must be a JSON object")
    return doc


def _pod_name(value: Any, what: str) -> str:
    if (not isinstance(value, str) or len(value) > MAX_POD_NAME_CHARS
            or POD_NAME_PATTERN.search(value) is None):
        raise ApiError(400, "bad-request", f"{what} must be a pod name (DNS-1123, at most 253 characters)")
    return value


def _prestop_request(doc: dict[str, Any], own_pod: str) -> PrestopRequest:
    pod = _pod_name(doc.get("pod", own_pod), "pod")
    uid = doc.get("uid", "")
    if not isinstance(uid, str) or len(uid) > MAX_UID_CHARS:
        raise ApiError(400, "bad-request", f"uid must be a string of at most {MAX_UID_CHARS} characters")
    budget = doc.get("budget_s", DEFAULT_PRESTOP_BUDGET_S)
    number = isinstance(budget, int | float) and not isinstance(budget, bool)
    if not number or not 0 < budget <= MAX_PRESTOP_BUDGET_S:
        raise ApiError(400, "bad-request", "budget_s must be a number of seconds in (0, 86400]")
    if pod != own_pod:  # well formed, but another pod: this agent may not act for it (final for the hook)
        raise ApiError(403, "wrong-pod", f"this agent serves {own_pod}, not {pod}")
    return PrestopRequest(pod=pod, uid=uid, budget_s=float(budget))


def _reply(result: Result) -> flask.Response:
    status, doc = result
    return flask.make_response(flask.jsonify(doc), status)


def _error(status: int, error: str, detail: str) -> flask.Response:
    return _reply((status, {"error": error, "detail": detail}))


class _Routes:
    """Route handlers bound to one services object (kept as methods so each fits on a screen)."""

    def __init__(self, services: AgentServices, metrics: AgentMetrics, status_auth: bool = False) -> None:
        self.s, self.metrics, self.status_auth = services, metrics, status_auth
        self.join = PrestopJoin(services.prestop, self._count_prestop)

    def _count_prestop(self, result: Result) -> None:
        status, doc = result
        self.metrics.prestop(str(doc.get("outcome") or f"http-{status}"))

    def probe(self, check: Callable[[], tuple[bool, str]], name: str) -> flask.Response:
        try:
            ok, detail = check()
        except Exception as exc:
            log.exception("%s check raised; reporting not ok", name)
            ok, detail = False, f"{name} check raised {type(exc).__name__}"
        body = {"status": "ok" if ok else "failing", "pod": self.s.pod_name, "detail": detail}
        return _reply((200 if ok else 503, body))

    def exposition(self) -> flask.Response:
        return flask.Response(self.metrics.exposition(), content_type=CONTENT_TYPE)

    def local(self) -> flask.Response:
        self.authorize_status()
        return _reply((200, {"pod": self.s.pod_name, **self.s.local_state()}))

    def status(self) -> flask.Response:
        self.authorize_status()
        if self.s.is_leader():
            doc = self.s.cluster_status()
            if doc is None:
                raise ApiError(503, "not-leader", f"{self.s.pod_name} stopped leading; retry shortly")
            return _reply((200, {**doc, "answered_by": self.s.pod_name}))
        return self.forward("GET", "/api/v1/status", None, STATUS_FORWARD_TIMEOUT_S)

    def prestop(self) -> flask.Response:
        if not _is_loopback(flask.request.remote_addr):
            raise ApiError(403, "forbidden", "prestop is accepted from loopback only")
        req = _prestop_request(_json_body(required=False), self.s.pod_name)
        log.info("prestop requested pod=%s uid=%s budget_s=%.1f", req.pod, req.uid, req.budget_s)
        result, joined = self.join.call(req)
        outcome = result[1].get("outcome")
        log.info("prestop answered status=%s outcome=%s joined=%s", result[0], outcome, joined)
        return _reply(result)

    def switchover(self) -> flask.Response:
        self.authorize()
        doc = _json_body(required=False)
        to = doc.get("to")  # null or absent: the coordinator picks the target (docs/openapi.yaml)
        if to is not None:
            _pod_name(to, "'to'")
        if not self.s.is_leader():  # only the leader knows the pods: it checks `to` (a non-leader knows none)
            return self.forward("POST", "/api/v1/switchover", doc, SWITCHOVER_FORWARD_TIMEOUT_S)
        if to is not None and to not in self.s.known_pods():
            raise ApiError(404, "unknown-pod", f"{to} is not a pod of this cluster")
        log.info("switchover requested to=%s", to or "-")
        status, body = self.s.switchover(to)
        return _reply((status, {**body, "answered_by": self.s.pod_name}))

    def pause_or_resume(self, which: str) -> flask.Response:
        self.authorize()
        _json_body(required=False)
        if not self.s.is_leader():
            return self.forward("POST", f"/api/v1/{which}", {}, STATUS_FORWARD_TIMEOUT_S)
        log.info("%s requested", which)
        status, body = self.s.pause() if which == "pause" else self.s.resume()
        return _reply((status, {**body, "answered_by": self.s.pod_name}))

    def fence(self) -> flask.Response:
        """Fence or operator token, then the body (agent/fence.py decides; the leader calls it)."""
        self.authorize(also=self.s.fence_token())
        req = parse_fence(_json_body(required=True), lambda d: ApiError(400, "bad-request", d))
        return _reply(self.s.fence(req))

    def handover(self) -> flask.Response:
        """Fence or operator token; the terminating MAIN's agent asks the leader (agent/handover.py). A
        non-leader forwards it (its caller's idea of the leader may be a term old)."""
        self.authorize(also=self.s.fence_token())
        doc = _json_body(required=True)
        req = parse_handover(doc, lambda d: ApiError(400, "bad-request", d))
        if not self.s.is_leader():
            read_s = req.budget_s + HANDOVER_FORWARD_MARGIN_S
            return self.forward("POST", "/api/v1/handover", doc, (SWITCHOVER_FORWARD_TIMEOUT_S[0], read_s))
        status, body = self.s.handover(req)
        return _reply((status, {**body, "answered_by": self.s.pod_name}))

    def authorize_status(self) -> None:
        """HA_STATUS_AUTH=token: the read routes need the operator token too (a non-leader forwards the
        header with the status request; the leader checks it again)."""
        if self.status_auth:
            self.authorize()

    def purge(self) -> flask.Response:
        self.authorize()
        doc = _json_body(required=True)
        pod, archive = doc.get("pod"), doc.get("archive")
        if not isinstance(pod, str) or not isinstance(archive, str) or not pod or not archive:
            raise ApiError(400, "bad-request", "'pod' and 'archive' must be names")
        if "/" in archive or "," in archive or archive in (".", ".."):
            raise ApiError(400, "bad-request", "'archive' must be an archive's name, not a path")
        if not self.s.is_leader():
            return self.forward("POST", "/api/v1/diverged/purge", doc, STATUS_FORWARD_TIMEOUT_S)
        log.info("purge requested pod=%s archive=%s", pod, archive)
        status, body = self.s.purge(pod, archive)
        return _reply((status, {**body, "answered_by": self.s.pod_name}))

    def authorize(self, also: str | None = None) -> None:
        """No bearer credentials: 401 (RFC 6750). Credentials while no token is configured: 403 disabled.
        Wrong credentials: 401. `also`: one more token this route alone accepts (HA_FENCE_TOKEN)."""
        accepted = [t for t in (self.s.api_token(), also) if t]
        scheme, _, given = flask.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            note = "" if accepted else " (this agent has no API token configured: the routes are disabled)"
            raise ApiError(401, "unauthorized", f"'Authorization: Bearer <token>' header required{note}")
        if not accepted:
            raise ApiError(403, "disabled", "operator routes are disabled: no API token is configured")
        if not any(hmac.compare_digest(given.strip().encode(), t.encode()) for t in accepted):
            raise ApiError(401, "unauthorized", "the bearer token is not valid")

    def forward(self, method: str, path: str, body: dict[str, Any] | None, timeout: Any) -> flask.Response:
        """Ask the leader; add `via`. One hop only: a forwarded request is never forwarded again."""
        if flask.request.headers.get(FORWARD_HEADER):
            raise ApiError(503, "not-leader", f"{self.s.pod_name} does not lead (forwarded request)")
        url = self.s.leader_url()
        if not url:
            raise ApiError(503, "no-leader", "no leader is known right now; retry shortly")
        headers = {FORWARD_HEADER: self.s.pod_name}
        if "Authorization" in flask.request.headers:
            headers["Authorization"] = flask.request.headers["Authorization"]
        try:
            target = url.rstrip("/") + path
            resp = requests.request(method, target, json=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            log.warning("forward to leader failed url=%s error=%s", url, type(exc).__name__)
            raise ApiError(503, "leader-unreachable", f"{type(exc).__name__} calling the leader") from exc
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise ApiError(502, "bad-leader-answer", f"the leader answered {resp.status_code} without JSON")
        doc.setdefault("answered_by", urlparse(url).hostname or url)
        doc["via"] = self.s.pod_name
        return _reply((resp.status_code, doc))


def _install_error_handlers(app: flask.Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> flask.Response:
        resp = _error(exc.status, exc.error, exc.detail)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="memgraph-ha"'
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> flask.Response:
        resp = _error(exc.code or 500, (exc.name or "error").lower().replace(" ", "-"), exc.description or "")
        for key, value in exc.get_headers():
            if key.lower() != "content-type":
                resp.headers[key] = value  # e.g. Allow on a 405
        return resp

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> flask.Response:
        log.exception("unexpected error on %s %s", flask.request.method, flask.request.path)
        return _error(500, "internal", f"unexpected {type(exc).__name__}; see the agent log")


def create_app(
    services: AgentServices, metrics: AgentMetrics | None = None, status_auth: bool = False
) -> flask.Flask:
    """Build the Flask app for one agent. `metrics` defaults to a fresh AgentMetrics. `status_auth`
    (HA_STATUS_AUTH=token): the status and local routes ask for the API token too."""
    app = flask.Flask("memgraph_ha_agent", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    routes = _Routes(services, metrics or AgentMetrics(), status_auth)
    app.extensions["memgraph_ha_prestop_join"] = routes.join
    _install_error_handlers(app)
    add = app.add_url_rule
    add("/health", "health", lambda: routes.probe(services.health, "health"), methods=["GET"])
    add("/ready", "ready", lambda: routes.probe(services.ready, "ready"), methods=["GET"])
    add("/api/v1/local", "local", routes.local, methods=["GET"])
    add("/api/v1/status", "status", routes.status, methods=["GET"])
    add("/api/v1/prestop", "prestop", routes.prestop, methods=["POST"])
    add("/api/v1/switchover", "switchover", routes.switchover, methods=["POST"])
    add("/api/v1/pause", "pause", lambda: routes.pause_or_resume("pause"), methods=["POST"])
    add("/api/v1/resume", "resume", lambda: routes.pause_or_resume("resume"), methods=["POST"])
    add("/api/v1/diverged/purge", "purge", routes.purge, methods=["POST"])
    add("/api/v1/fence", "fence", routes.fence, methods=["POST"])
    add("/api/v1/handover", "handover", routes.handover, methods=["POST"])
    add("/metrics", "metrics", routes.exposition, methods=["GET"])
    status_page.install(app)  # GET /: the status page (agent/status_page.py)
    return app
