"""Label and field selectors of the Kubernetes API emulator.

Role: parse `labelSelector` (reference bolt-and-kube-emulation.md 3.4: "Support equality (`a=b`,
`a==b`, `a!=b`) and set-based (`a in (x,y)`, `notin`, `a`, `!a`)") and `fieldSelector` (`=`, `==`,
`!=` on the fields the apiserver supports per kind, at least `metadata.name` and `metadata.namespace`)
and match them against stored objects.

Must never: do I/O; a selector it cannot parse is a 400 BadRequest, never "match everything".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.kube import errors

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        return not has or value not in self.values  # "!=" and "notin" match objects without the key


def _split_top(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (x.strip() for x in parts) if p]


def parse_label_selector(selector: str | None) -> tuple[Requirement, ...]:
    if not selector:
        return ()
    reqs = []
    for part in _split_top(selector):
        if m := _SET_RE.match(part):
            values = tuple(v.strip() for v in m.group("values").split(",") if v.strip())
            reqs.append(Requirement(m.group("key"), m.group("op"), values))
        elif m := _EQ_RE.match(part):
            op = "!=" if m.group("op") == "!=" else "="
            reqs.append(Requirement(m.group("key"), op, (m.group("value"),)))
        elif m := _EXISTS_RE.match(part):
            reqs.append(Requirement(m.group("key"), "!" if m.group("neg") else "exists"))
        else:
            raise errors.bad_request(f"unable to parse requirement: {part!r}")
    return tuple(reqs)


def labels_match(reqs: tuple[Requirement, ...], obj: dict[str, Any] | None) -> bool:
    if obj is None:
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


# ---- field selectors --------------------------------------------------------------------------

_COMMON_FIELDS = {"metadata.name", "metadata.namespace"}
_KIND_FIELDS = {
    "Pod": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "Event": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "reportingController",
    },
    "Secret": {"type"},
}


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    equal: bool
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        cur: Any = obj
        for part in self.path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        actual = ("true" if cur else "false") if isinstance(cur, bool) else ("" if cur is None else str(cur))
        return (actual == self.value) == self.equal


def parse_field_selector(selector: str | None, kind: str) -> tuple[FieldRequirement, ...]:
    if not selector:
        return ()
    allowed = _COMMON_FIELDS | _KIND_FIELDS.get(kind, set())
    reqs = []
    for part in _split_top(selector):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise errors.bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        if m.group(1) not in allowed:
            raise errors.bad_request(f"field label not supported: {m.group(1)}")
        reqs.append(FieldRequirement(m.group(1), m.group(2) != "!=", m.group(3)))
    return tuple(reqs)


def fields_match(reqs: tuple[FieldRequirement, ...], obj: dict[str, Any] | None) -> bool:
    return obj is not None and all(r.matches(obj) for r in reqs)


def make_filter(
    label_selector: str | None, field_selector: str | None, kind: str
) -> Callable[[dict[str, Any] | None], bool]:
    """One predicate for both selectors; parse errors raise 400 before any object is looked at."""
    lreqs = parse_label_selector(label_selector)
    freqs = parse_field_selector(field_selector, kind)
    return lambda obj: labels_match(lreqs, obj) and fields_match(freqs, obj)
