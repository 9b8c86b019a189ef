"""Log formatting for the agent: one line per event, logfmt (default) or JSON, secrets redacted.

Role: `setup_logging` installs one stdout handler on the root logger with a formatter that renders
every record (message, structured fields, exception, stack) on exactly one line, and a filter that
replaces every registered secret (`add_secret`) with `***` in the message, its arguments, the fields
and the exception text. `log_event` is the short way to log an event with fields.

logfmt: `ts=2025-10-19T12:34:56.789Z level=info logger=agent.runtime msg="lease acquired" pod=mg-0`
JSON:   `{"ts": "...", "level": "info", "logger": "...", "msg": "...", "pod": "mg-0"}`

Must never: let a record span two lines, write a registered secret, or raise out of logging.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO

REDACTED = "***"
_RESERVED = ("ts", "level", "logger", "msg", "exc", "stack")
_BARE_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+\-,\[\]()%*]+$")
_KEY_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
# Characters str.splitlines() treats as line breaks beyond the C0 controls that escaping already covers.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_HANDLER_MARK = "_memgraph_ha_handler"


def add_secret(value: str | None) -> None:
    """Register a secret (Memgraph password, API token): it is written as `***` wherever it appears.

    Empty values are ignored (an empty secret would match everywhere).
    """
    if value:
        with _secrets_lock:
            _secrets.add(value)


def clear_secrets() -> None:
    """Forget every registered secret (tests)."""
    with _secrets_lock:
        _secrets.clear()


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`, longest secrets first."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float | type(None)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if isinstance(value, enum.Enum):
        return _redact_value(value.value)
    return redact(str(value))


class RedactionFilter(logging.Filter):
    """Replaces registered secrets in message, args, fields, exception and stack text of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(_message(record))
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            record.fields = {str(k): _redact_value(v) for k, v in fields.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _message(record: logging.LogRecord) -> str:
    """record.getMessage(), or a readable fallback when the arguments do not fit the format."""
    try:
        return record.getMessage()
    except (TypeError, ValueError, KeyError) as exc:
        return f"{record.msg!s} (bad log arguments {record.args!r}: {exc})"


def _timestamp(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _field_items(record: logging.LogRecord) -> list[tuple[str, Any]]:
    """Structured fields of a record with safe keys (a key that collides with a reserved one gets `f_`)
    and redacted values."""
    fields = getattr(record, "fields", None)
    if not isinstance(fields, Mapping):
        return []
    items = []
    for key, value in fields.items():
        safe = _KEY_BAD_CHARS.sub("_", str(key)) or "_"
        if safe in _RESERVED:
            safe = f"f_{safe}"
        items.append((safe, _redact_value(value)))
    return items


def _exception_text(record: logging.LogRecord) -> str:
    if record.exc_text:
        return redact(record.exc_text)
    if record.exc_info:
        return redact(logging.Formatter().formatException(record.exc_info))
    return ""


def _one_line(text: str) -> str:
    for char, escaped in _LINE_BREAKS.items():
        text = text.replace(char, escaped)
    return text


def logfmt_value(value: Any) -> str:
    """Render one logfmt value: bare when safe, else double-quoted with JSON escapes (never a newline)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, enum.Enum):
        value = value.value
    text = value if isinstance(value, str) else _json_text(value)
    if _BARE_VALUE.match(text):
        return text
    return _one_line(json.dumps(text, ensure_ascii=False))


def _json_text(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return str(value)


class LogfmtFormatter(logging.Formatter):
    """`ts=... level=... logger=... msg="..." key=value ... [exc="..."]` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={_timestamp(record.created)}",
            f"level={record.levelname.lower()}",
            f"logger={logfmt_value(record.name)}",
            f"msg={_one_line(json.dumps(redact(_message(record)), ensure_ascii=False))}",
        ]
        parts.extend(f"{key}={logfmt_value(value)}" for key, value in _field_items(record))
        exc = _exception_text(record)
        if exc:
            parts.append(f"exc={logfmt_value(exc)}")
        if record.stack_info:
            parts.append(f"stack={logfmt_value(redact(record.stack_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the fields, then exc/stack when present."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(_message(record)),
        }
        for key, value in _field_items(record):
            doc[key] = value
        exc = _exception_text(record)
        if exc:
            doc["exc"] = exc
        if record.stack_info:
            doc["stack"] = redact(record.stack_info)
        return _one_line(json.dumps(doc, ensure_ascii=False, default=str))


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for `fmt` ("logfmt" or "json"); ValueError otherwise."""
    if fmt == "logfmt":
        return LogfmtFormatter()
    if fmt == "json":
        return JsonFormatter()
    raise ValueError(f"log format must be logfmt or json, got {fmt!r}")


def setup_logging(fmt: str = "logfmt", level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to `stream` (default stdout), one line each, secrets redacted.

    Idempotent: a handler installed by an earlier call is replaced, other handlers are left alone.
    Returns the installed handler.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(RedactionFilter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def log_event(logger: logging.Logger, event: str, /, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` at `level` with structured `fields` (`log_event(log, "lease acquired", pod="mg-0")`)."""
    logger.log(level, event, extra={"fields": fields}, stacklevel=2)
