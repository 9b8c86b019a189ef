"""Agent settings: environment variables -> one typed, frozen `Settings` record of small groups.

Role: the single place that reads the agent's environment (DESIGN "Agent settings"), applies the
defaults (each named once, in `coordinator.core.defaults`), validates every value and reports *all*
problems at once, naming each variable. The variable names are the chart's contract and never change;
the record groups them by what they are about (identity, cluster, Memgraph, election, policy, preStop,
API, logging). `exit_on_error` turns the problems into `config error: ...` on stderr and exit code 2.

Must never: read `os.environ` itself (the caller passes the mapping), do I/O beyond the stderr
message of `exit_on_error`, or show the Memgraph password or the API token in a repr or message.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TypeVar

from coordinator.core import defaults as d
from coordinator.core.model import DEFAULT_RESEED, DEFAULT_SYNC_MODE, Policy, ReplicaMode, ReseedPolicy

T = TypeVar("T")

_TRUE = ("true", "1")
_FALSE = ("false", "0")
_SYNC_MODES = ("STRICT_SYNC", "SYNC", "ASYNC")
_RESEED = tuple(p.value for p in ReseedPolicy)
_LOG_FORMATS = ("logfmt", "json")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_STATUS_AUTH = ("open", "token")  # HA_STATUS_AUTH: who may read /api/v1/status and /api/v1/local
_HIDDEN = "'***'"


class ConfigError(ValueError):
    """One or more settings are missing or invalid; `problems` holds one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _repr(obj: object, secrets: frozenset[str] = frozenset()) -> str:
    """`Name(field=value, ...)` with every non-empty secret shown as '***'."""
    parts = []
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        parts.append(f"{f.name}={_HIDDEN if f.name in secrets and value else repr(value)}")
    return f"{type(obj).__name__}({', '.join(parts)})"


@dataclass(frozen=True)
class Identity:
    """Who this agent is: its pod (POD_NAME, POD_NAMESPACE, POD_UID, POD_IP; the downward API)."""

    pod_name: str
    namespace: str
    uid: str
    ip: str


@dataclass(frozen=True)
class ClusterRef:
    """The StatefulSet this agent belongs to and how to reach the API server."""

    statefulset: str  # HA_STATEFULSET
    pod_selector: str  # HA_POD_SELECTOR
    # HA_HEADLESS_SERVICE, optional: a headless governing Service for replica addresses
    # `<pod>.<service>:<port>`; empty (the chart's case: the official StatefulSet's serviceName is a
    # ClusterIP Service) addresses replicas by pod IP (docs/architecture.md "Replica addresses").
    headless_service: str = ""
    kubeconfig: str | None = None  # KUBECONFIG; None: the in-cluster config


@dataclass(frozen=True, repr=False)
class MemgraphSettings:
    """The local Memgraph (MEMGRAPH_*) and the ports every pod's Memgraph listens on."""

    host: str = d.MEMGRAPH_HOST
    bolt_port: int = d.BOLT_PORT
    user: str = ""
    password: str = ""
    replication_port: int = d.REPLICATION_PORT
    # MEMGRAPH_DATA_DIRECTORY: the local Memgraph's --data-directory; with the pod's process namespace
    # shared, the agent finds its Memgraph's process by it (fencing, stopped-process detection). "": off
    data_directory: str = ""

    def __repr__(self) -> str:
        return _repr(self, frozenset({"password"}))


@dataclass(frozen=True)
class ElectionSettings:
    """The Lease election (HA_LEASE_*, HA_RENEW_DEADLINE_SECONDS, HA_RETRY_PERIOD_SECONDS)."""

    lease_name: str
    lease_duration_s: float = d.LEASE_DURATION_S
    renew_deadline_s: float = d.RENEW_DEADLINE_S
    retry_period_s: float = d.RETRY_PERIOD_S


@dataclass(frozen=True)
class PolicySettings:
    """The coordinator's decision knobs and pace."""

    reconcile_interval_s: float = d.RECONCILE_INTERVAL_S
    failover_after_s: float = d.FAILOVER_AFTER_S
    sync_mode: ReplicaMode = DEFAULT_SYNC_MODE
    allow_async_failover: bool = d.ALLOW_ASYNC_FAILOVER


@dataclass(frozen=True)
class DataSettings:
    """Diverged data (I4): the policy and, for the re-seed init container, where the volume's data lives."""

    reseed: ReseedPolicy = DEFAULT_RESEED  # HA_RESEED: auto | manual
    data_dir: str = d.DATA_DIR  # HA_DATA_DIR: Memgraph's --data-directory
    archive_dir: str = d.ARCHIVE_DIR  # HA_ARCHIVE_DIR: on the same volume, outside data_dir
    reserve_bytes: int = d.RESEED_RESERVE_BYTES  # HA_RESEED_RESERVE_BYTES: free space kept beyond a copy


@dataclass(frozen=True)
class PrestopSettings:
    """Pod termination: the hand-over budget, the replica drain, where the preStop record goes."""

    budget_s: float = d.PRESTOP_BUDGET_S
    drain_s: float = d.DRAIN_S
    log_dir: str = d.LOG_DIR


@dataclass(frozen=True, repr=False)
class ApiSettings:
    """The agent's HTTP API (AGENT_BIND, AGENT_PORT, HA_API_TOKEN for the operator routes, HA_FENCE_TOKEN
    for the agents' own POST /api/v1/fence only: the chart generates it, so fencing works without an
    operator token and without opening the operator routes)."""

    bind: str = d.AGENT_BIND
    port: int = d.AGENT_PORT
    token: str | None = None
    fence_token: str | None = None
    # HA_STATUS_AUTH: "token": GET /api/v1/status and /api/v1/local ask for the token as well; "open": not
    status_auth: str = d.STATUS_AUTH

    def __repr__(self) -> str:
        return _repr(self, frozenset({"token", "fence_token"}))


@dataclass(frozen=True)
class LogSettings:
    format: str = d.LOG_FORMAT  # HA_LOG_FORMAT: logfmt | json
    level: str = d.LOG_LEVEL  # HA_LOG_LEVEL


@dataclass(frozen=True)
class Settings:
    """Everything the agent reads from its environment, typed, validated and grouped."""

    identity: Identity
    cluster: ClusterRef
    election: ElectionSettings
    memgraph: MemgraphSettings = field(default_factory=MemgraphSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    prestop: PrestopSettings = field(default_factory=PrestopSettings)
    data: DataSettings = field(default_factory=DataSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    log: LogSettings = field(default_factory=LogSettings)

    def planner_policy(self) -> Policy:
        """The decision knobs the planner needs (coordinator.core.model.Policy)."""
        return Policy(
            sync_mode=self.policy.sync_mode,
            failover_after_s=self.policy.failover_after_s,
            allow_async_failover=self.policy.allow_async_failover,
            replication_port=self.memgraph.replication_port,
            headless_service=self.cluster.headless_service,
            reseed=self.data.reseed,
        )


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


def _bytes(value: str) -> int:
    try:
        amount = int(value)
    except ValueError:
        raise ValueError("expected a whole number of bytes >= 0") from None
    if amount < 0:
        raise ValueError("expected a whole number of bytes >= 0")
    return amount


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("expected an IP address") from None


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build Settings from `env`; raise ConfigError listing every missing or invalid variable."""
    r = _Reader(env)
    statefulset = r.required("HA_STATEFULSET")
    identity = Identity(
        pod_name=r.required("POD_NAME"),
        namespace=r.required("POD_NAMESPACE"),
        uid=r.required("POD_UID"),
        ip=_ip_or_problem(r),
    )
    cluster = ClusterRef(
        statefulset=statefulset,
        pod_selector=r.required("HA_POD_SELECTOR"),
        headless_service=r.text("HA_HEADLESS_SERVICE", ""),
        kubeconfig=r.raw("KUBECONFIG"),
    )
    settings = Settings(
        identity=identity,
        cluster=cluster,
        memgraph=MemgraphSettings(
            host=r.text("MEMGRAPH_HOST", d.MEMGRAPH_HOST),
            bolt_port=r.parsed("MEMGRAPH_BOLT_PORT", d.BOLT_PORT, _port),
            user=r.text("MEMGRAPH_USER", ""),
            password=r.secret("MEMGRAPH_PASSWORD"),
            replication_port=r.parsed("MEMGRAPH_REPLICATION_PORT", d.REPLICATION_PORT, _port),
            data_directory=r.text("MEMGRAPH_DATA_DIRECTORY", ""),
        ),
        election=ElectionSettings(
            lease_name=r.text("HA_LEASE_NAME", d.lease_name(statefulset) if statefulset else ""),
            lease_duration_s=r.parsed("HA_LEASE_DURATION_SECONDS", d.LEASE_DURATION_S, _positive_seconds),
            renew_deadline_s=r.parsed("HA_RENEW_DEADLINE_SECONDS", d.RENEW_DEADLINE_S, _positive_seconds),
            retry_period_s=r.parsed("HA_RETRY_PERIOD_SECONDS", d.RETRY_PERIOD_S, _positive_seconds),
        ),
        policy=PolicySettings(
            reconcile_interval_s=r.parsed(
                "HA_RECONCILE_INTERVAL_SECONDS", d.RECONCILE_INTERVAL_S, _positive_seconds
            ),
            failover_after_s=r.parsed("HA_FAILOVER_AFTER_SECONDS", d.FAILOVER_AFTER_S, _positive_seconds),
            sync_mode=ReplicaMode(
                r.parsed("HA_SYNC_MODE", d.SYNC_MODE, _one_of(_SYNC_MODES, True)).lower()
            ),
            allow_async_failover=r.parsed("HA_ALLOW_ASYNC_FAILOVER", d.ALLOW_ASYNC_FAILOVER, _boolean),
        ),
        prestop=PrestopSettings(
            budget_s=r.parsed("HA_PRESTOP_BUDGET_SECONDS", d.PRESTOP_BUDGET_S, _positive_seconds),
            drain_s=r.parsed("HA_DRAIN_SECONDS", d.DRAIN_S, _non_negative_seconds),
            log_dir=r.text("HA_LOG_DIR", d.LOG_DIR),
        ),
        data=DataSettings(
            reseed=ReseedPolicy(r.parsed("HA_RESEED", DEFAULT_RESEED.value, _one_of(_RESEED, False))),
            data_dir=r.text("HA_DATA_DIR", d.DATA_DIR),
            archive_dir=r.text("HA_ARCHIVE_DIR", d.ARCHIVE_DIR),
            reserve_bytes=r.parsed("HA_RESEED_RESERVE_BYTES", d.RESEED_RESERVE_BYTES, _bytes),
        ),
        api=ApiSettings(
            bind=r.text("AGENT_BIND", d.AGENT_BIND),
            port=r.parsed("AGENT_PORT", d.AGENT_PORT, _port),
            token=r.raw("HA_API_TOKEN"),
            fence_token=r.raw("HA_FENCE_TOKEN"),
            status_auth=r.parsed("HA_STATUS_AUTH", d.STATUS_AUTH, _one_of(_STATUS_AUTH, False)),
        ),
        log=LogSettings(
            format=r.parsed("HA_LOG_FORMAT", d.LOG_FORMAT, _one_of(_LOG_FORMATS, False)),
            level=r.parsed("HA_LOG_LEVEL", d.LOG_LEVEL, _one_of(_LOG_LEVELS, True)),
        ),
    )
    r.problems.extend(_cross_checks(settings.election, r.failed))
    if settings.api.status_auth == "token" and not settings.api.token:
        r.problems.append("HA_STATUS_AUTH: token needs HA_API_TOKEN (the token the status endpoint asks for)")
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


def _cross_checks(s: ElectionSettings, failed: set[str]) -> list[str]:
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
