"""Authorization of the Kubernetes API emulator: RBAC over the stored Roles and RoleBindings.

Role: decide whether a user may make a request, as the apiserver's RBAC authorizer does
(`plugin/pkg/auth/authorizer/rbac/rbac.go`, rule matching from `pkg/apis/rbac/v1/evaluation_helpers.go`):
- `system:masters` may do anything (the superuser group);
- a resource request in a namespace is allowed when a RoleBinding of that namespace has a subject that
  applies to the user (ServiceAccount by namespace and name, the binding's namespace when the subject
  names none; User by name; Group by membership) and a rule of the Role it references matches: verbs
  (`*` or the verb), apiGroups (`*` or the group), resources (`*`, `<resource>`, `<resource>/<sub>`
  or `*/<sub>`; `pods` does not cover `pods/status`), resourceNames (empty, or the request's name: a
  create or a plain list never matches a rule with resourceNames);
- a binding that references a missing Role, or a ClusterRole (none are served), grants nothing and its
  error is the denial's reason (`RBAC: role.rbac.authorization.k8s.io "x" not found`);
- cluster-scope resource requests are denied (no ClusterRoleBindings are served);
- non-resource requests: every authenticated user may GET the discovery, OpenAPI, version and health
  paths (the default `system:discovery` and `system:public-info-viewer` ClusterRoles); nothing else.
`forbidden()` builds the 403 Status with the apiserver's message (`handlers/responsewriters/errors.go`).

Must never: allow a request because something could not be read (errors only deny), or do I/O beyond
reading the store.
"""

from __future__ import annotations

import threading
from typing import Any

from sim.kube import errors
from sim.kube.auth import User
from sim.kube.requestinfo import RequestInfo
from sim.kube.resources import RBAC_GROUP, by_kind
from sim.kube.store import Store

# nonResourceURLs of the default system:discovery and system:public-info-viewer ClusterRoles (verb get)
_DISCOVERY_URLS = (
    "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
    "/version", "/version/",
)  # fmt: skip

Rule = dict[str, Any]


def _non_resource_allowed(info: RequestInfo) -> bool:
    if info.verb != "get":
        return False
    return any(
        info.path == url or (url.endswith("*") and info.path.startswith(url[:-1])) for url in _DISCOVERY_URLS
    )


def _resource_matches(rule_resources: list[str], combined: str, subresource: str) -> bool:
    for r in rule_resources:
        if r in ("*", combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def rule_allows(rule: Rule, info: RequestInfo) -> bool:
    """One PolicyRule against one request (evaluation_helpers.go RuleAllows)."""
    verbs = rule.get("verbs") or []
    groups = rule.get("apiGroups") or []
    if "*" not in verbs and info.verb not in verbs:
        return False
    if "*" not in groups and info.group not in groups:
        return False
    combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    if not _resource_matches(rule.get("resources") or [], combined, info.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or info.name in names


def _subject_applies(subject: dict[str, Any], user: User, binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return bool(ns) and user.name == f"system:serviceaccount:{ns}:{name}"
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    return False


class Authorizer:
    """RBAC decisions; the rules a user holds in a namespace are cached until a Role or RoleBinding
    is written (the store's per-kind revision)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._roles = by_kind(f"{RBAC_GROUP}/roles")
        self._bindings = by_kind(f"{RBAC_GROUP}/rolebindings")
        self._cache: dict[tuple[str, str], tuple[list[Rule], list[str]]] = {}
        self._cache_rev = (-1, -1)
        self._lock = threading.Lock()

    def authorize(self, user: User, info: RequestInfo) -> tuple[bool, str]:
        """(allowed, reason); the reason is empty or `RBAC: <errors met while evaluating>`."""
        if user.superuser:
            return True, ""
        if not info.resource_request:
            return _non_resource_allowed(info), ""
        if not info.namespace:
            return False, ""
        rules, errs = self._rules_for(user, info.namespace)
        if any(rule_allows(r, info) for r in rules):
            return True, ""
        if not errs:
            return False, ""
        return False, "RBAC: " + (errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")

    def _rules_for(self, user: User, namespace: str) -> tuple[list[Rule], list[str]]:
        rev = (self.store.kind_revision(self._roles), self.store.kind_revision(self._bindings))
        with self._lock:
            if rev != self._cache_rev:
                self._cache, self._cache_rev = {}, rev
            cached = self._cache.get((user.name, namespace))
        if cached is not None:
            return cached
        rules: list[Rule] = []
        errs: list[str] = []
        bindings, _ = self.store.select(self._bindings, namespace, lambda o: o is not None)
        for b in bindings:
            if not any(_subject_applies(s, user, namespace) for s in b.get("subjects") or []):
                continue
            ref = b.get("roleRef") or {}
            if ref.get("kind") != "Role":
                errs.append(f'clusterrole.{RBAC_GROUP} "{ref.get("name")}" not found')
                continue
            try:
                role = self.store.get(self._roles, namespace, str(ref.get("name")))
            except errors.ApiError:
                errs.append(f'role.{RBAC_GROUP} "{ref.get("name")}" not found')
                continue
            rules.extend(r for r in role.get("rules") or [] if isinstance(r, dict))
        with self._lock:
            if rev == self._cache_rev:
                self._cache[(user.name, namespace)] = (rules, errs)
        return rules, errs


def forbidden(user: User | None, info: RequestInfo, reason: str = "") -> errors.ApiError:
    """The 403 the apiserver sends when authorization denies `info`."""
    username = user.name if user is not None else "system:anonymous"
    if not info.resource_request:
        err = f'User "{username}" cannot {info.verb} path "{info.path}"'
        return errors.ApiError(403, "Forbidden", f"forbidden: {err}" + (f": {reason}" if reason else ""), {})
    resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    where = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
    err = f'User "{username}" cannot {info.verb} resource "{resource}" in API group "{info.group}" {where}'
    if reason:
        err = f"{err}: {reason}"
    return errors.forbidden(info.resource, info.group, info.name, err)
