"""Agent settings: environment variables -> one typed, frozen `Settings` record.

Role: the single place that reads the agent's environment (DESIGN "Agent settings"), applies the
defaults, validates every value and reports *all* problems at once, naming each variable.
`exit_on_error` turns those problems into `config error: ...` on stderr and exit code 2.

Must never: read `os.environ` itself (the caller passes the mapping), do I/O beyond the stderr
message of `exit_on_error`, or show the Memgraph password or the API token in a repr or message.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TypeVar

from coordinator.core.model import Policy, ReplicaMode

T = TypeVar("T")

_TRUE = ("true", "1")
_FALSE = ("false", "0")
_SYNC_MODES = ("STRICT_SYNC", "SYNC", "ASYNC")
_LOG_FORMATS = ("logfmt", "json")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SECRET_FIELDS = frozenset({"memgraph_password", "api_token"})


class ConfigError(ValueError):
    """One or more settings are missing or invalid; `problems` holds one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything the agent reads from its environment, typed and validated."""

    pod_name: str
    pod_namespace: str
    pod_uid: str
    pod_ip: str
    statefulset: str
    pod_selector: str
    headless_service: str
    memgraph_host: str = "127.0.0.1"
    memgraph_bolt_port: int = 7687
    memgraph_user: str = ""
    memgraph_password: str = ""
    memgraph_replication_port: int = 10000
    lease_name: str = ""
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    reconcile_interval_s: float = 2.0
    failover_after_s: float = 5.0
    sync_mode: ReplicaMode = ReplicaMode.STRICT_SYNC
    allow_async_failover: bool = False
    prestop_budget_s: float = 600.0
    drain_s: float = 5.0
    log_dir: str = "/var/log/memgraph"
    log_format: str = "logfmt"
    log_level: str = "INFO"
    api_token: str | None = None
    agent_bind: str = "0.0.0.0"
    agent_port: int = 8080
    kubeconfig: str | None = None

    def policy(self) -> Policy:
        """The decision knobs the planner needs (coordinator.core.model.Policy)."""
        return Policy(
            sync_mode=self.sync_mode,
            failover_after_s=self.failover_after_s,
            allow_async_failover=self.allow_async_failover,
            replication_port=self.memgraph_replication_port,
            headless_service=self.headless_service,
        )

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value:
                parts.append(f"{f.name}='***'")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    __str__ = __repr__


class _Reader:
    """Reads variables from the mapping, collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.failed: set[str] = set()

    def raw(self, name: str) -> str | None:
        """The stripped value, or None when unset or empty (an empty value means 'use the default')."""
        value = self.env.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def required(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            self.problems.append(f"{name}: required, not set")
            return ""
        return value

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def secret(self, name: str) -> str:
        """A secret is taken verbatim (no stripping): spaces may be part of a password."""
        return self.env.get(name, "")

    def parsed(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            self.problems.append(f"{name}: {exc}, got {value!r}")
            self.failed.add(name)
            return default


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ValueError("expected a port number 1-65535") from None
    if not 1 <= port <= 65535:
        raise ValueError("expected a port number 1-65535")
    return port


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("expected a positive number of seconds") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError("expected a positive number of seconds")
    return seconds


def _non_negative_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("expected a number of seconds >= 0") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError("expected a number of seconds >= 0")
    return seconds


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false (or 1/0)")


def _one_of(choices: tuple[str, ...], upper: bool) -> Callable[[str], str]:
    def parse(value: str) -> str:
        normalized = value.upper() if upper else value.lower()
        if normalized not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return normalized

    return parse


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("expected an IP address") from None


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build Settings from `env`; raise ConfigError listing every missing or invalid variable."""
    r = _Reader(env)
    statefulset = r.required("HA_STATEFULSET")
    settings = Settings(
        pod_name=r.required("POD_NAME"),
        pod_namespace=r.required("POD_NAMESPACE"),
        pod_uid=r.required("POD_UID"),
        pod_ip=_ip_or_problem(r),
        statefulset=statefulset,
        pod_selector=r.required("HA_POD_SELECTOR"),
        headless_service=r.required("HA_HEADLESS_SERVICE"),
        memgraph_host=r.text("MEMGRAPH_HOST", "127.0.0.1"),
        memgraph_bolt_port=r.parsed("MEMGRAPH_BOLT_PORT", 7687, _port),
        memgraph_user=r.text("MEMGRAPH_USER", ""),
        memgraph_password=r.secret("MEMGRAPH_PASSWORD"),
        memgraph_replication_port=r.parsed("MEMGRAPH_REPLICATION_PORT", 10000, _port),
        lease_name=r.text("HA_LEASE_NAME", f"{statefulset}-ha" if statefulset else ""),
        lease_duration_s=r.parsed("HA_LEASE_DURATION_SECONDS", 15.0, _positive_seconds),
        renew_deadline_s=r.parsed("HA_RENEW_DEADLINE_SECONDS", 10.0, _positive_seconds),
        retry_period_s=r.parsed("HA_RETRY_PERIOD_SECONDS", 2.0, _positive_seconds),
        reconcile_interval_s=r.parsed("HA_RECONCILE_INTERVAL_SECONDS", 2.0, _positive_seconds),
        failover_after_s=r.parsed("HA_FAILOVER_AFTER_SECONDS", 5.0, _positive_seconds),
        sync_mode=ReplicaMode(r.parsed("HA_SYNC_MODE", "STRICT_SYNC", _one_of(_SYNC_MODES, True)).lower()),
        allow_async_failover=r.parsed("HA_ALLOW_ASYNC_FAILOVER", False, _boolean),
        prestop_budget_s=r.parsed("HA_PRESTOP_BUDGET_SECONDS", 600.0, _positive_seconds),
        drain_s=r.parsed("HA_DRAIN_SECONDS", 5.0, _non_negative_seconds),
        log_dir=r.text("HA_LOG_DIR", "/var/log/memgraph"),
        log_format=r.parsed("HA_LOG_FORMAT", "logfmt", _one_of(_LOG_FORMATS, False)),
        log_level=r.parsed("HA_LOG_LEVEL", "INFO", _one_of(_LOG_LEVELS, True)),
        api_token=r.raw("HA_API_TOKEN"),
        agent_bind=r.text("AGENT_BIND", "0.0.0.0"),
        agent_port=r.parsed("AGENT_PORT", 8080, _port),
        kubeconfig=r.raw("KUBECONFIG"),
    )
    r.problems.extend(_cross_checks(settings, r.failed))
    if r.problems:
        raise ConfigError(r.problems)
    return settings


def _ip_or_problem(r: _Reader) -> str:
    value = r.required("POD_IP")
    if not value:
        return ""
    try:
        return _ip(value)
    except ValueError as exc:
        r.problems.append(f"POD_IP: {exc}, got {value!r}")
        return value


def _cross_checks(s: Settings, failed: set[str]) -> list[str]:
    """Relations between values; only checked when both values parsed (else the first error says it)."""
    problems = []
    lease, renew, retry = "HA_LEASE_DURATION_SECONDS", "HA_RENEW_DEADLINE_SECONDS", "HA_RETRY_PERIOD_SECONDS"
    if not {lease, renew} & failed and s.renew_deadline_s >= s.lease_duration_s:
        problems.append(
            f"HA_RENEW_DEADLINE_SECONDS: must be less than HA_LEASE_DURATION_SECONDS "
            f"({s.renew_deadline_s:g} >= {s.lease_duration_s:g})"
        )
    if not {renew, retry} & failed and s.retry_period_s >= s.renew_deadline_s:
        problems.append(
            f"HA_RETRY_PERIOD_SECONDS: must be less than HA_RENEW_DEADLINE_SECONDS "
            f"({s.retry_period_s:g} >= {s.renew_deadline_s:g})"
        )
    return problems


def exit_on_error(env: Mapping[str, str]) -> Settings:
    """load_settings, or print `config error: ...` to stderr and exit with code 2."""
    try:
        return load_settings(env)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
