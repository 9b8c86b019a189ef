"""preStop hook of the memgraph container: ask the local agent to make this pod safe to stop.

Role: POST `$AGENT_URL/api/v1/prestop` with retries (exponential backoff 0.5 s doubling, capped at 10 s)
inside `PRESTOP_TIMEOUT_SECONDS`, and leave a record of every step in
`$PRESTOP_LOG_DIR/prestop-<POD_UID>_<POD_IP>.log` (DESIGN "Switchover", "Logging"; invariant I6).
Each line is also mirrored to stderr, which the kubelet may show in the FailedPreStopHook event.
Exit 0 only when the agent confirmed that the pod is safe to stop; 1 otherwise.

The agent imports `record_path` and `append_line` from here to add its own switchover steps to the same
file, so both stay tiny and dependency-free.

Must never: import anything outside the standard library (it runs in the memgraph image), run past its
budget (a SIGALRM guard writes END and exits), skip the START or END line, go through an HTTP proxy,
or log a secret.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType
from typing import Any

DEFAULT_AGENT_URL = "http://127.0.0.1:8080"
DEFAULT_BUDGET_S = 600.0
DEFAULT_LOG_DIR = "/var/log/memgraph"
KEEP_FILES = 100
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 10.0
RETRY_STATUSES = frozenset({202, 408, 409, 425, 429})  # "not yet"; every 5xx is retried as well
EXCERPT_CHARS = 200


# ---- the record: shared with the agent -------------------------------------------------------------


def record_path(log_dir: str, uid: str, ip: str) -> str:
    """Path of a pod's preStop record: `<log_dir>/prestop-<uid>_<ip>.log` (DESIGN "Logging")."""
    uid = (uid or "unknown").replace("/", "_")
    ip = (ip or "unknown").replace("/", "_")
    return os.path.join(log_dir, f"prestop-{uid}_{ip}.log")


def timestamp(epoch: float | None = None) -> str:
    """`2025-10-19T12:34:56.789Z` (UTC, milliseconds)."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, tz=timezone.utc)  # noqa: UP017 - runs on python3 < 3.11 too
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_line(text: str, epoch: float | None = None) -> str:
    """One record line: `[<timestamp>] <text>` with newlines in `text` flattened, ending in a newline."""
    flat = " ".join(text.splitlines())
    return f"[{timestamp(epoch)}] {flat}\n"


def append_line(path: str, text: str) -> None:
    """Append one timestamped line to `path`, flushed and fsynced. Raises OSError when it cannot.

    Unbuffered `os.write` on an O_APPEND descriptor: safe from a signal handler, and lines written by the
    hook and the agent at the same time do not interleave.
    """
    append_raw(path, format_line(text))


def append_raw(path: str, line: str) -> None:
    """Append an already formatted line (see `append_line`)."""
    data = line.encode("utf-8", "replace")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(log_dir: str, keep: int = KEEP_FILES, current: str = "") -> list[str]:
    """Delete all but the newest `keep` `prestop-*.log` files (by mtime); never `current`. Returns deleted."""
    entries: list[tuple[float, str]] = []
    for path in glob.glob(os.path.join(log_dir, "prestop-*.log")):
        try:
            entries.append((os.stat(path).st_mtime, path))
        except OSError:
            continue  # removed meanwhile
    entries.sort(reverse=True)
    deleted: list[str] = []
    for _, path in entries[keep:]:
        if path == current:
            continue
        try:
            os.remove(path)
            deleted.append(path)
        except OSError:
            continue  # another hook pruned it first
    return deleted


class Recorder:
    """Writes the hook's lines to the record file and to stderr; falls back to stderr alone."""

    def __init__(self, path: str) -> None:
        self.path: str | None = path
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        except OSError as exc:
            self._fall_back(exc)

    def _fall_back(self, exc: OSError) -> None:
        note = f"WARNING cannot write {self.path}: {type(exc).__name__}: {exc}; recording to stderr only"
        self.path = None
        _stderr(format_line(note))

    def line(self, text: str) -> None:
        data = format_line(text)
        if self.path is not None:
            try:
                append_raw(self.path, data)
            except OSError as exc:
                self._fall_back(exc)
        _stderr(data)


def _stderr(data: str) -> None:
    with contextlib.suppress(OSError):  # no stderr: the file is the record
        os.write(2, data.encode("utf-8", "replace"))


# ---- settings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    pod: str
    uid: str
    ip: str
    agent_url: str
    budget_s: float
    log_dir: str
    request_timeout_s: float  # the agent's expected hand-over time; 0 = the whole remaining budget
    warnings: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return self.agent_url.rstrip("/") + "/api/v1/prestop"


def _positive(env: dict[str, str], name: str, default: float, warnings: list[str]) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        warnings.append(f"WARNING {name}={raw!r} is not a positive number of seconds; using {default:g}")
        return default
    return value


def load_settings(env: dict[str, str]) -> Settings:
    """Read the hook's environment (DESIGN "Agent settings"). Bad numbers fall back to defaults, noted."""
    warnings: list[str] = []
    budget = _positive(env, "PRESTOP_TIMEOUT_SECONDS", DEFAULT_BUDGET_S, warnings)
    request_timeout = _positive(env, "PRESTOP_REQUEST_TIMEOUT_SECONDS", 0.0, warnings)
    return Settings(
        pod=env.get("POD_NAME", "") or "unknown",
        uid=env.get("POD_UID", ""),
        ip=env.get("POD_IP", ""),
        agent_url=env.get("AGENT_URL", "") or DEFAULT_AGENT_URL,
        budget_s=budget,
        log_dir=env.get("PRESTOP_LOG_DIR", "") or DEFAULT_LOG_DIR,
        request_timeout_s=request_timeout,
        warnings=tuple(warnings),
    )


# ---- one attempt ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What one attempt produced. `final` ends the loop; `safe` is the agent's confirmation."""

    line: str
    final: bool = False
    safe: bool = False
    retry_after_s: float | None = None
    expected_s: float | None = None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def _excerpt(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text[:EXCERPT_CHARS] + ("..." if len(text) > EXCERPT_CHARS else "")


def _hint(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8")) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def interpret(n: int, status: int, raw: bytes, duration: float) -> Reply:
    """Turn an HTTP answer into a record line and a decision (200 ends; 202/409/5xx retry; other 4xx end)."""
    body = _parse(raw)
    if status == 200 and isinstance(body.get("safe_to_stop"), bool):
        outcome = body.get("outcome") or "-"
        new_main = body.get("new_main") or "-"
        head = "SUCCESS" if body["safe_to_stop"] else "NOT SAFE"
        line = f"Attempt {n}: {head} (status=200, duration={duration:.3f}s)"
        line += f" outcome={outcome} new_main={new_main}"
        if not body["safe_to_stop"] and body.get("detail"):
            line += f" detail={_excerpt(str(body['detail']).encode())}"
        return Reply(line, final=True, safe=body["safe_to_stop"])
    line = f"Attempt {n}: HTTP {status} (duration={duration:.3f}s) {_excerpt(raw)}".rstrip()
    retry = status in RETRY_STATUSES or status >= 500 or status == 200  # 200 without a verdict: malformed
    after, expected = _hint(body, "retry_after_s"), _hint(body, "expected_s")
    return Reply(line, final=not retry, retry_after_s=after, expected_s=expected)


def _is_timeout(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)
    return isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)


def attempt(n: int, url: str, payload: dict[str, Any], timeout_s: float, clock: Callable[[], float]) -> Reply:
    """POST once; never raises for network trouble, it becomes a record line."""
    data = json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    started = clock()
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            raw = resp.read(65536)
            return interpret(n, resp.status, raw, clock() - started)
    except urllib.error.HTTPError as exc:
        raw = exc.read(65536) if exc.fp is not None else b""
        return interpret(n, exc.code, raw, clock() - started)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if _is_timeout(exc):
            return Reply(f"Attempt {n}: TIMEOUT after {clock() - started:.3f}s")
        reason = getattr(exc, "reason", None)
        cause: BaseException = reason if isinstance(reason, BaseException) else exc
        return Reply(f"Attempt {n}: ERROR {type(cause).__name__}: {cause}")


# ---- the loop ------------------------------------------------------------------------------------------


def process_age_s() -> float:
    """Seconds since this process was exec'd (Linux /proc; 0 elsewhere): interpreter start-up and imports
    count against the budget too, so the kubelet's clock and ours agree."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _reserve(budget_s: float) -> float:
    """Time kept back at the end of the budget for the final lines (and the guard behind it)."""
    return min(1.0, budget_s * 0.1)


def run(
    cfg: Settings,
    rec: Recorder,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    spent_s: float = 0.0,
) -> bool:
    """Call the agent until it confirms or the budget (less `spent_s` already used) runs out.
    True when it is safe to stop."""
    deadline = clock() + cfg.budget_s - _reserve(cfg.budget_s) - spent_s
    backoff = BACKOFF_START_S
    hold_s = cfg.request_timeout_s
    n = 0
    while True:
        remaining = deadline - clock()
        if remaining <= 0.05:
            rec.line(f"GIVE UP: budget of {cfg.budget_s:g}s spent after {n} attempt(s); not confirmed safe")
            return False
        n += 1
        rec.line(f"Attempt {n}: POST {cfg.url}")
        timeout = min(remaining, hold_s) if hold_s > 0 else remaining
        payload = {"pod": cfg.pod, "uid": cfg.uid, "budget_s": round(remaining, 3)}
        reply = attempt(n, cfg.url, payload, timeout, clock)
        rec.line(reply.line)
        if reply.final:
            return reply.safe
        if reply.expected_s:
            hold_s = reply.expected_s + 2.0  # the agent said how long it may hold the next request
        delay = reply.retry_after_s if reply.retry_after_s is not None else backoff
        delay = min(delay, BACKOFF_CAP_S, max(0.0, deadline - clock()))
        backoff = min(backoff * 2, BACKOFF_CAP_S)
        if delay > 0:
            sleep(delay)


def _install_guard(budget_s: float, rec: Recorder, spent_s: float) -> None:
    """Hard guard (I6): shortly before the budget ends, write the last lines and exit 1, whatever runs.
    SIGTERM/SIGINT (the hook being killed) also end the record properly."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        rec.line(f"TIMEOUT: budget of {budget_s:g}s reached; stopping the hook")
        rec.line("END PreStop hook (exit=1)")
        os._exit(1)

    def on_term(signum: int, frame: FrameType | None) -> None:
        rec.line(f"TERMINATED by signal {signal.Signals(signum).name}; not confirmed safe")
        rec.line("END PreStop hook (exit=1)")
        os._exit(1)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.setitimer(signal.ITIMER_REAL, max(0.05, budget_s - _reserve(budget_s) / 2 - spent_s))


def main(env: dict[str, str] | None = None) -> int:
    """Entry point: START, prune, the loop, END. Returns the exit code."""
    spent = min(process_age_s(), 5.0)  # start-up time; capped in case /proc disagrees wildly
    cfg = load_settings(dict(os.environ) if env is None else env)
    path = record_path(cfg.log_dir, cfg.uid, cfg.ip)
    rec = Recorder(path)
    rec.line(f"START PreStop hook (pod={cfg.pod} budget={cfg.budget_s:g}s)")
    _install_guard(cfg.budget_s, rec, spent)
    code = 1
    try:
        for warning in cfg.warnings:
            rec.line(warning)
        if rec.path is not None:
            prune(cfg.log_dir, KEEP_FILES, current=path)
        code = 0 if run(cfg, rec, spent_s=spent) else 1
    except Exception as exc:  # the record must say why, and END must still be written
        rec.line(f"ERROR unexpected {type(exc).__name__}: {exc}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        rec.line(f"END PreStop hook (exit={code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
