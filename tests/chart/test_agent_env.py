"""The env the chart gives the containers is accepted by the product's own parsers.

Agent: `coordinator.edge.settings.load_settings(env)`; hook: `hooks.prestop.load_settings(env)`. fieldRef and
secretKeyRef entries are resolved to sample values, as the kubelet would.
"""

from __future__ import annotations

import pytest

from tests.chart import render as r

config = pytest.importorskip("coordinator.edge.settings", reason="the settings module is not written yet")
SECRETS = {
    ("memgraph-secrets", "USER"): "memgraph",
    ("memgraph-secrets", "PASSWORD"): "s3cret",
    ("mg-ha-token", "token"): "t0ken",
}


def test_agent_settings_parser_accepts_the_rendered_env(ha_docs) -> None:
    _, docs = ha_docs
    env = r.resolve_env(r.container(docs, "agent"), SECRETS)
    settings = config.load_settings(env)
    assert settings.identity.pod_name == r.SAMPLE_FIELDS["metadata.name"]
    assert settings.identity.namespace == r.NAMESPACE
    assert settings.cluster.statefulset == r.find(docs, "StatefulSet")["metadata"]["name"]
    assert settings.cluster.headless_service == ""  # replicas go by pod IP (no per-pod DNS in the chart)
    assert settings.api.port == r.container(docs, "agent")["ports"][0]["containerPort"]


def test_agent_settings_follow_the_tuned_values() -> None:
    env = r.resolve_env(r.container(r.render_set("ha-tuned"), "agent"), SECRETS)
    s = config.load_settings(env)
    p = s.policy
    assert (s.election.lease_name, p.sync_mode.value, p.allow_async_failover, s.log.format) == (
        "graph-election",
        "sync",
        True,
        "json",
    )
    e = s.election
    assert (e.lease_duration_s, e.renew_deadline_s, e.retry_period_s) == (20, 12, 3)
    assert s.policy.failover_after_s == 9
    assert (s.prestop.budget_s, s.prestop.drain_s, s.memgraph.bolt_port, s.memgraph.replication_port) == (
        120,
        0,
        7688,
        10001,
    )


def test_agent_settings_get_credentials_and_token_from_the_secrets() -> None:
    s = config.load_settings(r.resolve_env(r.container(r.render_set("ha"), "agent"), SECRETS))
    assert s.memgraph.user == "memgraph"
    assert s.memgraph.password == "s3cret"
    assert s.api.token == "t0ken"


def test_agent_settings_parser_rejects_the_env_without_a_required_setting() -> None:
    env = r.resolve_env(r.container(r.render_set("ha"), "agent"), SECRETS)
    del env["HA_STATEFULSET"]
    with pytest.raises(config.ConfigError, match="HA_STATEFULSET"):
        config.load_settings(env)


def test_hook_settings_from_the_memgraph_container_env(ha_docs) -> None:
    from hooks import prestop

    _, docs = ha_docs
    env = r.resolve_env(r.container(docs, "memgraph"), SECRETS)
    settings = prestop.load_settings(env)
    assert settings.warnings == ()
    agent_port = r.container(docs, "agent")["ports"][0]["containerPort"]
    assert settings.url == f"http://127.0.0.1:{agent_port}/api/v1/prestop"
    budget = r.env_entries(r.container(docs, "agent"))["HA_PRESTOP_BUDGET_SECONDS"]["value"]
    assert settings.budget_s == float(budget)
    assert (settings.uid, settings.ip) == (r.SAMPLE_FIELDS["metadata.uid"], r.SAMPLE_FIELDS["status.podIP"])


def test_status_auth_value_reaches_the_agent_settings() -> None:
    env = r.resolve_env(r.container(r.render_set("everything-on"), "agent"), SECRETS)
    assert config.load_settings(env).api.status_auth == "token"
    default = r.resolve_env(r.container(r.render_set("ha"), "agent"), SECRETS)
    assert config.load_settings(default).api.status_auth == "open"
