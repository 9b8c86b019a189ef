"""haAgent.enabled=false (default): a plain Memgraph StatefulSet, like the official standalone chart."""

from __future__ import annotations

from tests.chart import render as r


def test_default_renders_only_statefulset_service_and_serviceaccount(default_docs) -> None:
    assert r.kinds(default_docs) == ["Service", "ServiceAccount", "StatefulSet"]


def test_default_pod_has_no_agent_no_prestop_and_no_api_token(default_docs) -> None:
    spec = r.pod_spec(default_docs)
    names = [c["name"] for c in spec["containers"] + spec.get("initContainers", [])]
    assert names == ["memgraph"]
    memgraph = r.container(default_docs, "memgraph")
    assert "lifecycle" not in memgraph
    assert "env" not in memgraph
    assert spec["automountServiceAccountToken"] is False
    assert "shareProcessNamespace" not in spec  # only the HA agent needs to see Memgraph's process


def test_default_service_selects_every_pod_and_is_the_governing_service(default_docs) -> None:
    svc = r.find(default_docs, "Service", "memgraph")
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/name": "memgraph",
        "app.kubernetes.io/instance": "memgraph",
    }
    assert [p["port"] for p in svc["spec"]["ports"]] == [7687]
    assert r.find(default_docs, "StatefulSet")["spec"]["serviceName"] == "memgraph"


def test_default_args_are_memgraph_config_verbatim(default_docs) -> None:
    assert r.container(default_docs, "memgraph")["args"] == [
        "--data-directory=/var/lib/memgraph/mg_data",
        "--also-log-to-stderr=true",
    ]


def test_official_keys_render_in_plain_mode() -> None:
    docs = r.render(
        {
            "secrets": {"enabled": True},
            "lifecycleHooks": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
            "extraEnv": [{"name": "X", "value": "1"}],
            "persistentVolumeClaim": {"createLogStorage": False},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "podAnnotations": {"a": "b"},
            "labels": {"podLabels": {"team": "graph"}},
        }
    )
    memgraph = r.container(docs, "memgraph")
    assert memgraph["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    env = r.env_entries(memgraph)
    assert env["MEMGRAPH_USER"]["valueFrom"]["secretKeyRef"] == {"name": "memgraph-secrets", "key": "USER"}
    assert env["MEMGRAPH_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "memgraph-secrets",
        "key": "PASSWORD",
    }
    assert env["X"]["value"] == "1"
    assert memgraph["args"][-1] == "--log-file="
    template = r.find(docs, "StatefulSet")["spec"]["template"]
    assert template["metadata"]["annotations"] == {"a": "b"}
    assert template["metadata"]["labels"]["team"] == "graph"
    assert template["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    claims = [t["metadata"]["name"] for t in r.find(docs, "StatefulSet")["spec"]["volumeClaimTemplates"]]
    assert claims == ["memgraph-lib-storage"]
