"""Discovery (legacy and aggregated) and the OpenAPI v3 documents of the API emulator, over HTTPS."""

from __future__ import annotations

import pytest
from kubernetes import client

from sim.kube.discovery import AGGREGATED_V2
from sim.kube.resources import RESOURCES, VERBS

from .conftest import http

AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)


def test_core_resource_list_has_short_names_categories_singular_names_and_verbs(api):
    resources = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert resources["pods"].short_names == ["po"] and resources["pods"].categories == ["all"]
    assert resources["services"].short_names == ["svc"] and resources["configmaps"].short_names == ["cm"]
    assert resources["serviceaccounts"].short_names == ["sa"]
    assert resources["pods"].singular_name == "pod" and resources["endpoints"].singular_name == "endpoints"
    assert sorted(resources["pods"].verbs) == sorted(VERBS)
    assert sorted(resources["pods/status"].verbs) == ["get", "patch", "update"]
    assert resources["secrets"].short_names is None and resources["configmaps"].categories is None


def test_every_served_group_is_discoverable(api):
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert groups == {rt.group for rt in RESOURCES if rt.group}
    apps = {r.name: r for r in client.AppsV1Api(api).get_api_resources().resources}
    assert apps["statefulsets"].short_names == ["sts"] and apps["statefulsets"].categories == ["all"]
    policy = {r.name: r for r in client.PolicyV1Api(api).get_api_resources().resources}
    assert policy["poddisruptionbudgets"].short_names == ["pdb"]


@pytest.mark.parametrize("path", ["/api", "/apis"])
def test_aggregated_discovery_is_served_when_the_accept_header_asks_for_it(emu, path):
    code, doc, headers = http(emu, "GET", path, headers={"Accept": AGGREGATED_ACCEPT})
    assert code == 200 and headers["Content-Type"] == AGGREGATED_V2
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    served = {(rt.group, rt.plural) for rt in RESOURCES if (rt.group == "") == (path == "/api")}
    listed = {
        (item["metadata"].get("name", ""), res["resource"])
        for item in doc["items"]
        for version in item["versions"]
        for res in version["resources"]
    }
    assert listed == served
    every = [r for i in doc["items"] for v in i["versions"] for r in v["resources"]]
    assert all(v["freshness"] == "Current" for i in doc["items"] for v in i["versions"])
    if path == "/apis":
        sts = next(r for r in every if r["resource"] == "statefulsets")
        assert sts["shortNames"] == ["sts"] and sts["scope"] == "Namespaced"
        assert sts["subresources"] == [
            {
                "subresource": "status",
                "responseKind": {"group": "apps", "version": "v1", "kind": "StatefulSet"},
                "verbs": ["get", "patch", "update"],
            }
        ]


def test_plain_accept_gets_legacy_discovery(emu):
    code, doc, headers = http(emu, "GET", "/apis", headers={"Accept": "application/json"})
    assert code == 200 and doc["kind"] == "APIGroupList" and headers["Content-Type"] == "application/json"


def test_openapi_v3_root_lists_each_served_group_version_with_a_content_hash(emu):
    code, root, _ = http(emu, "GET", "/openapi/v3")
    assert code == 200
    assert set(root["paths"]) == {
        "api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1", "apis/events.k8s.io/v1", "apis/policy/v1",
        "apis/rbac.authorization.k8s.io/v1",
    }  # fmt: skip
    url = root["paths"]["apis/coordination.k8s.io/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/coordination.k8s.io/v1?hash=") and len(url.split("=")[1]) == 128


@pytest.mark.parametrize("rt", RESOURCES, ids=lambda rt: rt.key)
def test_openapi_patch_operation_of_each_kind_takes_field_validation_and_strategic_merge(emu, rt):
    """What kubectl looks for before it leaves validation to the server (QueryParamVerifierV3) and
    computes apply's patch from the schema."""
    gv = "api/v1" if not rt.group else f"apis/{rt.group}/{rt.version}"
    code, doc, _ = http(emu, "GET", f"/openapi/v3/{gv}")
    assert code == 200 and doc["openapi"] == "3.0.0"
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    patches = [p["patch"] for p in doc["paths"].values() if "patch" in p]
    mine = [op for op in patches if op["x-kubernetes-group-version-kind"] == gvk]
    assert mine and all(op["x-kubernetes-action"] == "patch" for op in mine), f"no PATCH operation for {gvk}"
    assert {"name": "fieldValidation", "in": "query"} in [
        {"name": p["name"], "in": p["in"]} for p in mine[0]["parameters"]
    ]
    assert "application/strategic-merge-patch+json" in mine[0]["requestBody"]["content"]
    assert "application/apply-patch+yaml" not in mine[0]["requestBody"]["content"]  # not served (415)
    schemas = doc["components"]["schemas"]
    kinds = [s for s in schemas.values() if gvk in s.get("x-kubernetes-group-version-kind", [])]
    assert len(kinds) == 1


def test_openapi_schemas_are_openapi3_with_patch_metadata(emu):
    _, doc, _ = http(emu, "GET", "/openapi/v3/api/v1")
    schemas = doc["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name" and containers["type"] == "array"
    assert containers["items"]["$ref"] == "#/components/schemas/io.k8s.api.core.v1.Container"
    assert schemas["io.k8s.api.core.v1.Pod"]["properties"]["apiVersion"] == {
        "description": schemas["io.k8s.api.core.v1.Pod"]["properties"]["apiVersion"]["description"],
        "type": "string",
    }
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    refs = [v for v in _walk(doc) if isinstance(v, str) and v.startswith("#/")]
    assert all(r.startswith("#/components/schemas/") and r.split("/")[-1] in schemas for r in refs)


def test_openapi_v2_is_not_served(emu):
    assert http(emu, "GET", "/openapi/v2")[0] == 404


def _walk(node: object) -> list[object]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in _walk(v)]
    if isinstance(node, list):
        return [x for v in node for x in _walk(v)]
    return [node]
