"""The Kubernetes API emulator as an in-process object: `KubeEmulator`.

Role: own the store, the fault state, the authenticator (the admin token and the ServiceAccount tokens
it issues), the RBAC authorizer, the log of denied requests and the audit log of mutating ones
(`audit.py`), the listening socket (closed and re-opened for `refuse` outages), the admin endpoint (its
own port, so outages never reach it), a ticker that ends grace periods and outage windows, and the
direct Python API the tests and the simulated cluster use (`create`, `get`, `list`, `patch`,
`patch_status`, `delete`, `finalize_pod` to play the kubelet, `issue_token` to play its TokenRequest,
`kubeconfig` for an identity).

Must never: bind outside 127.0.0.0/8 and 198.18.0.0/15 (the namespaced bed's bridge), leave a thread
or socket behind after `stop()`, or import the kubernetes client except in `api_client()` (the server
itself is standard library only).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import socket
import ssl
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sim.kube import patch as patches
from sim.kube.admin import AdminHandler
from sim.kube.audit import AuditLog, AuditRecord
from sim.kube.auth import Authenticator
from sim.kube.faults import Faults
from sim.kube.handler import ApiHandler
from sim.kube.rbac import Authorizer
from sim.kube.requestinfo import RequestInfo
from sim.kube.resources import by_kind
from sim.kube.selectors import make_filter
from sim.kube.store import Obj, Store
from sim.kube.tls import credentials
from sim.kube.watch import DEFAULT_MAX_WATCH_S
from sim.proc import check_sim_address

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    """Threading HTTP server that knows its emulator and tracks open connections."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self, addr: tuple[str, int], handler: type, emu: KubeEmulator, tls: ssl.SSLContext | None = None
    ) -> None:
        self.emu = emu
        self.tls = tls
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:  # the handshake runs on the first read, in the connection's thread
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # ssl.SSLError too: a client that failed its handshake or went away
            log.debug("kube emulator: connection from %s ended: %s", client_address, exc)
        else:
            log.error("kube emulator: error on a connection from %s: %r", client_address, exc)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError as exc:
                log.debug("kube emulator: connection already closed: %s", exc)


class KubeEmulator:
    """A Kubernetes API server subset on a loopback port. Use as a context manager or start()/stop().

    `token` is the admin token (user `kubernetes-admin`, group `system:masters`); a random one when
    None. `api_client()` and `kubeconfig()` use it unless given another token."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        admin_port: int | None = None,
        history_size: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        watch_max_s: float = DEFAULT_MAX_WATCH_S,
        tick_s: float = 0.02,
    ) -> None:
        self.host = check_sim_address(host)
        self.port = port
        self.token = token or secrets.token_urlsafe(24)
        self.admin_port = admin_port
        self.watch_max_s = watch_max_s
        self.store = Store(history_size=history_size, clock=clock)
        self.faults = Faults(clock=clock)
        self.tls = credentials(self.host)  # the API is served over HTTPS; kubeconfigs carry the CA
        self.authn = Authenticator(self.store, self.token)
        self.authz = Authorizer(self.store)
        self._denials: deque[dict[str, str]] = deque(maxlen=1000)
        self.audit = AuditLog()  # every mutating request (sim.kube.audit)
        self._identities: Counter[tuple[str, str]] = Counter()  # (user, User-Agent) -> requests
        self._identities_lock = threading.Lock()
        self._tick_s = tick_s
        self._api: _Server | None = None
        self._api_thread: threading.Thread | None = None
        self._admin: _Server | None = None
        self._admin_thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._listener_lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> KubeEmulator:
        self._open_listener()
        if self.admin_port is not None:
            self._admin = _Server((self.host, self.admin_port), AdminHandler, self)
            self.admin_port = self._admin.server_address[1]
            self._admin_thread = self._serve(self._admin, "kube-emulator-admin")
        self._ticker = threading.Thread(target=self._tick_loop, name="kube-emulator-ticker", daemon=True)
        self._ticker.start()
        log.info("kube emulator listening url=%s admin_port=%s", self.url, self.admin_port)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.store.signal(stop=True)
        self.faults.clear_outage()
        self._close_listener()
        if self._admin is not None:
            self._admin.shutdown()
            self._admin.server_close()
            self._admin.drop_connections()
            if self._admin_thread:
                self._admin_thread.join(timeout=5)
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        log.info("kube emulator stopped url=%s", self.url)

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def admin_url(self) -> str | None:
        return None if self.admin_port is None else f"http://{self.host}:{self.admin_port}"

    @staticmethod
    def _serve(server: _Server, name: str) -> threading.Thread:
        t = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )
        t.start()
        return t

    def _open_listener(self) -> None:
        with self._listener_lock:
            if self._api is not None or self._stopping.is_set():
                return
            self._api = _Server((self.host, self.port), ApiHandler, self, self.tls.server_context())
            self.port = self._api.server_address[1]
            self._api_thread = self._serve(self._api, "kube-emulator-api")

    def _close_listener(self) -> None:
        with self._listener_lock:
            api, thread, self._api = self._api, self._api_thread, None
        if api is None:
            return
        api.shutdown()
        api.server_close()
        api.drop_connections()
        if thread:
            thread.join(timeout=5)

    def _tick_loop(self) -> None:
        while not self._stopping.wait(self._tick_s):
            try:
                self.store.reap()
                if self.faults.expire_outage() == "refuse":
                    self._open_listener()
            except Exception as exc:  # the ticker must survive a bad tick
                log.exception("kube emulator ticker error: %s", exc)

    # ---- configuration for clients ------------------------------------------------------------

    def kubeconfig(
        self, namespace: str = "default", token: str | None = None, token_file: str | Path | None = None
    ) -> dict[str, Any]:
        """A kubeconfig for this emulator: the admin's, or the identity of `token` or of the token in
        `token_file` (a ServiceAccount's, as a projected token file is read)."""
        ca = base64.b64encode(self.tls.ca_pem).decode()
        cluster = {"server": self.url, "certificate-authority-data": ca}
        user = {"tokenFile": str(token_file)} if token_file else {"token": token or self.token}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-emulator", "cluster": cluster}],
            "users": [{"name": "kube-emulator", "user": user}],
            "contexts": [
                {
                    "name": "kube-emulator",
                    "context": {"cluster": "kube-emulator", "user": "kube-emulator", "namespace": namespace},
                }
            ],
            "current-context": "kube-emulator",
        }

    def write_kubeconfig(
        self,
        path: str | Path,
        namespace: str = "default",
        token: str | None = None,
        token_file: str | Path | None = None,
    ) -> Path:
        """Write a kubeconfig (JSON, which is YAML) that `load_kube_config` and kubectl accept; mode 0600
        (it may hold a token)."""
        p = Path(path)
        p.touch(mode=0o600)
        p.write_text(json.dumps(self.kubeconfig(namespace, token, token_file), indent=2) + "\n")
        return p

    def api_client(
        self, user_agent: str | None = None, retries: int | None = None, token: str | None = None
    ) -> Any:
        """A `kubernetes.client.ApiClient` for this emulator, as the admin or as `token`'s identity
        (`retries`: urllib3 retries, None = the client's default)."""
        from kubernetes import client  # imported here: the server itself needs no client library

        cfg = client.Configuration(host=self.url)
        cfg.ssl_ca_cert = str(self.tls.ca_file)
        if retries is not None:
            cfg.retries = retries
        cfg.api_key = {"BearerToken": f"Bearer {token or self.token}"}
        api = client.ApiClient(cfg)
        if user_agent:
            api.user_agent = user_agent
        return api

    # ---- identities (the kubelet's TokenRequest) and authorization results ----------------------

    def issue_token(self, namespace: str, service_account: str, pod: str = "", pod_uid: str = "") -> str:
        """A ServiceAccount token, bound to `pod` (and its uid) when given, as a projected token is."""
        return self.authn.issue(namespace, service_account, pod, pod_uid)

    def record_denial(self, user: str, info: RequestInfo, message: str) -> None:
        entry = {
            "user": user,
            "verb": info.verb,
            "group": info.group,
            "resource": f"{info.resource}/{info.subresource}" if info.subresource else info.resource,
            "namespace": info.namespace,
            "name": info.name,
            "path": info.path,
            "message": message,
        }
        self._denials.append(entry)
        log.info(
            "kube emulator: forbidden user=%s verb=%s resource=%s namespace=%s name=%s",
            user, info.verb, entry["resource"], info.namespace, info.name,
        )  # fmt: skip

    def count_identity(self, user: str, user_agent: str) -> None:
        with self._identities_lock:
            self._identities[(user, user_agent)] += 1

    def identities(self) -> dict[tuple[str, str], int]:
        """Authenticated requests per (user, User-Agent): who the clients really were."""
        with self._identities_lock:
            return dict(self._identities)

    def audit_records(self) -> list[AuditRecord]:
        """The audit log of mutating requests (sim.kube.audit), oldest first."""
        return self.audit.records()

    def denials(self, user: str | None = None) -> list[dict[str, str]]:
        """Requests RBAC denied (the last 1000), oldest first; only `user`'s when given."""
        return [d for d in list(self._denials) if user is None or d["user"] == user]

    # ---- direct store access (tests, the simulated cluster) ------------------------------------

    @property
    def revision(self) -> int:
        return self.store.revision

    def create(self, obj: Obj, keep_status: bool = False) -> Obj:
        """Create `obj` (its `kind`, `apiVersion` and `metadata.namespace`, default "default")."""
        rt = _rt_of(obj)
        return self.store.create(
            rt, (obj.get("metadata") or {}).get("namespace") or "default", obj, keep_status
        )

    def get(self, kind: str, ns: str, name: str) -> Obj:
        return self.store.get(by_kind(kind), ns, name)

    def list(
        self,
        kind: str,
        ns: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        rt = by_kind(kind)
        return self.store.select(rt, ns, make_filter(label_selector, field_selector, rt.kind))[0]

    def patch(self, kind: str, ns: str, name: str, merge_patch: Obj) -> Obj:
        return self.store.patch(by_kind(kind), ns, name, patches.MERGE_PATCH, merge_patch)

    def patch_status(self, kind: str, ns: str, name: str, status: Obj) -> Obj:
        """Merge `status` into the object's status through the status subresource (the kubelet's way)."""
        return self.store.patch(by_kind(kind), ns, name, patches.MERGE_PATCH, {"status": status}, status=True)

    def delete(self, kind: str, ns: str, name: str, grace: int | None = None) -> tuple[Obj, bool]:
        return self.store.delete(by_kind(kind), ns, name, grace)

    def finalize_pod(self, ns: str, name: str) -> bool:
        """Play the kubelet once the pod's containers stopped: remove the pod. True if it is gone."""
        return self.store.finalize_pod(by_kind("Pod"), ns, name)

    def compact(self) -> int:
        return self.store.compact()

    def send_bookmarks(self) -> None:
        self.store.signal(bookmarks=True)

    def cut_watches(self) -> None:
        """Break every open watch stream (the client sees the connection end without a last chunk)."""
        self.store.signal(cut=True)

    # ---- faults --------------------------------------------------------------------------------

    def outage(self, mode: str, seconds: float | None = None) -> None:
        """Start an outage (`refuse`, `503` or `hang`) for `seconds` or until `clear_outage()`."""
        self.faults.set_outage(mode, seconds)
        if mode in ("refuse", "503"):
            self.cut_watches()
        if mode == "refuse":
            self._close_listener()

    def clear_outage(self) -> None:
        if self.faults.clear_outage() == "refuse":
            self._open_listener()

    def set_latency(self, ms: float, path_prefix: str = "") -> None:
        self.faults.set_latency(ms, path_prefix)

    def clear_latency(self) -> None:
        self.faults.clear_latency()

    def set_stale_view(self, client: str, delay_s: float, resources: tuple[str, ...] = ("pods",),
                       verbs: tuple[str, ...] = ("list", "watch")) -> None:
        """Requests from source address `client` see `resources` `delay_s` late (sim.kube.faults)."""
        self.faults.set_stale_view(client, delay_s, resources, verbs)

    def clear_stale_view(self, client: str | None = None) -> None:
        self.faults.clear_stale_view(client)

    def inject(self, code: int, verb: str | None = None, path_regex: str = ".*", count: int = 1) -> None:
        self.faults.inject(code, verb, path_regex, count)

    def clear_injections(self) -> None:
        self.faults.clear_injections()

    def counters(self) -> dict[str, dict[str, int]]:
        return self.faults.counters()

    def reset_counters(self) -> None:
        self.faults.reset_counters()


def _rt_of(obj: Obj) -> Any:
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    rt = by_kind(f"{group}/{by_kind(kind).plural}" if group else kind)
    return rt
