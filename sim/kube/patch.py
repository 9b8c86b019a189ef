"""PATCH bodies of the Kubernetes API emulator: json-patch, merge-patch and strategic-merge-patch.

Role: apply a patch document to a copy of a stored object, as the apiserver does (reference
bolt-and-kube-emulation.md 3.5):
- json-patch (RFC 6902): "an undecodable patch -> 400 BadRequest; more than 10 000 operations -> 413;
  an op that fails to apply (a failed `test` op, a missing path) -> 422, and nothing is written";
- merge-patch (RFC 7386): "recursive map merge, `null` deletes a key, lists are replaced";
- strategic-merge-patch: maps and scalars like merge-patch; "lists with a patch-merge key are merged by
  key: `spec.containers` by `name`, `env` by `name`, `status.conditions` by `type`"; primitive lists with
  `patchStrategy: merge` (`metadata.finalizers`) merged as sets; `$patch: delete` items and
  `$deleteFromPrimitiveList/<field>` honoured, `$setElementOrder/<field>` accepted (order only). Other
  directives (`$retainKeys`, `$patch: replace`) are refused with 400 so a test cannot pass by accident.

Must never: mutate its input, or write a partially applied json-patch.
"""

from __future__ import annotations

import copy
from typing import Any

from sim.kube import errors

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# SMP merge keys by field name (k8s.io/api patchMergeKey tags for the fields this project touches).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "envFrom": None,
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "volumeClaimTemplates": None,
}
_MERGED_PRIMITIVE_LISTS = {"finalizers"}


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


def _smp_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    if field in _MERGED_PRIMITIVE_LISTS:
        return target + [v for v in patch if v not in target]
    key = _MERGE_KEYS.get(field)
    if field == "ports" and patch and isinstance(patch[0], dict):
        key = "containerPort" if "containerPort" in patch[0] else "port"
    if not key:
        return copy.deepcopy(patch)
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise errors.bad_request(f"map in {field} does not contain declared merge key: {key}")
        idx = next(
            (i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]), None
        )
        directive = item.get("$patch")
        if directive == "delete":
            if idx is not None:
                result.pop(idx)
        elif directive is not None:
            raise errors.bad_request(f"emulator: unsupported $patch directive {directive!r} in {field}")
        elif idx is None:
            result.append(_smp_map({}, item))
        else:
            result[idx] = _smp_map(result[idx], item)
    return result


def _smp_map(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    if "$patch" in patch or "$retainKeys" in patch:
        raise errors.bad_request("emulator: $patch/$retainKeys on maps is not supported")
    result = copy.deepcopy(target)
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in (v or [])]
            continue
        if k.startswith("$"):
            raise errors.bad_request(f"emulator: unsupported strategic merge directive {k!r}")
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            cur = result.get(k)
            result[k] = _smp_map(cur if isinstance(cur, dict) else {}, v)
        elif isinstance(v, list):
            cur = result.get(k)
            result[k] = _smp_list(k, cur if isinstance(cur, list) else [], v)
        else:
            result[k] = v
    return result


def strategic_merge_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise errors.bad_request("strategic merge patch must be a JSON object")
    return _smp_map(obj, patch)


def apply(content_type: str, obj: dict[str, Any], body: Any) -> dict[str, Any]:
    """Apply `body` of `content_type` to a copy of `obj`; 415 for types the emulator does not speak."""
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
        return strategic_merge_patch(obj, body)
    raise errors.unsupported_media_type(content_type)
