"""OpenAPI v3 documents of the Kubernetes API emulator: /openapi/v3 and /openapi/v3/<api|apis/g>/<v>.

Role: the documents kubectl reads before `apply`: it looks for a PATCH operation of the object's
group-version-kind (`x-kubernetes-group-version-kind`) that takes the `fieldValidation` query parameter
(then it sends `fieldValidation=Strict` and leaves validation to the server) and accepts
`application/strategic-merge-patch+json`, and it computes apply's three-way patch from the kind's
schema in `components.schemas` (`x-kubernetes-patch-merge-key` / `-strategy`). The schemas are not
written by hand: they are the Kubernetes 1.33 definitions shipped by the `kubernetes-validate`
package (JSON Schema converted from the apiserver's own OpenAPI), turned back into OpenAPI 3 the way
the apiserver publishes them (`#/components/schemas/<name>` references, plain `type`, IntOrString and
Quantity as `oneOf`, no `enum` on apiVersion/kind, which the converter adds). Paths and operations are
generated for the served resources only, with the parameters the emulator honours; the root document
lists one entry per served group-version with a `hash` of its document (clients cache by it).

Must never: describe a resource, verb, parameter or content type the emulator does not serve.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from importlib import resources as importlib_resources
from typing import Any

from sim.kube.discovery import SERVER_VERSION
from sim.kube.resources import RESOURCES, ResourceType

SCHEMAS = "kubernetes-json-schema/v1.33.0-local/_definitions.json"  # matches SERVER_VERSION
_REF = "#/$defs/"
_V3_REF = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, Any]:
    """The Kubernetes 1.33 definitions (JSON Schema `$defs`) from the kubernetes-validate package."""
    path = importlib_resources.files("kubernetes_validate").joinpath(SCHEMAS)
    defs: dict[str, Any] = json.loads(path.read_text())["$defs"]
    return defs


@functools.cache
def definition_of(group: str, version: str, kind: str) -> str:
    """The definition name (`io.k8s.api.core.v1.Pod`) carrying this group-version-kind."""
    for name, d in definitions().items():
        if {"group": group, "version": version, "kind": kind} in d.get("x-kubernetes-group-version-kind", []):
            return name
    raise KeyError(f"no definition for {group}/{version} {kind}")


def _to_v3(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_v3(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "$ref":
            out[k] = str(v).replace(_REF, _V3_REF)
        elif k == "type" and isinstance(v, list):
            kinds = [t for t in v if t != "null"]
            out[k] = kinds[0] if len(kinds) == 1 else kinds
        elif k == "enum":
            continue  # only the converter's apiVersion/kind enums carry one
        else:
            out[k] = _to_v3(v)
    return out


def _closure(roots: list[str]) -> dict[str, Any]:
    defs, seen, todo = definitions(), {}, list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = schema = _to_v3(defs[name])
        todo.extend(_refs(schema))
    if "io.k8s.apimachinery.pkg.util.intstr.IntOrString" in seen:
        seen["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] = "int-or-string"
    return dict(sorted(seen.items()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    if not isinstance(node, dict):
        return []
    found = [str(node["$ref"])[len(_V3_REF) :]] if "$ref" in node else []
    return found + [r for v in node.values() for r in _refs(v)]


def _op_group(group: str) -> str:
    """`Core`, `Apps`, `Coordination`, `RbacAuthorization`: the group part of an operationId."""
    if not group:
        return "Core"
    return "".join(p.capitalize() for p in group.removesuffix(".k8s.io").split("."))


def _param(name: str, kind: str = "string", where: str = "query", required: bool = False) -> dict[str, Any]:
    p: dict[str, Any] = {"in": where, "name": name, "schema": {"type": kind, "uniqueItems": True}}
    if required:
        p["required"] = True
    return p


_WRITE = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]
_LIST = [
    _param("allowWatchBookmarks", "boolean"),
    _param("fieldSelector"),
    _param("labelSelector"),
    _param("resourceVersion"),
    _param("timeoutSeconds", "integer"),
    _param("watch", "boolean"),
]
_DELETE = [_param("gracePeriodSeconds", "integer"), _param("propagationPolicy"), _param("dryRun")]


def _body(ref: str, types: tuple[str, ...] = ("application/json",)) -> dict[str, Any]:
    return {"content": {t: {"schema": {"$ref": _V3_REF + ref}} for t in types}}


_CODES = {"post": ("200", "201", "202"), "put": ("200", "201"), "delete": ("200", "202")}


def _op(rt: ResourceType, action: str, op_id: str, desc: str, response: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": desc,
        "operationId": op_id,
        **extra,
        "responses": {c: {"description": "OK", **_body(response)} for c in _CODES.get(action, ("200",))},
        "tags": [f"{_op_group(rt.group).lower()}_{rt.version}"],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "kind": rt.kind, "version": rt.version},
    }


def _paths(rt: ResourceType) -> dict[str, Any]:
    kind_def = definition_of(rt.group, rt.version, rt.kind)
    list_def = definition_of(rt.group, rt.version, f"{rt.kind}List")
    prefix = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    ident = f"{_op_group(rt.group)}{rt.version.capitalize()}Namespaced{rt.kind}"
    ns_param = [_param("namespace", where="path", required=True)]
    name_params = [_param("name", where="path", required=True), *ns_param]
    status, delete_body = _META + "Status", _body(_META + "DeleteOptions")
    listing = f"list or watch objects of kind {rt.kind}"

    def item(sfx: str, what: str) -> dict[str, Any]:
        of = f"{what} of the specified {rt.kind}"
        write = {"parameters": _WRITE}
        patch_body = _body(_META + "Patch", _PATCH_TYPES)
        return {
            "parameters": name_params,
            "get": _op(rt, "get", f"read{ident}{sfx}", f"read {of}", kind_def),
            "put": _op(rt, "put", f"replace{ident}{sfx}", f"replace {of}", kind_def, **write,
                       requestBody=_body(kind_def)),
            "patch": _op(rt, "patch", f"patch{ident}{sfx}", f"partially update {of}", kind_def, **write,
                         requestBody=patch_body),
        }  # fmt: skip

    collection = {
        "parameters": ns_param,
        "get": _op(rt, "list", f"list{ident}", listing, list_def, parameters=_LIST),
        "post": _op(rt, "post", f"create{ident}", f"create a {rt.kind}", kind_def, parameters=_WRITE,
                    requestBody=_body(kind_def)),
        "delete": _op(rt, "deletecollection", f"deletecollection{ident}", f"delete collection of {rt.kind}",
                      status, parameters=_DELETE + _LIST[1:3], requestBody=delete_body),
    }  # fmt: skip
    named = item("", "the object")
    named["delete"] = _op(
        rt, "delete", f"delete{ident}", f"delete a {rt.kind}", status, parameters=_DELETE,
        requestBody=delete_body,
    )  # fmt: skip
    base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
    all_ns = _op(rt, "list", f"list{ident.replace('Namespaced', '')}ForAllNamespaces", listing, list_def,
                 parameters=_LIST)  # fmt: skip
    paths = {base: collection, f"{base}/{{name}}": named, f"{prefix}/{rt.plural}": {"get": all_ns}}
    if rt.has_status:
        paths[f"{base}/{{name}}/status"] = item("Status", "status")
    return paths


def group_versions() -> list[tuple[str, str]]:
    """(group, version) of every served group-version, core first."""
    return sorted({(rt.group, rt.version) for rt in RESOURCES})


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


@functools.cache
def gv_document(group: str, version: str) -> bytes:
    """The OpenAPI v3 document of one served group-version, as served (JSON bytes)."""
    served = [rt for rt in RESOURCES if (rt.group, rt.version) == (group, version)]
    paths: dict[str, Any] = {}
    roots = [_META + n for n in ("Status", "DeleteOptions", "Patch")]
    for rt in served:
        paths.update(_paths(rt))
        roots += [definition_of(group, version, rt.kind), definition_of(group, version, f"{rt.kind}List")]
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION[2]},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": copy.deepcopy(_closure(roots)),
            "securitySchemes": {"BearerToken": {"type": "apiKey", "in": "header", "name": "authorization"}},
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _hash(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest().upper()


def document(path: str) -> bytes | None:
    """The OpenAPI v3 root (`/openapi/v3`) or a group-version document, or None (404)."""
    if path == "/openapi/v3":
        entries = {}
        for g, v in group_versions():
            url = f"/openapi/v3/{_gv_path(g, v)}"
            entries[_gv_path(g, v)] = {"serverRelativeURL": f"{url}?hash={_hash(gv_document(g, v))}"}
        return json.dumps({"paths": entries}, separators=(",", ":")).encode()
    for g, v in group_versions():
        if path == f"/openapi/v3/{_gv_path(g, v)}":
            return gv_document(g, v)
    return None
