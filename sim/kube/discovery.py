"""Discovery documents of the Kubernetes API emulator: /version, /api, /apis, /api/v1, /apis/<g>/<v>.

Role: the small, schema-valid documents the kubernetes client's discovery calls deserialize
(VersionInfo, V1APIVersions, V1APIGroupList, V1APIResourceList), built from the served resource table.

Must never: list a resource the emulator does not serve.
"""

from __future__ import annotations

from typing import Any

from sim.kube.resources import RESOURCES, ResourceType

_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _resource(rt: ResourceType) -> list[dict[str, Any]]:
    main = {
        "name": rt.plural,
        "singularName": rt.kind.lower(),
        "namespaced": True,
        "kind": rt.kind,
        "verbs": _VERBS,
    }
    if not rt.has_status:
        return [main]
    status = {
        "name": f"{rt.plural}/status",
        "singularName": "",
        "namespaced": True,
        "kind": rt.kind,
        "verbs": ["get", "patch", "update"],
    }
    return [main, status]


def document(path: str, port: int) -> dict[str, Any] | None:
    """The discovery document served at `path`, or None when the path is not a discovery path."""
    if path == "/version":
        return {
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0-kube-emulator",
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
    if path in ("/healthz", "/livez", "/readyz"):
        return {"status": "ok"}
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}],
        }
    groups = sorted({rt.group for rt in RESOURCES if rt.group})
    if path == "/apis":
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
            items = [r for rt in RESOURCES if rt.group == rt_group for r in _resource(rt)]
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}
    return None
