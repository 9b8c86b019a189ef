"""Pods through the real kubernetes client: create/get/list/patch, graceful delete, kubelet finalize."""

from __future__ import annotations

import pytest
from kubernetes import client, watch

from .conftest import NS, Collector, FakeClock, pod_body, status_of, wait_until


def test_created_pod_has_server_fields_and_deserializes(core):
    pod = core.create_namespaced_pod(NS, pod_body("memgraph-0", {"app": "memgraph"}))
    assert pod.metadata.namespace == NS
    assert pod.metadata.uid and pod.metadata.creation_timestamp is not None
    assert isinstance(pod.metadata.resource_version, str) and pod.metadata.resource_version.isdigit()
    assert pod.status.phase == "Pending"
    assert pod.spec.termination_grace_period_seconds == 30
    got = core.read_namespaced_pod("memgraph-0", NS)
    assert got.metadata.resource_version == pod.metadata.resource_version
    assert got.metadata.uid == pod.metadata.uid


def test_every_write_bumps_one_global_revision(core, emu):
    a = core.create_namespaced_pod(NS, pod_body("a"))
    b = core.create_namespaced_pod(NS, pod_body("b"))
    assert int(b.metadata.resource_version) == int(a.metadata.resource_version) + 1
    listed = core.list_namespaced_pod(NS)
    assert listed.metadata.resource_version == str(emu.revision) == b.metadata.resource_version
    assert [p.metadata.name for p in listed.items] == ["a", "b"]


def test_create_existing_name_is_409_already_exists(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    body = status_of(exc)
    assert exc.value.status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'pods "memgraph-0" already exists'


def test_pod_without_containers_is_422_invalid(core):
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_pod(NS, {"metadata": {"name": "bad"}, "spec": {"containers": []}})
    body = status_of(exc)
    assert exc.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.containers"


def test_strategic_merge_patch_adds_and_removes_labels(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0", {"app": "memgraph", "old": "x"}))
    patched = core.patch_namespaced_pod(
        "memgraph-0", NS, {"metadata": {"labels": {"memgraph-ha.io/role": "main", "old": None}}}
    )
    assert patched.metadata.labels == {"app": "memgraph", "memgraph-ha.io/role": "main"}


def test_strategic_merge_patch_merges_conditions_by_type_on_status(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    ready = {"type": "Ready", "status": "False"}
    sched = {"type": "PodScheduled", "status": "True"}
    core.patch_namespaced_pod_status("memgraph-0", NS, {"status": {"conditions": [ready, sched]}})
    pod = core.patch_namespaced_pod_status(
        "memgraph-0", NS, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    )
    assert {(c.type, c.status) for c in pod.status.conditions} == {
        ("Ready", "True"),
        ("PodScheduled", "True"),
    }


def test_merge_patch_replaces_lists_and_null_deletes(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0", {"a": "1"}))
    core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"finalizers": ["x/one", "x/two"]}})
    pod = core.patch_namespaced_pod(
        "memgraph-0",
        NS,
        {"metadata": {"finalizers": ["x/three"], "labels": {"a": None, "b": "2"}}},
        _content_type="application/merge-patch+json",
    )
    assert pod.metadata.finalizers == ["x/three"]
    assert pod.metadata.labels == {"b": "2"}


def test_json_patch_applies_and_failed_test_op_writes_nothing(core):
    created = core.create_namespaced_pod(NS, pod_body("memgraph-0", {"a": "1"}))
    pod = core.patch_namespaced_pod(
        "memgraph-0", NS, [{"op": "add", "path": "/metadata/labels/b", "value": "2"}]
    )
    assert pod.metadata.labels == {"a": "1", "b": "2"}
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_pod(
            "memgraph-0",
            NS,
            [
                {"op": "replace", "path": "/metadata/labels/a", "value": "changed"},
                {"op": "test", "path": "/metadata/labels/b", "value": "wrong"},
            ],
        )
    assert exc.value.status == 422
    after = core.read_namespaced_pod("memgraph-0", NS)
    assert after.metadata.labels == {"a": "1", "b": "2"}
    assert int(after.metadata.resource_version) == int(created.metadata.resource_version) + 1


def test_patch_with_stale_resource_version_is_409(core):
    pod = core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {"x": "1"}}})
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_pod(
            "memgraph-0",
            NS,
            {"metadata": {"resourceVersion": pod.metadata.resource_version, "labels": {"y": "1"}}},
        )
    assert exc.value.status == 409 and status_of(exc)["reason"] == "Conflict"


def test_noop_patch_keeps_resource_version(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0", {"a": "1"}))
    before = core.read_namespaced_pod("memgraph-0", NS).metadata.resource_version
    after = core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {"a": "1"}}})
    assert after.metadata.resource_version == before


def test_main_resource_patch_cannot_change_status_or_immutable_spec(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    pod = core.patch_namespaced_pod("memgraph-0", NS, {"status": {"phase": "Running"}})
    assert pod.status.phase == "Pending"
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_pod("memgraph-0", NS, {"spec": {"hostname": "other"}})
    assert exc.value.status == 422


def test_graceful_delete_marks_pod_then_removes_it_after_grace(core, emu, clock: FakeClock):
    core.create_namespaced_pod(NS, pod_body("memgraph-0", grace=20))
    start_rv = core.list_namespaced_pod(NS).metadata.resource_version
    deleted = core.delete_namespaced_pod("memgraph-0", NS)
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 20
    still = core.read_namespaced_pod("memgraph-0", NS)
    assert still.metadata.deletion_timestamp is not None
    clock.advance(19.5)
    assert emu.store.reap() == 0
    assert core.read_namespaced_pod("memgraph-0", NS).metadata.name == "memgraph-0"
    clock.advance(1.0)
    wait_until(lambda: not core.list_namespaced_pod(NS).items, what="pod removed after grace")
    w = watch.Watch()
    events = list(w.stream(core.list_namespaced_pod, NS, resource_version=start_rv, timeout_seconds=1))
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[1]["object"].metadata.deletion_timestamp is not None


def test_pod_bound_to_a_node_stays_terminating_after_its_grace_until_its_kubelet_or_a_force_delete(
        core, emu, clock: FakeClock):
    body = pod_body("memgraph-2", grace=20)
    body.spec.node_name = "node-2"
    core.create_namespaced_pod(NS, body)
    core.delete_namespaced_pod("memgraph-2", NS)
    clock.advance(3600)
    emu.store.reap()
    core.patch_namespaced_pod("memgraph-2", NS, {"metadata": {"labels": {"a": "b"}}})
    assert core.read_namespaced_pod("memgraph-2", NS).metadata.deletion_timestamp is not None, (
        "only its kubelet removes a pod bound to a node (a lost node's pod stays Terminating)")
    core.delete_namespaced_pod("memgraph-2", NS, grace_period_seconds=0)
    assert core.list_namespaced_pod(NS).items == []


def test_finalize_pod_removes_terminating_pod_and_live_watch_sees_modified_then_deleted(core, emu):
    core.create_namespaced_pod(NS, pod_body("memgraph-1"))
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    col = Collector(core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=5)
    try:
        core.delete_namespaced_pod("memgraph-1", NS, grace_period_seconds=600)
        wait_until(lambda: col.types() == ["MODIFIED"], what="MODIFIED with deletionTimestamp")
        assert core.read_namespaced_pod("memgraph-1", NS).metadata.deletion_grace_period_seconds == 600
        assert emu.finalize_pod(NS, "memgraph-1") is True
        wait_until(lambda: col.types() == ["MODIFIED", "DELETED"], what="DELETED after finalize")
    finally:
        col.close()
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_pod("memgraph-1", NS)
    assert exc.value.status == 404


def test_delete_with_grace_zero_removes_at_once_and_finalizers_hold_the_pod(core, emu, clock):
    core.create_namespaced_pod(NS, pod_body("now"))
    core.delete_namespaced_pod("now", NS, grace_period_seconds=0)
    assert [p.metadata.name for p in core.list_namespaced_pod(NS).items] == []
    core.create_namespaced_pod(NS, pod_body("held"))
    core.patch_namespaced_pod("held", NS, {"metadata": {"finalizers": ["memgraph-ha.io/test"]}})
    core.delete_namespaced_pod("held", NS, grace_period_seconds=1)
    clock.advance(2)
    emu.store.reap()
    assert core.read_namespaced_pod("held", NS).metadata.deletion_timestamp is not None
    core.patch_namespaced_pod("held", NS, [{"op": "remove", "path": "/metadata/finalizers"}])
    assert core.list_namespaced_pod(NS).items == []


def test_status_subresource_sets_phase_and_ip_for_the_kubelet_role(core, emu):
    emu.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "memgraph-0", "namespace": NS},
            "spec": {"containers": [{"name": "memgraph", "image": "memgraph/memgraph:3.5.0"}]},
        }
    )
    emu.patch_status("Pod", NS, "memgraph-0", {"phase": "Running", "podIP": "127.0.0.11"})
    pod = core.read_namespaced_pod("memgraph-0", NS)
    assert (pod.status.phase, pod.status.pod_ip) == ("Running", "127.0.0.11")
    body = core.read_namespaced_pod_status("memgraph-0", NS)
    body.status.phase = "Failed"
    replaced = core.replace_namespaced_pod_status("memgraph-0", NS, body)
    assert replaced.status.phase == "Failed"
