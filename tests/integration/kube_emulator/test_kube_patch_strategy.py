"""Strategic merge patch follows each field's patch strategy from the kind's schema, as the apiserver does."""

from __future__ import annotations

from kubernetes import client

from .conftest import NS, http

SMP = {"Content-Type": "application/strategic-merge-patch+json"}


def statefulset() -> dict:
    labels = {"app": "memgraph"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "memgraph"},
        "spec": {
            "selector": {"matchLabels": labels},
            "serviceName": "memgraph",
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "memgraph", "image": "m:1"}, {"name": "agent", "image": "a:1"}],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def test_pdb_selector_has_patch_strategy_replace_so_a_patch_replaces_it_whole(api):
    policy = client.PolicyV1Api(api)
    selector = {"matchLabels": {"app": "memgraph", "tier": "db"}}
    policy.create_namespaced_pod_disruption_budget(
        NS, {"metadata": {"name": "mg"}, "spec": {"maxUnavailable": 1, "selector": selector}}
    )
    patched = policy.patch_namespaced_pod_disruption_budget(
        "mg", NS, {"spec": {"selector": {"matchLabels": {"app": "memgraph"}}}}
    )
    assert patched.spec.selector.match_labels == {"app": "memgraph"}


def test_retain_keys_drops_the_old_volume_source_kubectl_sends_it_when_a_source_changes(emu, api):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set(NS, statefulset())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [
                        {"name": "tmp", "configMap": {"name": "hooks"}, "$retainKeys": ["configMap", "name"]}
                    ]
                }
            }
        }
    }
    path = f"/apis/apps/v1/namespaces/{NS}/statefulsets/memgraph"
    code, obj, _ = http(emu, "PATCH", path, patch, headers=SMP)
    assert code == 200, obj
    assert obj["spec"]["template"]["spec"]["volumes"] == [{"name": "tmp", "configMap": {"name": "hooks"}}]


def test_set_element_order_orders_a_merged_list_and_patch_delete_removes_an_item(emu, api):
    client.AppsV1Api(api).create_namespaced_stateful_set(NS, statefulset())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "agent"}, {"name": "memgraph"}],
                    "containers": [{"name": "agent", "image": "a:2"}],
                }
            }
        }
    }
    path = f"/apis/apps/v1/namespaces/{NS}/statefulsets/memgraph"
    code, obj, _ = http(emu, "PATCH", path, patch, headers=SMP)
    assert code == 200
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("agent", "a:2"), ("memgraph", "m:1")]
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "agent", "$patch": "delete"}]}}}}
    code, obj, _ = http(emu, "PATCH", path, delete, headers=SMP)
    assert code == 200 and [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["memgraph"]


def test_list_without_merge_strategy_is_replaced_and_an_unknown_directive_is_400(emu, api):
    client.CoreV1Api(api).create_namespaced_service(
        NS, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "externalIPs": ["10.0.0.1"]}}
    )
    path = f"/api/v1/namespaces/{NS}/services/s"
    change = {"spec": {"externalIPs": ["10.0.0.2"], "ports": [{"port": 81}]}}
    code, obj, _ = http(emu, "PATCH", path, change, headers=SMP)
    assert code == 200
    assert obj["spec"]["externalIPs"] == ["10.0.0.2"]  # atomic list: replaced
    assert sorted(p["port"] for p in obj["spec"]["ports"]) == [80, 81]  # merged by port
    assert http(emu, "PATCH", path, {"spec": {"$bogus": 1}}, headers=SMP)[0] == 400
