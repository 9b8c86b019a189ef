"""Authentication of the Kubernetes API emulator: bearer tokens to users.

Role: turn the `Authorization: Bearer <token>` header into a user, as the apiserver's token
authenticators do. Two kinds of token exist:
- the admin token: user `kubernetes-admin` in group `system:masters` (what a cluster's admin kubeconfig
  carries; the authorizer lets that group do anything, as RBAC's superuser group);
- ServiceAccount tokens, issued the way the kubelet gets a projected token (TokenRequest): bound to the
  ServiceAccount's uid and, when issued for a pod, to that pod's name and uid. Like the apiserver's
  bound-token validator, a token stops authenticating when its ServiceAccount is gone or re-created,
  or when its pod is gone, replaced (another uid) or past its `deletionTimestamp`. The user is
  `system:serviceaccount:<ns>:<name>` in groups `system:serviceaccounts`,
  `system:serviceaccounts:<ns>` and `system:authenticated`.
A missing or unknown token is 401 `Unauthorized` (the apiserver with anonymous requests disabled);
`/healthz`, `/livez` and `/readyz` need none (1.32+ `AnonymousAuthConfigurableEndpoints`).

Must never: log a token or put one in an error, or authenticate a token it did not issue.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime

from sim.kube import errors
from sim.kube.resources import by_kind
from sim.kube.store import Store

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
ANONYMOUS_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


@dataclass(frozen=True)
class User:
    """An authenticated identity: the name and groups RBAC subjects match."""

    name: str
    groups: tuple[str, ...]

    @property
    def superuser(self) -> bool:
        return MASTERS in self.groups


ADMIN = User("kubernetes-admin", (MASTERS, AUTHENTICATED))


def service_account_user(namespace: str, name: str) -> User:
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED)
    return User(f"system:serviceaccount:{namespace}:{name}", groups)


@dataclass(frozen=True)
class _Claim:
    """What a ServiceAccount token stands for (the claims of a bound projected token)."""

    namespace: str
    service_account: str
    sa_uid: str
    pod_name: str = ""
    pod_uid: str = ""


class Authenticator:
    """Token registry. `admin_token` authenticates as ADMIN; `issue()` makes ServiceAccount tokens."""

    def __init__(self, store: Store, admin_token: str) -> None:
        self.store = store
        self.admin_token = admin_token
        self._claims: dict[str, _Claim] = {}
        self._lock = threading.Lock()

    def issue(self, namespace: str, service_account: str, pod: str = "", pod_uid: str = "") -> str:
        """A token for `service_account` (bound to `pod`/`pod_uid` when given): the kubelet's
        TokenRequest. 404 NotFound when the ServiceAccount (or the bound pod) does not exist."""
        sa_meta = self.store.peek_meta(by_kind("ServiceAccount"), namespace, service_account)
        if sa_meta is None:
            raise errors.not_found("serviceaccounts", "", service_account)
        if pod:
            pod_meta = self.store.peek_meta(by_kind("Pod"), namespace, pod)
            if pod_meta is None or (pod_uid and pod_meta.get("uid") != pod_uid):
                raise errors.not_found("pods", "", pod)
            pod_uid = str(pod_meta.get("uid"))
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._claims[token] = _Claim(namespace, service_account, str(sa_meta.get("uid")), pod, pod_uid)
        return token

    def authenticate(self, path: str, authorization: str | None) -> User | None:
        """The user of a request; None for an anonymous health check; 401 otherwise."""
        scheme, _, value = (authorization or "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
        if not token:
            if path in ANONYMOUS_PATHS:
                return None
            raise errors.unauthorized()
        if secrets.compare_digest(token, self.admin_token):
            return ADMIN
        with self._lock:
            claim = self._claims.get(token)
        if claim is None or not self._valid(claim):
            raise errors.unauthorized()
        return service_account_user(claim.namespace, claim.service_account)

    def _valid(self, claim: _Claim) -> bool:
        sa = self.store.peek_meta(by_kind("ServiceAccount"), claim.namespace, claim.service_account)
        if sa is None or sa.get("uid") != claim.sa_uid:
            return False
        if not claim.pod_name:
            return True
        pod = self.store.peek_meta(by_kind("Pod"), claim.namespace, claim.pod_name)
        if pod is None or pod.get("uid") != claim.pod_uid:
            return False
        deleted_at = pod.get("deletionTimestamp")
        return not deleted_at or datetime.fromisoformat(str(deleted_at)) >= self.store.wall()
