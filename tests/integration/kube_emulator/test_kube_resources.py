"""Events (core/v1 and events.k8s.io/v1), StatefulSets, Services, Endpoints, ConfigMaps, Secrets."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from .conftest import NS, status_of


def core_event(name: str, ns: str = NS) -> client.CoreV1Event:
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name),
        involved_object=client.V1ObjectReference(kind="Pod", name="memgraph-0", namespace=ns),
        reason="Switchover",
        message="memgraph-0 -> memgraph-1",
        type="Normal",
        count=1,
    )


def test_core_event_create_list_patch(core):
    core.create_namespaced_event(NS, core_event("memgraph-0.switchover"))
    core.create_namespaced_event(NS, core_event("memgraph-0.failover"))
    core.patch_namespaced_event("memgraph-0.failover", NS, {"count": 2})
    listed = core.list_namespaced_event(NS, field_selector="reason=Switchover")
    assert [(e.metadata.name, e.reason, e.count) for e in listed.items] == [
        ("memgraph-0.failover", "Switchover", 2),
        ("memgraph-0.switchover", "Switchover", 1),
    ]


def test_core_event_with_foreign_involved_namespace_is_422(core):
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_event(NS, core_event("x", ns="elsewhere"))
    assert exc.value.status == 422
    assert status_of(exc)["details"]["causes"][0]["field"] == "involvedObject.namespace"


def events_v1(name: str, **overrides) -> dict:
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name},
        "eventTime": datetime.now(UTC).replace(microsecond=1).isoformat(),
        "type": "Normal",
        "reason": "Failover",
        "action": "Promote",
        "note": "memgraph-1 promoted",
        "reportingController": "memgraph-ha.io/coordinator",
        "reportingInstance": "memgraph-0",
        "regarding": {"kind": "Pod", "name": "memgraph-1", "namespace": NS},
    }
    body.update(overrides)
    return body


def test_events_k8s_io_create_list_and_patch(api):
    ev: Any = client.EventsV1Api(api)
    created = ev.create_namespaced_event(NS, events_v1("memgraph-1.failover"))
    assert created.reporting_controller == "memgraph-ha.io/coordinator"
    ev.patch_namespaced_event("memgraph-1.failover", NS, {"note": "updated"})
    items = ev.list_namespaced_event(NS).items
    assert [(e.metadata.name, e.note) for e in items] == [("memgraph-1.failover", "updated")]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"type": "Info"}, "type"),
        ({"reportingController": ""}, "reportingController"),
        ({"action": ""}, "action"),
        ({"deprecatedCount": 3}, "deprecatedCount"),
    ],
)
def test_events_k8s_io_validation_is_422(api, override, field):
    with pytest.raises(client.ApiException) as exc:
        events: Any = client.EventsV1Api(api)
        events.create_namespaced_event(NS, events_v1("bad", **override))
    assert exc.value.status == 422
    assert field in [c["field"] for c in status_of(exc)["details"]["causes"]]


def test_events_k8s_io_without_event_time_is_422_on_the_wire(emu):
    """The client refuses to send this body itself, so post it raw."""
    body = events_v1("bad")
    del body["eventTime"]
    req = urllib.request.Request(
        f"{emu.url}/apis/events.k8s.io/v1/namespaces/{NS}/events",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {emu.token}"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5, context=ssl.create_default_context(cafile=emu.tls.ca_file))
    status = json.loads(exc.value.read())
    assert exc.value.code == 422 and status["reason"] == "Invalid"
    assert "eventTime" in [c["field"] for c in status["details"]["causes"]]


def statefulset() -> dict:
    labels = {"app": "memgraph"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "memgraph", "labels": labels},
        "spec": {
            "serviceName": "memgraph-headless",
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "memgraph", "image": "memgraph/memgraph:3.5.0"}]},
            },
        },
    }


def test_statefulset_get_patch_replace_and_generation(api, emu):
    apps: Any = client.AppsV1Api(api)
    created = apps.create_namespaced_stateful_set(NS, statefulset())
    assert created.metadata.generation == 1 and created.status.replicas == 0
    patched = apps.patch_namespaced_stateful_set("memgraph", NS, {"spec": {"replicas": 5}})
    assert (patched.spec.replicas, patched.metadata.generation) == (5, 2)
    labelled = apps.patch_namespaced_stateful_set("memgraph", NS, {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 2  # metadata-only change: no new generation
    emu.patch_status("StatefulSet", NS, "memgraph", {"replicas": 5, "readyReplicas": 4})
    current = apps.read_namespaced_stateful_set("memgraph", NS)
    assert current.status.ready_replicas == 4
    current.spec.template.spec.containers[0].image = "memgraph/memgraph:3.6.0"
    replaced = apps.replace_namespaced_stateful_set("memgraph", NS, current)
    assert replaced.metadata.generation == 3 and replaced.status.ready_replicas == 4
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_stateful_set("memgraph", NS, {"spec": {"serviceName": "other"}})
    assert exc.value.status == 422


def test_service_endpoints_configmap_secret_create_get_list(core):
    svc = core.create_namespaced_service(
        NS,
        {
            "metadata": {"name": "memgraph-main"},
            "spec": {"selector": {"memgraph-ha.io/role": "main"}, "ports": [{"name": "bolt", "port": 7687}]},
        },
    )
    assert svc.spec.cluster_ip and svc.spec.ports[0].target_port == 7687
    headless = core.create_namespaced_service(NS, {"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}})
    assert headless.spec.cluster_ip == "None"
    core.create_namespaced_endpoints(
        NS, {"metadata": {"name": "memgraph-main"}, "subsets": [{"addresses": [{"ip": "127.0.0.11"}]}]}
    )
    assert core.read_namespaced_endpoints("memgraph-main", NS).subsets[0].addresses[0].ip == "127.0.0.11"
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cfg"}, "data": {"k": "v"}})
    assert core.read_namespaced_config_map("cfg", NS).data == {"k": "v"}
    core.create_namespaced_secret(NS, {"metadata": {"name": "s"}, "stringData": {"password": "pw"}})
    secret = core.read_namespaced_secret("s", NS)
    assert base64.b64decode(secret.data["password"]) == b"pw" and secret.type == "Opaque"
    assert [s.metadata.name for s in core.list_namespaced_service(NS).items] == ["h", "memgraph-main"]
    assert len(core.list_namespaced_config_map(NS).items) == 1
    assert len(core.list_namespaced_secret(NS).items) == 1


def test_discovery_endpoints_deserialize(api):
    assert client.VersionApi(api).get_code().major == "1"
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "coordination.k8s.io", "events.k8s.io"} <= groups
    resources = {r.name for r in client.CoordinationV1Api(api).get_api_resources().resources}
    assert resources == {"leases"}
