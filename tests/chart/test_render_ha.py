"""haAgent.enabled=true: sidecar (both modes), preStop, env, probes, Services, RBAC, PDB, checks, flags."""

from __future__ import annotations

import base64

import helm_python as helm
import pytest

from tests.chart import render as r

SELECTOR = {"app.kubernetes.io/name": "memgraph", "app.kubernetes.io/instance": "memgraph"}
DOWNWARD = {
    "POD_NAME": "metadata.name",
    "POD_NAMESPACE": "metadata.namespace",
    "POD_UID": "metadata.uid",
    "POD_IP": "status.podIP",
}
HA_FLAGS = [
    "--replication-restore-state-on-startup=true",
    "--data-recovery-on-startup=true",
    "--storage-wal-enabled=true",
]


def _render_error(values: dict) -> str:
    with pytest.raises(helm.HelmError) as info:
        r.render_raw(values)
    return str(info.value)


# ---- the agent container ----------------------------------------------------------------------------------


def test_native_sidecar_is_an_init_container_with_restart_policy_always() -> None:
    spec = r.pod_spec(r.render_set("ha"))
    assert [c["name"] for c in spec["initContainers"]] == ["reseed", "agent"]
    assert spec["initContainers"][1]["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["memgraph"]
    assert "lifecycle" not in spec["initContainers"][1]


def test_user_init_containers_run_after_the_opt_in_sysctl_and_before_the_native_sidecar() -> None:
    docs = r.render(
        {
            "haAgent": {"enabled": True},
            "sysctlInitContainer": {"enabled": True},
            "initContainers": [{"name": "fix", "image": "busybox:1.37.0"}],
        }
    )
    names = [c["name"] for c in r.pod_spec(docs)["initContainers"]]
    assert names == ["init-sysctl", "fix", "reseed", "agent"]


def test_ordinary_sidecar_is_a_container_whose_prestop_waits_bounded_for_memgraph() -> None:
    docs = r.render_set("ha-ordinary-sidecar")
    spec = r.pod_spec(docs)
    assert [c["name"] for c in spec["containers"]] == ["memgraph", "agent"]
    assert [c["name"] for c in spec["initContainers"]] == ["reseed"]
    agent = r.container(docs, "agent")
    assert "restartPolicy" not in agent
    command = agent["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["python3", "/etc/memgraph-ha/hooks/agent_prestop_wait.py", "--timeout", "620"]
    mounts = {m["name"]: m["mountPath"] for m in agent["volumeMounts"]}
    assert mounts["ha-hooks"] == "/etc/memgraph-ha/hooks"
    # the wait (budget + 20 s) fits in the grace period
    assert int(command[-1]) < spec["terminationGracePeriodSeconds"]


def test_agent_probes_hit_only_the_agent_http_endpoints(ha_docs) -> None:
    _, docs = ha_docs
    agent = r.container(docs, "agent")
    port_name = agent["ports"][0]["name"]
    expected = {"startupProbe": "/health", "livenessProbe": "/health"}
    assert "readinessProbe" not in agent, "the agent must not gate the pod's Ready (issue 16 item 1)"
    for probe, path in expected.items():
        assert set(agent[probe]) - {"failureThreshold", "periodSeconds", "timeoutSeconds", "httpGet"} == set()
        assert agent[probe]["httpGet"] == {"path": path, "port": port_name}


def test_agent_security_context_is_non_root_read_only_and_drops_all(ha_docs) -> None:
    _, docs = ha_docs
    agent = r.container(docs, "agent")
    assert agent["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 101,
        "runAsGroup": 103,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    mounts = {m["mountPath"]: m["name"] for m in agent["volumeMounts"]}
    volumes = {v["name"]: v for v in r.pod_spec(docs)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_pod_shares_its_process_namespace_so_the_agent_can_fence_its_memgraph(ha_docs) -> None:
    """Issue 16 items 4/5: the agent reads and SIGKILLs its Memgraph's process; same UID, no capability."""
    _, docs = ha_docs
    spec = r.pod_spec(docs)
    assert spec["shareProcessNamespace"] is True
    assert spec["securityContext"]["runAsUser"] == 101
    for ctr in (r.container(docs, "agent"), r.container(docs, "memgraph")):
        assert ctr.get("securityContext", {}).get("runAsUser", 101) == 101, ctr["name"]
        assert "add" not in ctr.get("securityContext", {}).get("capabilities", {}), ctr["name"]


def test_agent_finds_its_memgraph_by_the_data_directory_memgraph_is_given(ha_docs) -> None:
    _, docs = ha_docs
    args = r.container(docs, "memgraph")["args"]
    flag = next(a for a in args if a.startswith("--data-directory="))
    env = r.env_entries(r.container(docs, "agent"))
    assert env["MEMGRAPH_DATA_DIRECTORY"]["value"] == flag.split("=", 1)[1]


TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def test_only_the_agent_image_containers_get_a_kubernetes_token(ha_docs) -> None:
    """The pod automounts nothing; a projected token, CA and namespace go to the agent and re-seed
    containers alone (never to memgraph, where user query modules run)."""
    _, docs = ha_docs
    spec = r.pod_spec(docs)
    assert spec["automountServiceAccountToken"] is False
    agent_mounts = {m["mountPath"]: m for m in r.container(docs, "agent")["volumeMounts"]}
    assert agent_mounts[TOKEN_DIR]["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == agent_mounts[TOKEN_DIR]["name"])
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert sources[1]["configMap"] == {
        "name": "kube-root-ca.crt",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    assert sources[2]["downwardAPI"]["items"][0]["path"] == "namespace"
    for ctr in spec["containers"] + spec.get("initContainers", []):
        if ctr["name"] not in ("agent", "reseed"):
            assert volume["name"] not in {m["name"] for m in ctr.get("volumeMounts", [])}, ctr["name"]


def test_reseed_init_container_alone_with_memgraph_mounts_the_data_volume_and_parses_the_agent_settings(
    ha_docs,
) -> None:
    from coordinator.edge.settings import load_settings

    _, docs = ha_docs
    spec = r.pod_spec(docs)
    reseed = r.container(docs, "reseed")
    assert reseed["command"] == ["python", "-m", "agent.reseed"] and "restartPolicy" not in reseed
    assert reseed["securityContext"] == r.container(docs, "agent")["securityContext"]
    data = next(m["name"] for m in r.container(docs, "memgraph")["volumeMounts"]
                if m["mountPath"] == "/var/lib/memgraph")
    holders = [c["name"] for c in spec["containers"] + spec["initContainers"]
               if data in {m["name"] for m in c.get("volumeMounts", [])}]
    assert sorted(holders) == ["memgraph", "reseed"]
    env = {k: v.get("value") for k, v in r.env_entries(reseed).items()}
    assert env["HA_DATA_DIR"] == "/var/lib/memgraph/mg_data"
    assert env["HA_ARCHIVE_DIR"] == "/var/lib/memgraph/diverged"
    filled = {k: v or "x" for k, v in env.items()} | {"POD_IP": "10.0.0.1"}
    settings = load_settings(filled)
    assert settings.data.data_dir == "/var/lib/memgraph/mg_data" and settings.data.reseed.value == "auto"


def test_divergence_values_reach_both_containers() -> None:
    divergence = {"reseed": "manual", "reserveBytes": 1048576}
    docs = r.render({"haAgent": {"enabled": True, "divergence": divergence},
                     "memgraphConfig": ["--data-directory=/var/lib/memgraph/data"]})
    reseed = {k: v.get("value") for k, v in r.env_entries(r.container(docs, "reseed")).items()}
    agent = {k: v.get("value") for k, v in r.env_entries(r.container(docs, "agent")).items()}
    assert agent["HA_RESEED"] == reseed["HA_RESEED"] == "manual"
    assert reseed["HA_RESEED_RESERVE_BYTES"] == "1048576"
    assert reseed["HA_DATA_DIR"] == "/var/lib/memgraph/data"


def test_both_containers_get_the_downward_api_env(ha_docs) -> None:
    _, docs = ha_docs
    for name in ("memgraph", "agent"):
        env = r.env_entries(r.container(docs, name))
        for var, field in DOWNWARD.items():
            assert env[var]["valueFrom"] == {"fieldRef": {"fieldPath": field}}, (name, var)


def test_agent_env_carries_every_setting_from_values() -> None:
    env = {
        k: v.get("value") for k, v in r.env_entries(r.container(r.render_set("ha-tuned"), "agent")).items()
    }
    assert env | {k: None for k in DOWNWARD} == {
        **{k: None for k in DOWNWARD},
        "MEMGRAPH_HOST": "127.0.0.1",
        "MEMGRAPH_BOLT_PORT": "7688",
        "MEMGRAPH_REPLICATION_PORT": "10001",
        "MEMGRAPH_DATA_DIRECTORY": "/var/lib/memgraph/mg_data",
        "HA_STATEFULSET": "graph",
        "HA_POD_SELECTOR": "app.kubernetes.io/name=memgraph,app.kubernetes.io/instance=memgraph",
        "HA_LEASE_NAME": "graph-election",
        "HA_LEASE_DURATION_SECONDS": "20",
        "HA_RENEW_DEADLINE_SECONDS": "12",
        "HA_RETRY_PERIOD_SECONDS": "3",
        "HA_RECONCILE_INTERVAL_SECONDS": "4",
        "HA_FAILOVER_AFTER_SECONDS": "9",
        "HA_SYNC_MODE": "SYNC",
        "HA_ALLOW_ASYNC_FAILOVER": "true",
        "HA_RESEED": "auto",
        "HA_PRESTOP_BUDGET_SECONDS": "120",
        "HA_DRAIN_SECONDS": "0",
        "HA_LOG_DIR": "/var/log/memgraph",
        "HA_LOG_FORMAT": "json",
        "HA_LOG_LEVEL": "DEBUG",
        "AGENT_BIND": "0.0.0.0",
        "AGENT_PORT": "9090",
        "HA_STATUS_AUTH": "open",
        "HA_FENCE_TOKEN": None,  # from the generated Secret (secretKeyRef)
    }


def test_credentials_and_api_token_come_from_secrets_only_when_configured() -> None:
    agent = r.env_entries(r.container(r.render_set("ha"), "agent"))
    assert agent["MEMGRAPH_USER"]["valueFrom"]["secretKeyRef"] == {"name": "memgraph-secrets", "key": "USER"}
    assert agent["MEMGRAPH_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "memgraph-secrets",
        "key": "PASSWORD",
    }
    assert agent["HA_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "mg-ha-token", "key": "token"}
    memgraph = r.env_entries(r.container(r.render_set("ha"), "memgraph"))
    assert "secretKeyRef" in memgraph["MEMGRAPH_PASSWORD"]["valueFrom"]
    plain = r.env_entries(r.container(r.render_set("ha-ordinary-sidecar"), "agent"))
    assert not {"MEMGRAPH_USER", "MEMGRAPH_PASSWORD", "HA_API_TOKEN"} & set(plain)
    assert "HA_FENCE_TOKEN" in plain  # generated by the chart (see below)


def test_the_chart_generates_a_fence_token_so_fencing_works_with_its_defaults() -> None:
    """Review defect b: with no token configured the leader could never fence (always unconfirmed)."""
    docs = r.render({"haAgent": {"enabled": True}})
    secret = r.find(docs, "Secret", "memgraph-ha-fence")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 48 and token.isalnum()
    agent = r.env_entries(r.container(docs, "agent"))
    ref = agent["HA_FENCE_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "memgraph-ha-fence", "key": "token"}
    assert "HA_API_TOKEN" not in agent  # the operator routes stay off: the fence token opens the fence alone
    assert "HA_FENCE_TOKEN" not in r.env_entries(r.container(docs, "memgraph"))
    # kept across upgrades: the template reads the Secret back with `lookup` (offline renders see nothing)
    assert 'lookup "v1" "Secret"' in (r.CHART_DIR / "templates" / "fence-token-secret.yaml").read_text()


def test_a_given_fence_token_secret_is_used_and_none_is_generated() -> None:
    docs = r.render({"haAgent": {"enabled": True, "fenceToken": {"existingSecret": "my-fence", "key": "k"}}})
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-ha-fence")]
    agent = r.env_entries(r.container(docs, "agent"))
    assert agent["HA_FENCE_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "my-fence", "key": "k"}
    assert not [d for d in r.render_set("default") if d["kind"] == "Secret"]


def test_log_volume_is_shared_by_memgraph_and_agent_even_without_log_storage(ha_docs) -> None:
    name, docs = ha_docs
    logs = {}
    for ctr in ("memgraph", "agent"):
        mounts = {m["mountPath"]: m for m in r.container(docs, ctr)["volumeMounts"]}
        logs[ctr] = mounts["/var/log/memgraph"]["name"]
        assert not mounts["/var/log/memgraph"].get("readOnly", False)
    assert logs["memgraph"] == logs["agent"]
    if name == "ha-no-log-storage":
        volumes = {v["name"]: v for v in r.pod_spec(docs)["volumes"]}
        assert volumes[logs["agent"]] == {"name": logs["agent"], "emptyDir": {}}


# ---- the memgraph container -------------------------------------------------------------------------------


def test_memgraph_prestop_runs_the_hook_from_the_chart_configmap(ha_docs) -> None:
    _, docs = ha_docs
    memgraph = r.container(docs, "memgraph")
    command = memgraph["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["python3", "/etc/memgraph-ha/hooks/prestop.py"]
    mounts = {m["name"]: m for m in memgraph["volumeMounts"]}
    assert mounts["ha-hooks"]["mountPath"] == "/etc/memgraph-ha/hooks" and mounts["ha-hooks"]["readOnly"]
    volume = next(v for v in r.pod_spec(docs)["volumes"] if v["name"] == "ha-hooks")
    cm = r.find(docs, "ConfigMap", volume["configMap"]["name"])
    assert "prestop.py" in cm["data"]


def test_memgraph_hook_env_matches_agent_port_and_budget() -> None:
    env = {
        k: v.get("value") for k, v in r.env_entries(r.container(r.render_set("ha-tuned"), "memgraph")).items()
    }
    assert env["AGENT_URL"] == "http://127.0.0.1:9090"
    assert env["PRESTOP_TIMEOUT_SECONDS"] == "120"
    assert env["PRESTOP_LOG_DIR"] == "/var/log/memgraph"


def test_lifecycle_post_start_passes_through_next_to_the_chart_prestop() -> None:
    lifecycle = r.container(r.render_set("ha-no-log-storage"), "memgraph")["lifecycle"]
    assert lifecycle["postStart"] == {"exec": {"command": ["true"]}}
    assert "preStop" in lifecycle


def test_user_prestop_conflicts_with_ha_and_fails_with_a_message() -> None:
    message = _render_error(
        {"haAgent": {"enabled": True}, "lifecycleHooks": {"preStop": {"exec": {"command": ["x"]}}}}
    )
    assert "lifecycleHooks.preStop cannot be set with haAgent.enabled" in message


def test_ha_flags_are_added_once_to_memgraph_config(ha_docs) -> None:
    _, docs = ha_docs
    args = r.container(docs, "memgraph")["args"]
    for flag in HA_FLAGS:
        assert args.count(flag) == 1, flag
    assert args[0] == "--data-directory=/var/lib/memgraph/mg_data"


def test_ha_flag_set_to_another_value_fails_with_a_message() -> None:
    message = _render_error({"haAgent": {"enabled": True}, "memgraphConfig": ["--storage-wal-enabled=false"]})
    assert (
        "haAgent.enabled needs --storage-wal-enabled=true, "
        'but memgraphConfig has "--storage-wal-enabled=false"' in message
    )


# ---- grace period and timing checks ------------------------------------------------------------------------


def test_grace_period_below_prestop_budget_plus_30_fails_with_a_message() -> None:
    message = _render_error(
        {
            "haAgent": {"enabled": True, "prestopBudgetSeconds": 300},
            "container": {"terminationGracePeriodSeconds": 329},
        }
    )
    assert (
        "container.terminationGracePeriodSeconds (329) must be >= haAgent.prestopBudgetSeconds + 30 (330)"
        in message
    )


def test_grace_period_exactly_budget_plus_30_is_accepted() -> None:
    spec = r.pod_spec(r.render_set("ha-tuned"))
    assert spec["terminationGracePeriodSeconds"] == 150


@pytest.mark.parametrize(
    ("timings", "text"),
    [
        (
            {"leaseDurationSeconds": 10, "renewDeadlineSeconds": 10},
            "haAgent.leaseDurationSeconds (10) must be >",
        ),
        (
            {"renewDeadlineSeconds": 6, "retryPeriodSeconds": 5},
            "must be > 1.2 x haAgent.retryPeriodSeconds (5)",
        ),
    ],
)
def test_election_timings_violating_client_go_ratios_fail(timings: dict, text: str) -> None:
    assert text in _render_error({"haAgent": {"enabled": True, **timings}})


# ---- Services ---------------------------------------------------------------------------------------------


def test_services_select_main_replicas_leader_and_all_pods() -> None:
    docs = r.render_set("ha")
    client = r.find(docs, "Service", "memgraph")
    assert client["spec"]["selector"] == {**SELECTOR, "memgraph-ha.io/role": "main"}
    read = r.find(docs, "Service", "memgraph-read")
    assert read["spec"]["selector"] == {**SELECTOR, "memgraph-ha.io/role": "replica"}
    agent = r.find(docs, "Service", "memgraph-agent")
    assert agent["spec"]["selector"] == {**SELECTOR, "memgraph-ha.io/leader": "true"}
    assert agent["spec"]["ports"] == [
        {"name": "agent-http", "port": 8080, "targetPort": "agent-http", "protocol": "TCP"}
    ]
    pods = r.find(docs, "Service", "memgraph-pods")
    assert pods["spec"]["clusterIP"] == "None"
    assert pods["spec"]["publishNotReadyAddresses"] is True
    assert pods["spec"]["selector"] == SELECTOR
    assert {p["port"] for p in pods["spec"]["ports"]} == {7687, 10000, 8080}


def test_statefulset_is_governed_by_the_client_service_as_in_the_official_chart(ha_docs) -> None:
    _, docs = ha_docs
    sts = r.find(docs, "StatefulSet")
    governing = r.find(docs, "Service", sts["spec"]["serviceName"])
    assert sts["spec"]["serviceName"] == sts["metadata"]["name"]
    assert governing["spec"]["type"] == "ClusterIP" and "clusterIP" not in governing["spec"]
    env = r.env_entries(r.container(docs, "agent"))
    assert env["HA_STATEFULSET"]["value"] == sts["metadata"]["name"]


def test_service_ports_target_named_container_ports(ha_docs) -> None:
    _, docs = ha_docs
    named = {p["name"] for c in ("memgraph", "agent") for p in r.container(docs, c)["ports"]}
    for svc in (d for d in docs if d["kind"] == "Service"):
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in named, (svc["metadata"]["name"], port)


# ---- RBAC, PDB, ServiceMonitor ----------------------------------------------------------------------------


def test_role_grants_exactly_the_least_rights_and_nothing_cluster_scoped(ha_docs) -> None:
    _, docs = ha_docs
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = r.find(docs, "Role")
    lease = r.env_entries(r.container(docs, "agent"))["HA_LEASE_NAME"]["value"]
    sts = r.find(docs, "StatefulSet")["metadata"]["name"]
    assert r.role_rules(role) == sorted(
        [
            (("coordination.k8s.io",), ("leases",), (), ("create",)),
            (("coordination.k8s.io",), ("leases",), (lease,), ("get", "patch", "update")),
            (("",), ("pods",), (), ("delete", "get", "list", "patch", "watch")),
            (("",), ("events",), (), ("create", "patch")),
            (("apps",), ("statefulsets",), (sts,), ("get",)),
        ]
    )


def test_rolebinding_binds_the_role_to_the_pods_service_account(ha_docs) -> None:
    _, docs = ha_docs
    binding = r.find(docs, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": r.find(docs, "Role")["metadata"]["name"],
    }
    account = r.pod_spec(docs)["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": r.NAMESPACE}]
    assert r.find(docs, "ServiceAccount")["metadata"]["name"] == account


def test_pdb_allows_one_unavailable_pod_of_the_statefulset(ha_docs) -> None:
    _, docs = ha_docs
    pdb = r.find(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert (
        pdb["spec"]["selector"]["matchLabels"]
        == r.find(docs, "StatefulSet")["spec"]["selector"]["matchLabels"]
    )


def test_service_monitor_is_off_by_default_and_scrapes_agent_metrics_when_on() -> None:
    assert not [d for d in r.render_set("ha") if d["kind"] == "ServiceMonitor"]
    docs = r.render_set("ha-tuned")
    monitor = r.find(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "agent-http", "path": "/metrics", "interval": "15s"}]
    labels = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        s for s in docs if s["kind"] == "Service" and labels.items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == ["graph-pods"]


# ---- schema, notes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"haAgent": {"syncMode": "QUORUM"}},
        {"haAgent": {"logFormat": "xml"}},
        {"haAgent": {"prestopBudgetSeconds": 0}},
        {"haAgent": {"port": 70000}},
        {"haAgent": {"enabled": "yes"}},
        {"haAgent": {"unknownKey": 1}},
        {"replicaCount": -1},
        {"haAgent": {"statusAuth": "basic"}},
        {"haAgent": {"podAntiAffinity": "sometimes"}},
        {"sysctlInitContainer": {"image": "busybox:1.37.0"}},
        {"topologySpreadConstraints": [{"maxSkew": 1}]},
        {"service": {"loadBalancer": {"externalTrafficPolicy": "Nearest"}}},
        {"unknownTopLevelKey": True},
    ],
)
def test_schema_rejects_bad_values(values: dict) -> None:
    with pytest.raises(helm.HelmValuesError):
        r.render_raw(values)


def test_notes_tell_how_to_read_status_and_agent_logs() -> None:
    notes = r.notes(r.VALUE_SETS["ha"])
    assert "kubectl -n db port-forward svc/memgraph-agent 8080" in notes
    assert "curl localhost:8080/api/v1/status" in notes
    assert "kubectl -n db logs <pod> -c agent" in notes


def test_notes_say_an_unfenced_failover_may_lose_writes_and_allow_two_writers() -> None:
    # issue 16 item 6: SYNC/ASYNC-mode failover is opt-in, and the chart says what it costs
    on = {"haAgent": {"enabled": True, "allowAsyncFailover": True}}
    assert "may lose acknowledged writes and, during a partition, allow two writers" in r.notes(on)
    sync = {"haAgent": {"enabled": True, "syncMode": "SYNC"}}
    assert "no automatic failover happens in this mode unless allowAsyncFailover=true" in r.notes(sync)
    strict = r.notes({"haAgent": {"enabled": True}})
    assert "allowAsyncFailover" not in strict


def test_client_service_routes_by_role_label_ready_or_not(ha_docs) -> None:
    """Issue 16 item 1: the write Service follows the coordinator's role label and publishes not-ready
    addresses, so an agent restart on the MAIN's pod (pod NotReady) is no write outage."""
    _, docs = ha_docs
    svc = next(d for d in docs if d["kind"] == "Service" and d["spec"].get("selector", {}).get(
        "memgraph-ha.io/role") == "main")
    assert svc["spec"]["publishNotReadyAddresses"] is True
    read = next(d for d in docs if d["kind"] == "Service" and d["spec"].get("selector", {}).get(
        "memgraph-ha.io/role") == "replica")
    assert not read["spec"].get("publishNotReadyAddresses"), "reads go only to Ready replicas"
