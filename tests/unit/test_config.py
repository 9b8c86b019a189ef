"""coordinator.edge.settings: defaults, validation messages naming the variable, several problems at once,
secrets."""

from __future__ import annotations

import pytest

from coordinator.core.model import Policy, ReplicaMode
from coordinator.edge.settings import ConfigError, Settings, exit_on_error, load_settings

REQUIRED = {
    "POD_NAME": "memgraph-1",
    "POD_NAMESPACE": "db",
    "POD_UID": "0b1c2d3e-uid",
    "POD_IP": "10.1.2.3",
    "HA_STATEFULSET": "memgraph",
    "HA_POD_SELECTOR": "app.kubernetes.io/name=memgraph",
}


def env(**overrides: str) -> dict[str, str]:
    out = dict(REQUIRED)
    out.update(overrides)
    return out


def problems_of(e: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(e)
    return info.value.problems


def test_required_values_are_read_verbatim() -> None:
    s = load_settings(env())
    assert (s.identity.pod_name, s.identity.namespace, s.identity.uid, s.identity.ip) == (
        "memgraph-1",
        "db",
        "0b1c2d3e-uid",
        "10.1.2.3",
    )
    assert (s.cluster.statefulset, s.cluster.pod_selector, s.cluster.headless_service) == (
        "memgraph",
        "app.kubernetes.io/name=memgraph",
        "",
    )


def test_defaults_match_the_design_table() -> None:
    s = load_settings(env())
    assert s.memgraph.host == "127.0.0.1"
    assert s.memgraph.bolt_port == 7687
    assert s.memgraph.user == "" and s.memgraph.password == ""
    assert s.memgraph.replication_port == 10000
    assert s.election.lease_name == "memgraph-ha"
    e = s.election
    assert (e.lease_duration_s, e.renew_deadline_s, e.retry_period_s) == (15.0, 10.0, 2.0)
    assert s.policy.reconcile_interval_s == 2.0
    assert s.policy.failover_after_s == 5.0
    assert s.policy.sync_mode is ReplicaMode.STRICT_SYNC
    assert s.policy.allow_async_failover is False
    assert s.prestop.budget_s == 600.0
    assert s.prestop.drain_s == 5.0
    assert s.prestop.log_dir == "/var/log/memgraph"
    assert s.log.format == "logfmt"
    assert s.log.level == "INFO"
    assert s.api.token is None
    assert s.api.bind == "0.0.0.0" and s.api.port == 8080
    assert s.cluster.kubeconfig is None


def test_every_optional_variable_overrides_its_default() -> None:
    s = load_settings(
        env(
            MEMGRAPH_HOST="127.0.0.7",
            MEMGRAPH_BOLT_PORT="17687",
            MEMGRAPH_USER="ha",
            MEMGRAPH_PASSWORD=" pa ss ",
            MEMGRAPH_REPLICATION_PORT="20000",
            HA_LEASE_NAME="custom-lease",
            HA_LEASE_DURATION_SECONDS="3",
            HA_RENEW_DEADLINE_SECONDS="2",
            HA_RETRY_PERIOD_SECONDS="0.5",
            HA_RECONCILE_INTERVAL_SECONDS="0.25",
            HA_FAILOVER_AFTER_SECONDS="1.5",
            HA_SYNC_MODE="async",
            HA_ALLOW_ASYNC_FAILOVER="TRUE",
            HA_PRESTOP_BUDGET_SECONDS="30",
            HA_DRAIN_SECONDS="0",
            HA_LOG_DIR="/tmp/x",
            HA_LOG_FORMAT="JSON",
            HA_LOG_LEVEL="debug",
            HA_API_TOKEN="tok-123",
            AGENT_BIND="127.0.0.7",
            AGENT_PORT="18080",
            KUBECONFIG="/tmp/kubeconfig",
        )
    )
    assert (s.memgraph.host, s.memgraph.bolt_port, s.memgraph.replication_port) == ("127.0.0.7", 17687, 20000)
    assert (s.memgraph.user, s.memgraph.password) == ("ha", " pa ss ")
    assert s.election.lease_name == "custom-lease"
    e = s.election
    assert (e.lease_duration_s, e.renew_deadline_s, e.retry_period_s) == (3.0, 2.0, 0.5)
    assert (s.policy.reconcile_interval_s, s.policy.failover_after_s) == (0.25, 1.5)
    assert s.policy.sync_mode is ReplicaMode.ASYNC and s.policy.allow_async_failover is True
    assert (s.prestop.budget_s, s.prestop.drain_s, s.prestop.log_dir) == (30.0, 0.0, "/tmp/x")
    assert (s.log.format, s.log.level, s.api.token) == ("json", "DEBUG", "tok-123")
    assert (s.api.bind, s.api.port, s.cluster.kubeconfig) == ("127.0.0.7", 18080, "/tmp/kubeconfig")


def test_headless_service_is_optional_and_empty_means_pod_ip_addresses() -> None:
    assert load_settings(env()).cluster.headless_service == ""
    assert load_settings(env(HA_HEADLESS_SERVICE="memgraph-headless")).cluster.headless_service == (
        "memgraph-headless"
    )


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_missing_required_variable_is_named(name: str) -> None:
    e = env()
    del e[name]
    assert problems_of(e) == [f"{name}: required, not set"]


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_blank_required_variable_counts_as_missing(name: str) -> None:
    assert problems_of(env(**{name: "  "})) == [f"{name}: required, not set"]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MEMGRAPH_BOLT_PORT", "0", "MEMGRAPH_BOLT_PORT: expected a port number 1-65535, got '0'"),
        ("MEMGRAPH_BOLT_PORT", "65536", "MEMGRAPH_BOLT_PORT: expected a port number 1-65535, got '65536'"),
        (
            "MEMGRAPH_REPLICATION_PORT",
            "ten",
            "MEMGRAPH_REPLICATION_PORT: expected a port number 1-65535, got 'ten'",
        ),
        ("AGENT_PORT", "-1", "AGENT_PORT: expected a port number 1-65535, got '-1'"),
        (
            "HA_LEASE_DURATION_SECONDS",
            "0",
            "HA_LEASE_DURATION_SECONDS: expected a positive number of seconds, got '0'",
        ),
        (
            "HA_RENEW_DEADLINE_SECONDS",
            "x",
            "HA_RENEW_DEADLINE_SECONDS: expected a positive number of seconds, got 'x'",
        ),
        (
            "HA_RETRY_PERIOD_SECONDS",
            "-2",
            "HA_RETRY_PERIOD_SECONDS: expected a positive number of seconds, got '-2'",
        ),
        (
            "HA_RECONCILE_INTERVAL_SECONDS",
            "nan",
            "HA_RECONCILE_INTERVAL_SECONDS: expected a positive number of seconds, got 'nan'",
        ),
        (
            "HA_FAILOVER_AFTER_SECONDS",
            "inf",
            "HA_FAILOVER_AFTER_SECONDS: expected a positive number of seconds, got 'inf'",
        ),
        (
            "HA_PRESTOP_BUDGET_SECONDS",
            "0",
            "HA_PRESTOP_BUDGET_SECONDS: expected a positive number of seconds, got '0'",
        ),
        ("HA_DRAIN_SECONDS", "-1", "HA_DRAIN_SECONDS: expected a number of seconds >= 0, got '-1'"),
        ("HA_SYNC_MODE", "FOO", "HA_SYNC_MODE: expected one of STRICT_SYNC, SYNC, ASYNC, got 'FOO'"),
        ("HA_RESEED", "sometimes", "HA_RESEED: expected one of auto, manual, got 'sometimes'"),
        (
            "HA_RESEED_RESERVE_BYTES",
            "-5",
            "HA_RESEED_RESERVE_BYTES: expected a whole number of bytes >= 0, got '-5'",
        ),
        (
            "HA_ALLOW_ASYNC_FAILOVER",
            "yes",
            "HA_ALLOW_ASYNC_FAILOVER: expected true or false (or 1/0), got 'yes'",
        ),
        ("HA_LOG_FORMAT", "text", "HA_LOG_FORMAT: expected one of logfmt, json, got 'text'"),
        (
            "HA_LOG_LEVEL",
            "loud",
            "HA_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'",
        ),
        ("POD_IP", "not-an-ip", "POD_IP: expected an IP address, got 'not-an-ip'"),
    ],
)
def test_bad_value_message_names_the_variable_and_the_value(name: str, value: str, expected: str) -> None:
    assert problems_of(env(**{name: value})) == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("True", True), ("1", True), ("FALSE", False), ("0", False)]
)
def test_booleans_accept_true_false_and_1_0_in_any_case(raw: str, expected: bool) -> None:
    assert load_settings(env(HA_ALLOW_ASYNC_FAILOVER=raw)).policy.allow_async_failover is expected


@pytest.mark.parametrize(
    ("raw", "mode"), [("STRICT_SYNC", ReplicaMode.STRICT_SYNC), ("sync", ReplicaMode.SYNC)]
)
def test_sync_mode_is_case_insensitive(raw: str, mode: ReplicaMode) -> None:
    assert load_settings(env(HA_SYNC_MODE=raw)).policy.sync_mode is mode


def test_renew_deadline_must_be_shorter_than_lease_duration() -> None:
    assert problems_of(
        env(HA_LEASE_DURATION_SECONDS="10", HA_RENEW_DEADLINE_SECONDS="10", HA_RETRY_PERIOD_SECONDS="1")
    ) == ["HA_RENEW_DEADLINE_SECONDS: must be less than HA_LEASE_DURATION_SECONDS (10 >= 10)"]


def test_retry_period_must_be_shorter_than_renew_deadline() -> None:
    assert problems_of(env(HA_RETRY_PERIOD_SECONDS="10")) == [
        "HA_RETRY_PERIOD_SECONDS: must be less than HA_RENEW_DEADLINE_SECONDS (10 >= 10)"
    ]


def test_unparsable_timing_is_not_also_reported_as_an_ordering_problem() -> None:
    assert problems_of(env(HA_RENEW_DEADLINE_SECONDS="soon", HA_LEASE_DURATION_SECONDS="5")) == [
        "HA_RENEW_DEADLINE_SECONDS: expected a positive number of seconds, got 'soon'"
    ]


def test_several_problems_are_reported_together_in_one_error() -> None:
    e = env(HA_SYNC_MODE="FOO", AGENT_PORT="0")
    del e["POD_NAME"]
    del e["HA_POD_SELECTOR"]
    with pytest.raises(ConfigError) as info:
        load_settings(e)
    assert info.value.problems == [
        "POD_NAME: required, not set",
        "HA_POD_SELECTOR: required, not set",
        "HA_SYNC_MODE: expected one of STRICT_SYNC, SYNC, ASYNC, got 'FOO'",
        "AGENT_PORT: expected a port number 1-65535, got '0'",
    ]
    assert str(info.value) == "; ".join(info.value.problems)


def test_lease_name_defaults_to_statefulset_ha_and_can_be_set() -> None:
    assert load_settings(env(HA_STATEFULSET="graph")).election.lease_name == "graph-ha"
    assert load_settings(env(HA_LEASE_NAME="other")).election.lease_name == "other"


def test_empty_optional_values_fall_back_to_defaults() -> None:
    s = load_settings(env(MEMGRAPH_BOLT_PORT="", HA_API_TOKEN="", KUBECONFIG="", HA_LOG_FORMAT=""))
    assert (s.memgraph.bolt_port, s.api.token, s.cluster.kubeconfig, s.log.format) == (
        7687, None, None, "logfmt")


def test_policy_carries_the_decision_knobs() -> None:
    s = load_settings(
        env(
            HA_SYNC_MODE="SYNC",
            HA_FAILOVER_AFTER_SECONDS="7",
            HA_ALLOW_ASYNC_FAILOVER="1",
            MEMGRAPH_REPLICATION_PORT="10001",
            HA_HEADLESS_SERVICE="memgraph-headless",
        )
    )
    assert s.planner_policy() == Policy(
        sync_mode=ReplicaMode.SYNC,
        failover_after_s=7.0,
        allow_async_failover=True,
        replication_port=10001,
        headless_service="memgraph-headless",
    )


def test_repr_and_str_hide_password_and_token() -> None:
    s = load_settings(env(MEMGRAPH_USER="ha", MEMGRAPH_PASSWORD="s3cr3t-pw", HA_API_TOKEN="t0k3n-value",
                          HA_FENCE_TOKEN="f3nce-value"))
    assert s.api.fence_token == "f3nce-value"
    for text in (repr(s), str(s), f"{s}", repr([s])):
        assert "s3cr3t-pw" not in text and "t0k3n-value" not in text and "f3nce-value" not in text
        assert "password='***'" in text and "token='***'" in text and "fence_token='***'" in text
        assert "user='ha'" in text


def test_settings_are_frozen() -> None:
    s = load_settings(env())
    for record, name in ((s, "identity"), (s.identity, "pod_name"), (s.election, "lease_name"),
                         (s.memgraph, "password"), (s.policy, "sync_mode"), (s.api, "token")):
        with pytest.raises(AttributeError):
            setattr(record, name, "other")
    assert isinstance(s, Settings)


def test_exit_on_error_prints_config_error_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    e = env(HA_SYNC_MODE="FOO")
    with pytest.raises(SystemExit) as info:
        exit_on_error(e)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == "config error: HA_SYNC_MODE: expected one of STRICT_SYNC, SYNC, ASYNC, got 'FOO'\n"


def test_exit_on_error_never_prints_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        exit_on_error(env(MEMGRAPH_PASSWORD="s3cr3t-pw", AGENT_PORT="x"))
    assert "s3cr3t-pw" not in capsys.readouterr().err


def test_exit_on_error_returns_settings_when_valid() -> None:
    assert exit_on_error(env()).identity.pod_name == "memgraph-1"


def test_status_auth_is_open_by_default_and_token_needs_the_api_token() -> None:
    assert load_settings(env()).api.status_auth == "open"
    assert load_settings(env(HA_STATUS_AUTH="token", HA_API_TOKEN="t")).api.status_auth == "token"
    assert load_settings(env(HA_STATUS_AUTH="TOKEN", HA_API_TOKEN="t0k")).api.status_auth == "token"
    assert problems_of(env(HA_STATUS_AUTH="token")) == [
        "HA_STATUS_AUTH: token needs HA_API_TOKEN (the token the status endpoint asks for)"
    ]
    assert problems_of(env(HA_STATUS_AUTH="basic")) == [
        "HA_STATUS_AUTH: expected one of open, token, got 'basic'"
    ]


def test_the_reseed_policy_and_the_data_volume_reach_the_planner_and_the_init_container() -> None:
    s = load_settings(env(HA_RESEED="MANUAL", HA_DATA_DIR="/data/mg_data", HA_ARCHIVE_DIR="/data/old",
                          HA_RESEED_RESERVE_BYTES="4096"))
    assert s.planner_policy().reseed.value == "manual"
    assert (s.data.data_dir, s.data.archive_dir, s.data.reserve_bytes) == ("/data/mg_data", "/data/old", 4096)
    assert load_settings(env()).planner_policy().reseed.value == "auto"
