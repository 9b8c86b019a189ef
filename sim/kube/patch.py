"""PATCH bodies of the Kubernetes API emulator: json-patch, merge-patch and strategic-merge-patch.

Role: apply a patch document to a copy of a stored object, as the apiserver does (reference
bolt-and-kube-emulation.md 3.5):
- json-patch (RFC 6902): "an undecodable patch -> 400 BadRequest; more than 10 000 operations -> 413;
  an op that fails to apply (a failed `test` op, a missing path) -> 422, and nothing is written";
- merge-patch (RFC 7386): "recursive map merge, `null` deletes a key, lists are replaced";
- strategic-merge-patch, driven by the kind's schema (the Kubernetes 1.33 definitions, `openapi.py`)
  as `k8s.io/apimachinery/pkg/util/strategicpatch` is driven by the Go types: maps and scalars like
  merge-patch; "lists with a patch-merge key are merged by key: `spec.containers` by `name`, `env` by
  `name`, `status.conditions` by `type`"; primitive lists with `patchStrategy: merge`
  (`metadata.finalizers`) merged as sets; other lists, and fields with `patchStrategy: replace` (a
  PDB's `selector`), replaced; directives `$patch: delete|replace|merge`, `$retainKeys`,
  `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` honoured; any other directive is
  refused with 400 so a test cannot pass by accident.

Must never: mutate its input, or write a partially applied json-patch.
"""

from __future__ import annotations

import copy
from typing import Any

from sim.kube import errors
from sim.kube.openapi import definition_of, definitions
from sim.kube.resources import ResourceType

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

Schema = dict[str, Any]
_REF = "#/$defs/"


class _PatchFailed(Exception):
    pass


# ---- RFC 6902 -------------------------------------------------------------------------------------


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _PatchFailed(f"invalid JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    toks = _tokens(pointer)
    if not toks:
        raise _PatchFailed("operation on the document root is not supported")
    cur = doc
    for t in toks[:-1]:
        cur = _child(cur, t)
    return cur, toks[-1]


def _child(container: Any, token: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise _PatchFailed(f"missing path element {token!r}")
        return container[token]
    if isinstance(container, list):
        idx = _index(container, token, allow_end=False)
        return container[idx]
    raise _PatchFailed(f"cannot descend into {type(container).__name__} at {token!r}")


def _index(lst: list[Any], token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(lst)
    if not token.isdigit():
        raise _PatchFailed(f"invalid list index {token!r}")
    idx = int(token)
    if idx > len(lst) or (idx == len(lst) and not allow_end):
        raise _PatchFailed(f"list index {idx} out of range")
    return idx


def _get(doc: Any, pointer: str) -> Any:
    cur = doc
    for t in _tokens(pointer):
        cur = _child(cur, t)
    return cur


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise _PatchFailed(f"cannot add to {type(parent).__name__}")


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailed(f"unable to remove nonexistent key: {last}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, allow_end=False))
    raise _PatchFailed(f"cannot remove from {type(parent).__name__}")


def _apply_op(doc: Any, op: dict[str, Any]) -> None:
    kind, path = op.get("op"), op.get("path")
    if not isinstance(path, str):
        raise _PatchFailed("operation has no path")
    if kind == "add":
        _add(doc, path, copy.deepcopy(op.get("value")))
    elif kind == "remove":
        _remove(doc, path)
    elif kind == "replace":
        _remove(doc, path)
        _add(doc, path, copy.deepcopy(op.get("value")))
    elif kind == "move":
        _add(doc, path, _remove(doc, str(op.get("from"))))
    elif kind == "copy":
        _add(doc, path, copy.deepcopy(_get(doc, str(op.get("from")))))
    elif kind == "test":
        if _get(doc, path) != op.get("value"):
            raise _PatchFailed(f"testing value {path} failed")
    else:
        raise _PatchFailed(f"unexpected kind: {kind}")


def json_patch(obj: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise errors.bad_request("json patch must be a list of operations")
    if len(ops) > 10000:
        raise errors.ApiError(413, "RequestEntityTooLarge", "The allowed operation count is 10000")
    doc = copy.deepcopy(obj)
    for op in ops:
        try:
            _apply_op(doc, op)
        except _PatchFailed as exc:
            raise errors.ApiError(422, "Invalid", str(exc)) from exc
    return doc


# ---- RFC 7386 ---------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ---- strategic merge patch ----------------------------------------------------------------------------


def _resolve(node: Schema | None) -> Schema:
    while node and "$ref" in node:
        node = definitions()[str(node["$ref"])[len(_REF) :]]
    return node or {}


def _field(node: Schema | None, key: str) -> Schema | None:
    """The schema of field `key` of an object schema (unresolved: patch extensions live on it)."""
    resolved = _resolve(node)
    props = resolved.get("properties") or {}
    if key in props:
        return props[key]
    extra = resolved.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _strategy(node: Schema | None) -> set[str]:
    return set(str((node or {}).get("x-kubernetes-patch-strategy", "")).split(",")) - {""}


def _ordered(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """`$setElementOrder`: the listed items first, in the listed order; the others after, as they were."""
    ids = [o.get(key) if key and isinstance(o, dict) else o for o in order]

    def rank(i_item: tuple[int, Any]) -> tuple[int, int]:
        i, item = i_item
        ident = item.get(key) if key and isinstance(item, dict) else item
        return (ids.index(ident), i) if ident in ids else (len(ids), i)

    return [item for _, item in sorted(enumerate(items), key=rank)]


def _smp_list(target: list[Any], patch: list[Any], node: Schema | None) -> list[Any]:
    """A list field: replaced unless its schema says `patchStrategy: merge` (by `patchMergeKey` for
    lists of maps, as a set for lists of primitives)."""
    if "merge" not in _strategy(node):
        return [_smp_map({}, v, _resolve(node).get("items")) if isinstance(v, dict) else v for v in patch]
    key = (node or {}).get("x-kubernetes-patch-merge-key")
    if not patch or not isinstance(patch[0], dict):
        return target + [v for v in patch if v not in target]
    items = _resolve(node).get("items")
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_smp_map({}, i, items) for i in patch if i.get("$patch") != "replace"]
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or not key or key not in item:
            raise errors.bad_request(f"map: {item} does not contain declared merge key: {key}")
        same = [i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]]
        idx = same[0] if same else None
        directive = item.get("$patch")
        if directive == "delete":
            if idx is not None:
                result.pop(idx)
        elif directive not in (None, "merge"):
            raise errors.bad_request(f"Unknown patch type: {directive}")
        elif idx is None:
            result.append(_smp_map({}, item, items))
        else:
            result[idx] = _smp_map(result[idx], item, items)
    return result


def _smp_map(target: dict[str, Any], patch: dict[str, Any], node: Schema | None) -> dict[str, Any]:
    """A map: merged key by key following the schema (k8s.io/apimachinery strategicpatch): `null`
    deletes, `patchStrategy: replace` fields and `$patch: replace` maps are replaced, `$retainKeys`
    drops the keys it does not list, `$deleteFromPrimitiveList/<f>` and `$setElementOrder/<f>` apply to
    list `f`."""
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise errors.bad_request(f"Unknown patch type: {directive}")
    result = copy.deepcopy(target)
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise errors.bad_request("$retainKeys must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    orders: dict[str, list[Any]] = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v or []
        elif k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in (v or [])]
        elif k.startswith("$"):
            raise errors.bad_request(f"emulator: unsupported strategic merge directive {k!r}")
        elif v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            sub, cur = _field(node, k), result.get(k)
            keep = cur if isinstance(cur, dict) and "replace" not in _strategy(sub) else {}
            result[k] = _smp_map(keep, v, sub)
        elif isinstance(v, list):
            cur = result.get(k)
            result[k] = _smp_list(cur if isinstance(cur, list) else [], v, _field(node, k))
        else:
            result[k] = v
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            key = (_field(node, field) or {}).get("x-kubernetes-patch-merge-key")
            result[field] = _ordered(result[field], order, key)
    return result


def strategic_merge_patch(obj: dict[str, Any], patch: Any, schema: Schema | None = None) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise errors.bad_request("strategic merge patch must be a JSON object")
    return _smp_map(obj, patch, schema)


def apply(
    content_type: str, obj: dict[str, Any], body: Any, rt: ResourceType | None = None
) -> dict[str, Any]:
    """Apply `body` of `content_type` to a copy of `obj` (of kind `rt`: its schema drives strategic merge);
    415 for types the emulator does not speak."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == JSON_PATCH:
        return json_patch(obj, body)
    if ctype == MERGE_PATCH:
        if not isinstance(body, dict):
            raise errors.bad_request("merge patch must be a JSON object")
        result = merge_patch(obj, body)
        assert isinstance(result, dict)
        return result
    if ctype == STRATEGIC_MERGE_PATCH:
        schema = definitions()[definition_of(rt.group, rt.version, rt.kind)] if rt is not None else None
        return strategic_merge_patch(obj, body, schema)
    raise errors.unsupported_media_type(content_type)
