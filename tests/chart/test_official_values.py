"""The chart as a drop-in for the official memgraph chart 1.0.5 (../shared/reference/official-chart/).

The official values file renders unchanged with HA off and on; every official key is accepted with its
shape; the fields Kubernetes does not let an upgrade change are the official chart's (as its README
records them), whether HA is on, off, or turned on and off again.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from tests.chart import render as r

README = (r.OFFICIAL_DIR / "README.md").read_text()


def _official_table() -> dict[tuple[str, str], str]:
    """(object, field) -> value cell of the README's table of immutable fields."""
    rows: dict[tuple[str, str], str] = {}
    obj = ""
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] == "object" or cells[1].startswith("---"):
            continue
        obj = cells[0] or obj
        rows[(obj, cells[1])] = cells[2]
    return rows


TABLE = _official_table()
STS = "StatefulSet `memgraph`"


def _leading_name(cell: str) -> str:
    match = re.match(r"`([^`]+)`", cell)
    assert match, cell
    return match.group(1)


def expected_immutable_fields(release: str = "memgraph") -> dict[str, Any]:
    """The official chart's immutable fields, read from the reference README (release `memgraph`), with
    names mapped by the fullname rule the README states for other releases."""

    def name(text: str) -> str:
        return text if release == "memgraph" else text.replace("memgraph", f"{release}-memgraph", 1)

    sts = TABLE[(STS, "`spec.serviceName`")]
    selector = dict(re.findall(r"`([\w./-]+): (\w+)`", TABLE[(STS, "`spec.selector.matchLabels`")]))
    claims = re.findall(r"`([\w-]+)` \((\w+), (\w+)\)", TABLE[(STS, "`spec.volumeClaimTemplates`")])
    service_type, cluster_ip = [
        c.strip(" `")
        for c in TABLE[("Service `memgraph`", "`spec.type`, `spec.clusterIP`")].split("(")[0].split(",")
    ]
    assert cluster_ip == "allocated"
    return {
        "serviceName": name(_leading_name(sts)),
        "selector": {k: (release if k.endswith("instance") else v) for k, v in selector.items()},
        "podManagementPolicy": _leading_name(TABLE[(STS, "`spec.podManagementPolicy`")]),
        "updateStrategy": _leading_name(TABLE[(STS, "`spec.updateStrategy`")]),
        "claims": [(name(c), size, mode) for c, size, mode in claims],
        "service": (name("memgraph"), service_type),
    }


def immutable_fields(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """What our render has in the same places (Service: the one the StatefulSet names)."""
    sts = r.find(docs, "StatefulSet")["spec"]
    svc = r.find(docs, "Service", sts["serviceName"])
    return {
        "serviceName": sts["serviceName"],
        "selector": sts["selector"]["matchLabels"],
        "podManagementPolicy": sts["podManagementPolicy"],
        "updateStrategy": sts["updateStrategy"]["type"],
        "claims": [
            (
                t["metadata"]["name"],
                t["spec"]["resources"]["requests"]["storage"],
                t["spec"]["accessModes"][0],
            )
            for t in sts.get("volumeClaimTemplates", [])
        ],
        "service": (svc["metadata"]["name"], svc["spec"]["type"]),
        "service_cluster_ip": svc["spec"].get("clusterIP", "allocated"),
    }


def _with_ha(values: dict[str, Any], on: bool) -> dict[str, Any]:
    return {**values, "haAgent": {**values.get("haAgent", {}), "enabled": on}}


def test_reference_readme_table_is_read() -> None:
    """Guard for the parser: the README's rows are found (a changed table fails here, not silently)."""
    exp = expected_immutable_fields()
    assert exp["serviceName"] == "memgraph"
    assert exp["claims"] == [
        ("memgraph-lib-storage", "10Gi", "ReadWriteOnce"),
        ("memgraph-log-storage", "1Gi", "ReadWriteOnce"),
    ]
    assert exp["selector"] == {"app.kubernetes.io/name": "memgraph", "app.kubernetes.io/instance": "memgraph"}


@pytest.mark.parametrize("ha", [False, True], ids=["ha-off", "ha-on"])
def test_official_values_file_renders_unchanged(ha: bool) -> None:
    docs = r.render(_with_ha(r.official_values(), ha))
    assert r.find(docs, "StatefulSet")["metadata"]["name"] == "memgraph"
    assert r.container(docs, "memgraph")["args"][:2] == r.official_values()["memgraphConfig"]
    assert ("agent" in {c["name"] for c in r.pod_spec(docs)["initContainers"]}) is ha
    # the official file asks for the privileged sysctl container and gets it, with its image object
    init = r.container(docs, "init-sysctl")
    assert init["image"] == "docker.io/library/busybox:latest"
    assert init["command"] == ["sysctl", "-w", "vm.max_map_count=262144"]


@pytest.mark.parametrize("release", ["memgraph", "mg"])
@pytest.mark.parametrize("ha", [False, True], ids=["ha-off", "ha-on"])
def test_immutable_fields_equal_the_official_chart(ha: bool, release: str) -> None:
    ours = immutable_fields(r.render(_with_ha(r.official_values(), ha), release=release))
    exp = expected_immutable_fields(release)
    assert ours["service_cluster_ip"] == "allocated"
    assert {k: ours[k] for k in exp} == exp


def test_turning_ha_on_and_off_again_changes_no_immutable_field() -> None:
    """official chart -> ours (HA off) -> HA on -> HA off: every step keeps every immutable field, and the
    claim templates are identical object for object (what the API server compares)."""
    base = {**r.official_values(), "replicaCount": 3}
    steps = [_with_ha(base, False), _with_ha(base, True), _with_ha(base, False)]
    renders = [r.render(v) for v in steps]
    fields = [immutable_fields(d) for d in renders]
    assert fields[0] == fields[1] == fields[2]
    templates = [
        json.dumps(r.find(d, "StatefulSet")["spec"]["volumeClaimTemplates"], sort_keys=True) for d in renders
    ]
    assert templates[0] == templates[1] == templates[2]
    for before, after in itertools.pairwise(renders):
        shared = {(d["kind"], d["metadata"]["name"]) for d in before} & {
            (d["kind"], d["metadata"]["name"]) for d in after
        }
        for kind, name in shared:
            if kind == "Service":
                old, new = r.find(before, kind, name)["spec"], r.find(after, kind, name)["spec"]
                assert old.get("clusterIP") == new.get("clusterIP"), name


def test_claim_templates_carry_the_official_api_version_and_kind() -> None:
    for template in r.find(r.render_set("official-ha"), "StatefulSet")["spec"]["volumeClaimTemplates"]:
        assert (template["apiVersion"], template["kind"]) == ("v1", "PersistentVolumeClaim")


def test_every_official_key_is_described_by_the_schema() -> None:
    """No key of the official file is rejected: each is a property of our schema, at any depth where our
    schema lists properties."""
    schema = json.loads((r.CHART_DIR / "values.schema.json").read_text())

    def walk(values: dict[str, Any], node: dict[str, Any], path: str) -> list[str]:
        missing = []
        props = node.get("properties")
        if props is None:
            return []
        for key, value in values.items():
            if key not in props:
                missing.append(path + key)
            elif isinstance(value, dict):
                missing += walk(value, props[key], f"{path}{key}.")
        return missing

    assert walk(r.official_values(), schema, "") == []


@pytest.mark.parametrize("key", ["prometheus", "vmagentRemote", "vectorRemote"])
def test_unimplemented_official_keys_are_accepted_described_and_noted(key: str) -> None:
    schema = json.loads((r.CHART_DIR / "values.schema.json").read_text())
    assert "not implemented" in schema["properties"][key]["description"]
    readme = (r.CHART_DIR / "README.md").read_text()
    assert f"`{key}" in readme.split("## Official keys not implemented")[1]
    values = {key: {"enabled": True}}
    assert f"NOTE: {key}.enabled is accepted" in r.notes(values)


def test_official_features_render_as_the_official_chart_does() -> None:
    docs = r.render(
        {
            **r.official_values(),
            "service": {"loadBalancer": {"enabled": True, "loadBalancerSourceRanges": ["10.0.0.0/8"]}},
            "persistentVolumeClaim": {
                "createUserClaim": True,
                "userMountPath": "/etc/mg-user",
                "createCoreDumpsClaim": True,
            },
            "customQueryModules": [{"volume": "mods", "file": "a.py"}, {"volume": "mods", "file": "b.py"}],
            "storageClass": {"create": True},
            "memgraphEnterpriseLicense": "lic",
            "memgraphOrganizationName": "org",
            "scrapeMemgraphDirectly": True,
        }
    )
    lb = r.find(docs, "Service", "memgraph-lb")
    assert lb["spec"]["type"] == "LoadBalancer" and lb["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    claims = [t["metadata"]["name"] for t in r.find(docs, "StatefulSet")["spec"]["volumeClaimTemplates"]]
    assert claims == [
        "memgraph-lib-storage",
        "memgraph-log-storage",
        "memgraph-core-dumps-storage",
        "memgraph-user-storage",
    ]
    memgraph = r.container(docs, "memgraph")
    mounts = {m["mountPath"]: m for m in memgraph["volumeMounts"]}
    assert mounts["/var/lib/memgraph/internal_modules/b.py"]["subPath"] == "b.py"
    assert mounts["/etc/mg-user"]["name"] == "memgraph-user-storage"
    assert mounts["/var/core/memgraph"]["name"] == "memgraph-core-dumps-storage"
    assert [v["name"] for v in r.pod_spec(docs)["volumes"] if "configMap" in v] == ["mods"]
    env = r.env_entries(memgraph)
    assert (env["MEMGRAPH_ENTERPRISE_LICENSE"]["value"], env["MEMGRAPH_ORGANIZATION_NAME"]["value"]) == (
        "lic",
        "org",
    )
    assert memgraph["args"][-1] == "--metrics-format=OpenMetrics"
    assert 9091 in [p["port"] for p in r.find(docs, "Service", "memgraph")["spec"]["ports"]]
    assert r.find(docs, "StorageClass")["provisioner"] == "k8s.io/minikube-hostpath"
    assert [c["name"] for c in r.pod_spec(docs)["initContainers"]] == ["init-sysctl", "init-core-dumps"]


def test_load_balancer_service_selects_the_main_with_ha() -> None:
    docs = r.render({"haAgent": {"enabled": True}, "service": {"loadBalancer": {"enabled": True}}})
    assert r.find(docs, "Service", "memgraph-lb")["spec"]["selector"]["memgraph-ha.io/role"] == "main"


def test_exec_probe_replaces_the_default_tcp_socket_as_in_the_official_chart() -> None:
    command = ["/bin/sh", "-c", "echo 'RETURN 0;' | mgconsole"]
    docs = r.render({"container": {"readinessProbe": {"exec": {"command": command}}}})
    probe = r.container(docs, "memgraph")["readinessProbe"]
    assert probe["exec"] == {"command": command} and "tcpSocket" not in probe
    assert probe["failureThreshold"] == 20


def test_notes_warn_about_several_pods_without_ha_and_tell_how_to_turn_ha_off() -> None:
    assert "WARNING: replicaCount is 3 without haAgent" in r.notes({"replicaCount": 3})
    notes = r.notes(r.VALUE_SETS["ha"])
    assert "haAgent.enabled=false AND replicaCount=1" in notes
