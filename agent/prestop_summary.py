"""A short summary of this pod's last preStop record, for `/api/v1/local` and the status page.

Role: find the newest `prestop-*.log` on the pod's log volume (the hook writes it, the agent appends its
switchover steps; `hooks/prestop.py` names and prunes the files) and summarise its last run: when the
hook started and ended, its exit code, how many attempts it made, the last attempt's verdict and the
last line. The record of a pod's previous incarnation is the interesting one: the volume outlives the
pod, so after a restart this shows how the last termination went.

Must never: read more than `TAIL_BYTES` of a file, raise on a missing directory or a malformed line (a
missing record is None; unknown lines are skipped), or follow anything but `prestop-*.log` in `log_dir`.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from coordinator.edge.logs import log_event

log = logging.getLogger(__name__)

TAIL_BYTES = 32 * 1024
LINE_CHARS = 240
_LINE = re.compile(r"^\[(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)\] (?P<msg>.*)$")
_ATTEMPT = re.compile(r"^Attempt \d+(?:/\d+)?: (?P<verdict>SUCCESS|NOT SAFE|HTTP \d+|TIMEOUT|ERROR)")
_EXIT = re.compile(r"exit=(-?\d+)")


def newest_record(log_dir: str) -> Path | None:
    """The most recently modified `prestop-*.log` in `log_dir`, or None."""
    try:
        files = [p for p in Path(log_dir).glob("prestop-*.log") if p.is_file()]
    except OSError as exc:
        log_event(log, "prestop records not listable", level=logging.WARNING, dir=log_dir, error=str(exc))
        return None
    return max(files, key=_mtime, default=None)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _tail(path: Path) -> list[str]:
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - TAIL_BYTES))
        data = fh.read(TAIL_BYTES)
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[1:] if size > TAIL_BYTES else lines  # the first line of a tail may be cut


def _seconds(start: str, end: str) -> float | None:
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((b - a).total_seconds(), 3)


def summarize(lines: list[str]) -> dict[str, Any] | None:
    """The last run in a record's lines (from its last START; all lines when the hook never started)."""
    parsed = [(m["ts"], m["msg"]) for m in (_LINE.match(raw.strip()) for raw in lines) if m]
    if not parsed:
        return None
    starts = [i for i, (_, msg) in enumerate(parsed) if msg.startswith("START PreStop hook")]
    run = parsed[starts[-1]:] if starts else parsed
    ended = next(((ts, msg) for ts, msg in reversed(run) if msg.startswith("END PreStop hook")), None)
    verdicts = [m["verdict"] for _, msg in run if (m := _ATTEMPT.match(msg))]
    exit_match = _EXIT.search(ended[1]) if ended else None
    return {
        "hook_started": bool(starts),
        "started": run[0][0],
        "ended": ended[0] if ended else None,
        "exit_code": int(exit_match.group(1)) if exit_match else None,
        "duration_s": _seconds(run[0][0], ended[0]) if ended else None,
        "attempts": len(verdicts),
        "last_verdict": verdicts[-1] if verdicts else None,
        "last_line": run[-1][1][:LINE_CHARS],
    }


def last_record(log_dir: str) -> dict[str, Any] | None:
    """Summary of the newest preStop record in `log_dir` with its file name; None when there is none."""
    path = newest_record(log_dir)
    if path is None:
        return None
    try:
        summary = summarize(_tail(path))
    except OSError as exc:
        log_event(log, "prestop record not readable", level=logging.WARNING, path=str(path), error=str(exc))
        return None
    return None if summary is None else {"file": path.name, **summary}
