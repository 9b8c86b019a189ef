"""Request attributes of the Kubernetes API emulator: what a request is, as RBAC and audit see it.

Role: parse a request's method, path and query into the apiserver's `RequestInfo`
(`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`): resource requests under `/api/<v>` and
`/apis/<g>/<v>` get a verb (get, list, watch, create, update, patch, delete, deletecollection), API
group, resource, subresource, namespace and name; a list or watch with `fieldSelector=metadata.name=x`
carries the name `x` (so a `resourceNames` rule can allow it); every other path is a non-resource
request whose verb is the lower-cased HTTP method. Parsing is by path alone, before anything is looked
up, so an unknown resource is authorized (403) before it is found missing (404). `Route` resolves a
resource request to a served `ResourceType`; `accepts` reads the media-type parameters of Accept.

Must never: do I/O, or depend on which resources are served to compute the attributes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sim.kube import resources
from sim.kube.resources import ResourceType

_METHOD_VERBS = {
    "POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"
}  # fmt: skip
_NAME_RE = re.compile(r"^\s*metadata\.name\s*==?\s*([^,!=\s]+)\s*$")


@dataclass(frozen=True)
class RequestInfo:
    """The apiserver's RequestInfo for one request."""

    path: str
    verb: str
    resource_request: bool = False
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    # True when `name` comes from the URL (not from a metadata.name field selector)
    name_in_path: bool = False


def _is_watch(query: dict[str, list[str]]) -> bool:
    values = query.get("watch") or [""]
    return values[0].lower() not in ("false", "0", "")


def request_info(method: str, path: str, query: dict[str, list[str]]) -> RequestInfo:
    segs = [s for s in path.split("/") if s]
    if len(segs) >= 2 and segs[0] == "api":
        group, version, parts = "", segs[1], segs[2:]
    elif len(segs) >= 3 and segs[0] == "apis":
        group, version, parts = segs[1], segs[2], segs[3:]
    else:
        parts = []
    if not parts:  # /api, /api/v1, /apis/<g>/<v>, /version, /openapi/... : non-resource
        return RequestInfo(path=path, verb=method.lower())
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2:  # /namespaces/<ns>/<resource>/...; /namespaces/<ns> is the namespace itself
            parts = parts[2:]
    verb = _METHOD_VERBS.get(method, "")
    resource = parts[0]
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    name_in_path = bool(name)
    if not name and verb == "get":
        verb = "watch" if _is_watch(query) else "list"
        selector = (query.get("fieldSelector") or [""])[0]
        match = _NAME_RE.match(selector) if "," not in selector else None
        if match:
            name = match.group(1)
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(path, verb, True, group, version, namespace, resource, subresource, name, name_in_path)


def accepts(accept: str, *params: str) -> bool:
    """True when one media range of the Accept header carries all `params` (`as=Table`, `v=v1`, ...)."""
    wanted = set(params)
    return any(wanted <= {p.strip() for p in part.split(";")[1:]} for part in accept.split(","))


@dataclass(frozen=True)
class Route:
    """A served resource request: its type, namespace (None: all namespaces), name and subresource."""

    rt: ResourceType
    namespace: str | None
    name: str
    sub: str


def route_of(info: RequestInfo) -> Route | None:
    """The served resource a request addresses, or None (404). Serves `<resource>` and `<resource>/status`
    for the kinds with a status subresource, namespaced, and cluster-wide list/watch."""
    if not info.resource_request:
        return None
    rt = resources.lookup(info.group, info.version, info.resource)
    if rt is None or (info.subresource and (info.subresource != "status" or not rt.has_status)):
        return None
    segs = [s for s in info.path.split("/") if s]
    if len(segs) > (2 if not info.group else 3) + 5:
        return None  # /namespaces/ns/pods/name/status/extra
    name = info.name if info.name_in_path else ""
    return Route(rt, info.namespace or None, name, info.subresource)
