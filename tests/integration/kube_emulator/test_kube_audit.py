"""The API emulator's audit log (sim/kube/audit.py): every answered mutating request, with its source
address, user, object, answer code, a successful Lease write's holder and a pod patch's body."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .conftest import NS, http, pod_body
from .test_kube_leases import lease


def test_mutating_requests_are_audited_with_source_user_object_and_code(emu, core, coord):
    coord.create_namespaced_lease(NS, lease(holder="memgraph-0_u1"))
    current = coord.read_namespaced_lease("memgraph-ha", NS)
    stale_rv = current.metadata.resource_version
    current.spec.holder_identity = "memgraph-1_u2"
    coord.replace_namespaced_lease("memgraph-ha", NS, current)
    current.metadata.resource_version = stale_rv
    with pytest.raises(ApiException):
        coord.replace_namespaced_lease("memgraph-ha", NS, current)  # 409: the write did not happen
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {"memgraph-ha.io/role": None}}})
    core.list_namespaced_pod(NS)  # a read: not audited

    records = emu.audit_records()
    assert [(r.verb, r.resource, r.name, r.code) for r in records] == [
        ("create", "leases", "", 201),
        ("update", "leases", "memgraph-ha", 200),
        ("update", "leases", "memgraph-ha", 409),
        ("create", "pods", "", 201),
        ("patch", "pods", "memgraph-0", 200),
    ]
    assert {r.source_ip for r in records} == {"127.0.0.1"}
    assert {r.user for r in records} == {"kubernetes-admin"}
    assert {r.user_agent for r in records} == {"kube-emulator-tests/1.0"}
    assert [r.holder for r in records[:3]] == ["memgraph-0_u1", "memgraph-1_u2", None]
    assert records[4].patch_body() == {"metadata": {"labels": {"memgraph-ha.io/role": None}}}
    assert all(r.received <= r.completed for r in records)
    assert [r.completed for r in records] == sorted(r.completed for r in records)


def test_a_release_leaves_an_empty_holder_and_a_refused_token_is_audited_without_user(emu, coord):
    coord.create_namespaced_lease(NS, lease(holder="memgraph-0_u1"))
    current = coord.read_namespaced_lease("memgraph-ha", NS)
    current.spec.holder_identity = ""
    coord.replace_namespaced_lease("memgraph-ha", NS, current)
    code, _, _ = http(emu, "DELETE", f"/api/v1/namespaces/{NS}/pods/memgraph-0", token="not-a-token")
    assert code == 401
    records = emu.audit_records()
    assert records[1].holder == "" and records[1].ok
    assert (records[2].verb, records[2].code, records[2].user, records[2].ok) == ("delete", 401, "", False)


def test_a_token_bound_to_a_replaced_pod_is_refused_and_audited_as_such(emu, core):
    """The bound ServiceAccount token of an incarnation that was force-deleted and re-created under the
    same name no longer authenticates: its writes are audited as 401 (what fences a cut-off incarnation's
    agent from the API server once its pod was replaced)."""
    core.create_namespaced_service_account(NS, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="memgraph")))
    old_uid = core.create_namespaced_pod(NS, pod_body("memgraph-0")).metadata.uid
    token = emu.issue_token(NS, "memgraph", "memgraph-0", old_uid)
    core.delete_namespaced_pod("memgraph-0", NS, grace_period_seconds=0)
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    body = {"metadata": {"labels": {"memgraph-ha.io/role": "main"}}}
    code, _, _ = http(emu, "PATCH", f"/api/v1/namespaces/{NS}/pods/memgraph-0", body, token=token,
                      headers={"Content-Type": "application/merge-patch+json"})
    assert code == 401
    last = emu.audit_records()[-1]
    assert (last.verb, last.name, last.code, last.user) == ("patch", "memgraph-0", 401, "")
