"""Request-body decoding of the Kubernetes API emulator: unknown, duplicate and mistyped fields.

Role: check a written object against its kind's schema (the Kubernetes 1.33 definitions `openapi.py`
loads) the way the apiserver's decoder does:
- a value of the wrong JSON type (a string where an int32 is, an object where a list is) fails the
  request whatever the client asked: 400 `<Kind> in version "<v>" cannot be handled as a <Kind>: json:
  cannot unmarshal ...`; so does a `Time` that is not RFC 3339 and `data` of a Secret that is not base64;
- unknown fields (`spec.template.spec.containers[0].foo`) and duplicate fields follow the request's
  `fieldValidation` (the apiserver's default is `Warn`): `Strict` fails with 400 `strict decoding error:
  unknown field "..."`, `Warn` drops them and answers a `Warning: 299 - "unknown field ..."` header per
  field, `Ignore` drops them silently; any other value is 422 on the request's options.
Free-form fields (RawExtension, FieldsV1, maps) take anything their schema allows.

Must never: accept a type error, or keep an unknown field in what is stored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sim.kube import errors
from sim.kube.openapi import definition_of, definitions
from sim.kube.resources import ResourceType

DIRECTIVES = ("Ignore", "Strict", "Warn")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_REF = "#/$defs/"
_INDEX = re.compile(r"\[\d+\]")


class _Dict(dict[str, Any]):
    """A JSON object that remembers keys it saw twice."""

    dups: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _Dict:
    d = _Dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        d.dups = tuple(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return d


def parse(raw: bytes) -> Any:
    """The request body as JSON (duplicate keys remembered); 400 when it is not JSON."""
    try:
        return json.loads(raw or b"null", object_pairs_hook=_pairs)
    except ValueError as exc:
        raise errors.bad_request(f"the body of the request could not be decoded as JSON: {exc}") from exc


def directive(query: dict[str, list[str]], verb: str) -> str:
    value = (query.get("fieldValidation") or [""])[0]
    if value in ("", *DIRECTIVES):
        return value or "Warn"
    options = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}.get(verb, verb)
    supported = ", ".join(f'"{d}"' for d in ("", *DIRECTIVES))
    msg = f'Unsupported value: "{value}": supported values: {supported}'
    raise errors.invalid(options, "meta.k8s.io", "", [("fieldValidation", "FieldValueNotSupported", msg)])


class _TypeError(Exception):
    pass


@dataclass
class _Walk:
    unknown: list[str] = field(default_factory=list)
    prune: bool = True

    def node(self, schema: dict[str, Any], value: Any, path: str, owner: str) -> None:
        if value is None:
            return  # null decodes to the zero value
        ref = schema.get("$ref")
        if ref:
            name = str(ref)[len(_REF) :]
            self.node(definitions()[name], value, path, name)
            return
        if "oneOf" in schema:  # IntOrString, Quantity
            wanted = [t for alt in schema["oneOf"] for t in _types(alt)]
            if not any(_is(value, t) for t in wanted):
                go_type = "IntOrString" if "integer" in wanted else "Quantity"
                raise _TypeError(_mistyped(value, path, owner, go_type))
            return
        types = _types(schema)
        if not types:
            return
        kind = types[0]
        if not _is(value, kind):
            raise _TypeError(_mistyped(value, path, owner, _go_type(schema, kind)))
        if kind == "object":
            self.obj(schema, value, path, owner)
        elif kind == "array":
            for i, item in enumerate(value):
                self.node(schema.get("items") or {}, item, f"{path}[{i}]", owner)
        elif kind == "string":
            _check_string(schema, value, path, owner)

    def obj(self, schema: dict[str, Any], value: dict[str, Any], path: str, owner: str) -> None:
        props, extra = schema.get("properties"), schema.get("additionalProperties")
        for dup in getattr(value, "dups", ()):
            self.unknown.append(f'duplicate field "{_join(path, dup)}"')
        if props is None and not isinstance(extra, dict):
            return  # free-form (RawExtension, FieldsV1, Patch)
        for key in list(value):
            sub = (props or {}).get(key, extra if isinstance(extra, dict) else None)
            if sub is None:
                self.unknown.append(f'unknown field "{_join(path, key)}"')
                if self.prune:
                    del value[key]
            else:
                self.node(sub, value[key], _join(path, key), owner)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    return [x for x in (t if isinstance(t, list) else [t] if t else []) if x != "null"]


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    python_types: dict[str, type] = {"object": dict, "array": list, "string": str, "boolean": bool}
    return isinstance(value, python_types.get(kind, object))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    for python_type, name in ((dict, "object"), (list, "array"), (str, "string")):
        if isinstance(value, python_type):
            return name
    return "value"


def _go_type(schema: dict[str, Any], kind: str) -> str:
    fmt = schema.get("format")
    return {
        "integer": str(fmt or "int"),
        "number": "float64",
        "boolean": "bool",
        "string": "string",
        "array": "[]interface {}",
        "object": "map[string]interface {}",
    }.get(kind, kind)


def _mistyped(value: Any, path: str, owner: str, go_type: str) -> str:
    struct = owner.rsplit(".", 1)[-1]
    where = f"Go struct field {struct}.{_INDEX.sub('', path)}"  # Go names the fields, not list indices
    return f"json: cannot unmarshal {_json_type(value)} into {where} of type {go_type}"


def _check_string(schema: dict[str, Any], value: str, path: str, owner: str) -> None:
    if schema.get("format") == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _TypeError(f"illegal base64 data in {path}: {exc}") from exc
    elif owner.endswith("meta.v1.Time") and not _RFC3339.match(value):
        raise _TypeError(f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse {path}')


def check(rt: ResourceType, obj: dict[str, Any], mode: str) -> list[str]:
    """Check `obj` (a body of kind `rt`) in place; returns the warnings to send (Warn mode).
    Raises 400 on a type error, and on unknown/duplicate fields in Strict mode."""
    walk = _Walk(prune=True)
    prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}'
    name = definition_of(rt.group, rt.version, rt.kind)
    try:
        walk.obj(definitions()[name], obj, "", name)
    except _TypeError as exc:
        raise errors.bad_request(f"{prefix}: {exc}") from exc
    if walk.unknown and mode == "Strict":
        raise errors.bad_request(f"{prefix}: strict decoding error: {', '.join(walk.unknown)}")
    return walk.unknown if mode == "Warn" else []
