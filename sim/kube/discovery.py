"""Discovery documents of the Kubernetes API emulator: /version, /api, /apis, /api/v1, /apis/<g>/<v>.

Role: the documents clients read to find resources, built from the served resource table:
- legacy discovery (what the kubernetes Python client deserializes: VersionInfo, V1APIVersions,
  V1APIGroupList, V1APIResourceList), each resource with `name`, `singularName`, `namespaced`, `kind`,
  `verbs`, and `shortNames` / `categories` where the real apiserver has them (`po`, `svc`, `cm`,
  `sts`, ...; `all` for pods, services and statefulsets), so `kubectl get sts,svc,cm` and
  `kubectl get all` resolve;
- aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`), which a 1.33 apiserver
  serves at /api and /apis when the client's Accept asks for it (kubectl 1.30+ does): one document
  with every group, version, resource and subresource, `freshness: Current`.

Must never: list a resource, verb or subresource the emulator does not serve.
"""

from __future__ import annotations

from typing import Any

from sim.kube.requestinfo import accepts
from sim.kube.resources import RESOURCES, STATUS_VERBS, VERBS, ResourceType

SERVER_VERSION = ("1", "33", "v1.33.0-kube-emulator")
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """True when the Accept header lists aggregated discovery v2 (v2beta1 alone is not served)."""
    return accepts(accept, "g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList")


def _groups() -> list[str]:
    return sorted({rt.group for rt in RESOURCES if rt.group})


def _names(rt: ResourceType) -> dict[str, list[str]]:
    """`shortNames` and `categories` where the resource has them (the apiserver omits empty ones)."""
    names = {"shortNames": list(rt.short_names), "categories": list(rt.categories)}
    return {k: v for k, v in names.items() if v}


def _legacy_resource(rt: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": True,
        "kind": rt.kind,
        "verbs": list(VERBS),
        **_names(rt),
    }
    if not rt.has_status:
        return [main]
    status = {
        "name": f"{rt.plural}/status",
        "singularName": "",
        "namespaced": True,
        "kind": rt.kind,
        "verbs": list(STATUS_VERBS),
    }
    return [main, status]


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    res: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": kind,
        "scope": "Namespaced",
        "singularResource": rt.singular,
        "verbs": list(VERBS),
        **_names(rt),
    }
    if rt.has_status:
        res["subresources"] = [{"subresource": "status", "responseKind": kind, "verbs": list(STATUS_VERBS)}]
    return res


def _aggregated(groups: list[str]) -> dict[str, Any]:
    items = []
    for g in groups:
        meta: dict[str, Any] = {"name": g, "creationTimestamp": None} if g else {"creationTimestamp": None}
        resources = [_aggregated_resource(rt) for rt in RESOURCES if rt.group == g]
        version = {"version": "v1", "resources": resources, "freshness": "Current"}
        items.append({"metadata": meta, "versions": [version]})
    kind = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2"}
    return {**kind, "metadata": {}, "items": items}


def version_info() -> dict[str, Any]:
    major, minor, git = SERVER_VERSION
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def document(path: str, port: int, aggregated: bool = False) -> dict[str, Any] | None:
    """The discovery document served at `path`, or None when the path is not a discovery path.
    `aggregated`: the client asked for APIGroupDiscoveryList (only /api and /apis have one)."""
    if path == "/version":
        return version_info()
    if path in ("/healthz", "/livez", "/readyz"):
        return {"status": "ok"}
    if path == "/api":
        if aggregated:
            return _aggregated([""])
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}],
        }
    groups = _groups()
    if path == "/apis":
        if aggregated:
            return _aggregated(groups)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                    "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
                }
                for g in groups
            ],
        }
    for rt_group in ["", *groups]:
        gv = f"{rt_group}/v1" if rt_group else "v1"
        if path == ("/api/v1" if not rt_group else f"/apis/{gv}"):
            items = [r for rt in RESOURCES if rt.group == rt_group for r in _legacy_resource(rt)]
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}
    return None
