"""The cluster record <-> Lease annotations codec.

Role: turn a `ClusterRecord` into the annotations the leader writes on its Lease and back. Every field of
the dataclass becomes one annotation `memgraph-ha.io/<field-name-with-dashes>`, so a field added to the
record is carried without touching this module.

Must never: do I/O, or fail on a Lease written by another version (unknown keys are ignored, bad values
fall back to the field's default and are reported in `problems`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, get_type_hints

from coordinator.core.model import ClusterRecord

PREFIX = "memgraph-ha.io/"
_HINTS = get_type_hints(ClusterRecord)


def _key(field_name: str) -> str:
    return PREFIX + field_name.replace("_", "-")


def encode(record: ClusterRecord) -> dict[str, str]:
    """Annotations for `record` (every field, so a write replaces the whole record)."""
    out: dict[str, str] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        out[_key(f.name)] = text
    return out


def decode(annotations: Mapping[str, str] | None) -> tuple[ClusterRecord, list[str]]:
    """The record held in `annotations` and a list of problems (bad values replaced by defaults)."""
    annotations = annotations or {}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in dataclasses.fields(ClusterRecord):
        raw = annotations.get(_key(f.name))
        if raw is None:
            continue
        hint = _HINTS[f.name]
        try:
            values[f.name] = _parse(raw, hint)
        except ValueError as exc:
            problems.append(f"{_key(f.name)}: {exc}")
    return ClusterRecord(**values), problems


def _parse(raw: str, hint: Any) -> Any:
    if hint is bool:
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0", ""):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if hint is int:
        return int(raw or "0")
    if hint is float:
        return float(raw or "0")
    if hint is str:
        return raw
    # tuple[str, ...]
    return tuple(item for item in raw.split(",") if item)


def changes(old: ClusterRecord, new: ClusterRecord) -> dict[str, str | None]:
    """Only the annotations that differ between `old` and `new` (for a small CAS write)."""
    before, after = encode(old), encode(new)
    return {k: v for k, v in after.items() if before.get(k) != v}
