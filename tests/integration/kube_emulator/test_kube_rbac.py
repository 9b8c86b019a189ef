"""RBAC of the API emulator: ServiceAccount tokens, Role/RoleBinding rule matching, the 403 Status shape."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from sim.kube.server import KubeEmulator

from .conftest import NS, http, pod_body, status_of

SA = "agent"
SA_USER = f"system:serviceaccount:{NS}:{SA}"


def grant(api: client.ApiClient, rules: list[dict[str, Any]], role: str = "agent-role") -> None:
    """ServiceAccount `agent`, a Role with `rules` and a RoleBinding of the two, created as the admin."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    if not core.list_namespaced_service_account(NS, field_selector=f"metadata.name={SA}").items:
        core.create_namespaced_service_account(NS, {"metadata": {"name": SA}})
    rbac.create_namespaced_role(NS, {"metadata": {"name": role}, "rules": rules})
    rbac.create_namespaced_role_binding(
        NS,
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": SA}],  # namespace: the binding's
        },
    )


@pytest.fixture
def as_agent(emu: KubeEmulator, api: client.ApiClient):
    """A factory: the CoreV1Api etc. of the ServiceAccount `agent` (a token as the kubelet gets one)."""
    clients: list[client.ApiClient] = []

    def make(rules: list[dict[str, Any]] | None = None, api_class: type = client.CoreV1Api) -> Any:
        if rules is not None:
            grant(api, rules)
        c = emu.api_client(user_agent="agent/1", retries=0, token=emu.issue_token(NS, SA))
        clients.append(c)
        return api_class(c)

    yield make
    for c in clients:
        c.close()


def pods_rule(verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": [""], "resources": ["pods"], "verbs": verbs, **extra}


def test_forbidden_answer_is_the_apiservers_status_naming_user_verb_resource_and_scope(emu, api, as_agent):
    grant(api, [pods_rule(["list"])])
    core = as_agent()
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_pod("memgraph-0", NS)
    assert exc.value.status == 403
    assert status_of(exc) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'pods "memgraph-0" is forbidden: User "{SA_USER}" cannot get resource "pods" '
        f'in API group "" in the namespace "{NS}"',
        "reason": "Forbidden",
        "details": {"name": "memgraph-0", "kind": "pods"},
        "code": 403,
    }
    assert core.list_namespaced_pod(NS).items == []
    assert emu.denials(SA_USER)[-1]["verb"] == "get"


def test_grouped_resource_denial_names_the_group_and_a_collection_request_has_no_name(as_agent):
    coord = as_agent([pods_rule(["get"])], client.CoordinationV1Api)
    with pytest.raises(client.ApiException) as exc:
        coord.create_namespaced_lease(NS, {"metadata": {"name": "x"}, "spec": {}})
    body = status_of(exc)
    assert body["details"] == {"group": "coordination.k8s.io", "kind": "leases"}
    assert body["message"] == (
        f'leases.coordination.k8s.io is forbidden: User "{SA_USER}" cannot create resource "leases" '
        f'in API group "coordination.k8s.io" in the namespace "{NS}"'
    )


def test_pods_rule_does_not_cover_pods_status_but_a_star_subresource_rule_does(emu, api, as_agent):
    core = as_agent([pods_rule(["get", "patch"])])
    emu.create(pod_body_dict("memgraph-0"))
    core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {"a": "b"}}})
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_pod_status("memgraph-0", NS, {"status": {"phase": "Running"}})
    assert exc.value.status == 403 and 'cannot patch resource "pods/status"' in status_of(exc)["message"]
    grant(api, [{"apiGroups": [""], "resources": ["*/status"], "verbs": ["patch"]}], role="status-writer")
    patched = core.patch_namespaced_pod_status("memgraph-0", NS, {"status": {"phase": "Running"}})
    assert patched.status.phase == "Running"


def test_resource_names_allow_only_those_names_and_never_create_or_a_plain_list(emu, as_agent):
    coord = as_agent(
        [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": ["ha"],
                "verbs": ["get", "list", "create"],
            }
        ],
        client.CoordinationV1Api,
    )
    for name in ("ha", "other"):
        emu.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}})
    assert coord.read_namespaced_lease("ha", NS).metadata.name == "ha"
    named = coord.list_namespaced_lease(NS, field_selector="metadata.name=ha").items
    assert [le.metadata.name for le in named] == ["ha"]
    for call in (
        lambda: coord.read_namespaced_lease("other", NS),
        lambda: coord.list_namespaced_lease(NS),
        lambda: coord.create_namespaced_lease(NS, {"metadata": {"name": "ha2"}, "spec": {}}),
    ):
        with pytest.raises(client.ApiException) as exc:
            call()
        assert exc.value.status == 403


def test_watch_list_and_deletecollection_are_distinct_verbs(emu, as_agent):
    core = as_agent([pods_rule(["list"])])
    assert core.list_namespaced_pod(NS).items == []
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_pod(NS, watch=True, timeout_seconds=1, _preload_content=False)
    assert 'cannot watch resource "pods"' in status_of(exc)["message"]
    with pytest.raises(client.ApiException) as exc:
        core.delete_collection_namespaced_pod(NS)
    assert 'cannot deletecollection resource "pods"' in status_of(exc)["message"]


def test_cluster_scope_requests_are_denied_at_the_cluster_scope(as_agent):
    core = as_agent([pods_rule(["list"])])
    with pytest.raises(client.ApiException) as exc:
        core.list_pod_for_all_namespaces()
    assert status_of(exc)["message"] == (
        f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" '
        "at the cluster scope"
    )


def test_binding_to_a_missing_role_grants_nothing_and_says_why(emu, api, as_agent):
    client.CoreV1Api(api).create_namespaced_service_account(NS, {"metadata": {"name": SA}})
    core = as_agent()
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
        NS,
        {
            "metadata": {"name": "dangling"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "nope"},
            "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NS}],
        },
    )
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_pod(NS)
    assert status_of(exc)["message"].endswith(': RBAC: role.rbac.authorization.k8s.io "nope" not found')


def test_put_that_creates_a_lease_needs_the_create_verb_too(as_agent):
    coord = as_agent(
        [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["update"]}],
        client.CoordinationV1Api,
    )
    with pytest.raises(client.ApiException) as exc:
        coord.replace_namespaced_lease("ha", NS, {"metadata": {"name": "ha"}, "spec": {}})
    assert exc.value.status == 403 and "cannot create resource" in status_of(exc)["message"]


def test_role_change_takes_effect_on_the_next_request(api, as_agent):
    core = as_agent([pods_rule(["get"])])
    with pytest.raises(client.ApiException):
        core.list_namespaced_pod(NS)
    client.RbacAuthorizationV1Api(api).patch_namespaced_role(
        "agent-role", NS, {"rules": [pods_rule(["get", "list"])]}
    )
    assert core.list_namespaced_pod(NS).items == []


def test_service_account_user_may_read_discovery_but_not_post_to_it(emu, as_agent):
    as_agent([])
    token = emu.issue_token(NS, SA)
    assert http(emu, "GET", "/api", token=token)[0] == 200
    assert http(emu, "GET", "/openapi/v3", token=token)[0] == 200
    code, body, _ = http(emu, "POST", "/api", {}, token=token)
    assert code == 403
    assert body["message"] == f'forbidden: User "{SA_USER}" cannot post path "/api"'
    assert body["details"] == {}


def test_unknown_token_and_no_token_are_401_and_health_needs_none(emu):
    code, body, _ = http(emu, "GET", f"/api/v1/namespaces/{NS}/pods", token="not-issued")
    assert code == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
    assert http(emu, "GET", "/healthz", token=None)[0] == 200
    assert http(emu, "GET", "/version", token=None)[0] == 401


def test_pod_bound_token_stops_working_when_its_pod_is_replaced_or_its_service_account_recreated(emu, api):
    grant(api, [pods_rule(["list"])])
    uid = emu.create(pod_body_dict("memgraph-0"))["metadata"]["uid"]
    bound = client.CoreV1Api(emu.api_client(retries=0, token=emu.issue_token(NS, SA, "memgraph-0", uid)))
    unbound = client.CoreV1Api(emu.api_client(retries=0, token=emu.issue_token(NS, SA)))
    assert len(bound.list_namespaced_pod(NS).items) == 1
    emu.delete("Pod", NS, "memgraph-0", grace=0)
    emu.create(pod_body_dict("memgraph-0"))  # same name, another uid
    with pytest.raises(client.ApiException) as exc:
        bound.list_namespaced_pod(NS)
    assert exc.value.status == 401
    assert len(unbound.list_namespaced_pod(NS).items) == 1
    client.CoreV1Api(api).delete_namespaced_service_account(SA, NS)
    client.CoreV1Api(api).create_namespaced_service_account(NS, {"metadata": {"name": SA}})
    with pytest.raises(client.ApiException) as exc:
        unbound.list_namespaced_pod(NS)
    assert exc.value.status == 401
    bound.api_client.close()
    unbound.api_client.close()


def test_token_for_a_missing_service_account_is_not_issued(emu):
    with pytest.raises(Exception, match="404"):
        emu.issue_token(NS, "ghost")


def test_roles_bindings_service_accounts_and_pdbs_are_stored_and_validated(emu, api):
    rbac, core, policy = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api), client.PolicyV1Api(api)
    grant(api, [pods_rule(["get"])])
    assert rbac.read_namespaced_role("agent-role", NS).rules[0].verbs == ["get"]
    assert core.read_namespaced_service_account(SA, NS).metadata.uid
    spec = {"maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}}
    pdb = policy.create_namespaced_pod_disruption_budget(NS, {"metadata": {"name": "mg"}, "spec": spec})
    assert pdb.metadata.generation == 1 and pdb.status.disruptions_allowed == 0
    no_verbs = {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}
    code, body, _ = http(emu, "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles", no_verbs)
    assert code == 422 and body["details"]["causes"][0]["field"] == "rules[0].verbs"
    with pytest.raises(client.ApiException) as exc:
        rbac.patch_namespaced_role_binding("agent-role", NS, {"roleRef": {"name": "other"}})
    assert exc.value.status == 422 and "cannot change roleRef" in status_of(exc)["message"]
    with pytest.raises(client.ApiException) as exc:
        policy.create_namespaced_pod_disruption_budget(
            NS, {"metadata": {"name": "both"}, "spec": {"maxUnavailable": 1, "minAvailable": 1}}
        )
    assert exc.value.status == 422


# ---- helpers ----------------------------------------------------------------------------------------


def pod_body_dict(name: str) -> dict[str, Any]:
    body = client.ApiClient().sanitize_for_serialization(pod_body(name))
    return {"apiVersion": "v1", "kind": "Pod", **body}
