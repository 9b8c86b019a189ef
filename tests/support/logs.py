"""Structured log events in tests: the fields of the records logged with `log_event` (caplog)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any


def events(records: Iterable[logging.LogRecord], msg: str) -> list[dict[str, Any]]:
    """The fields of every record whose message is `msg`, in order."""
    return [dict(getattr(r, "fields", {}) or {}) for r in records if r.getMessage() == msg]


def has_event(records: Iterable[logging.LogRecord], msg: str, **fields: Any) -> bool:
    """True when some record `msg` carries at least `fields` (equal values)."""
    return any(all(e.get(k) == v for k, v in fields.items()) for e in events(records, msg))
