"""Watch semantics (reference bolt-and-kube-emulation.md 3.4) through kubernetes.watch.Watch."""

from __future__ import annotations

import time

import pytest
from kubernetes import client, watch

from .conftest import NS, Collector, pod_body, status_of, wait_until


def stream(core, **kw) -> list[dict]:
    return list(watch.Watch().stream(core.list_namespaced_pod, NS, **kw))


def test_watch_without_resource_version_sends_initial_added_then_ends_at_timeout(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    core.create_namespaced_pod(NS, pod_body("memgraph-1"))
    started = time.monotonic()
    events = stream(core, timeout_seconds=1)
    elapsed = time.monotonic() - started
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "memgraph-0"),
        ("ADDED", "memgraph-1"),
    ]
    assert 0.9 <= elapsed < 3.0


def test_watch_resumes_after_resource_version_without_initial_events(core):
    core.create_namespaced_pod(NS, pod_body("before"))
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.create_namespaced_pod(NS, pod_body("after"))
    core.patch_namespaced_pod("before", NS, {"metadata": {"labels": {"x": "1"}}})
    core.delete_namespaced_pod("after", NS, grace_period_seconds=0)
    events = stream(core, resource_version=rv, timeout_seconds=1)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "after"),
        ("MODIFIED", "before"),
        ("DELETED", "after"),
    ]
    rvs = [int(e["object"].metadata.resource_version) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_watch_live_events_arrive_while_the_stream_is_open(core):
    col = Collector(core.list_namespaced_pod, NS, timeout_seconds=5)
    try:
        wait_until(lambda: col.watch._resp is not None if hasattr(col.watch, "_resp") else False)
        core.create_namespaced_pod(NS, pod_body("memgraph-0"))
        wait_until(lambda: col.types() == ["ADDED"], what="live ADDED")
        core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {"a": "b"}}})
        wait_until(lambda: col.types() == ["ADDED", "MODIFIED"], what="live MODIFIED")
    finally:
        col.close()


def test_label_change_in_and_out_of_selector_is_added_and_deleted(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0", {"app": "memgraph"}))
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    role = "memgraph-ha.io/role"
    core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {role: "main"}}})
    core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"annotations": {"a": "1"}}})
    core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {role: None}}})
    events = stream(core, resource_version=rv, timeout_seconds=1, label_selector=f"{role}=main")
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    left = events[2]["object"]
    assert left.metadata.labels[role] == "main"  # the previous content ...
    assert (
        left.metadata.resource_version == core.read_namespaced_pod("memgraph-0", NS).metadata.resource_version
    )


def test_watch_from_compacted_resource_version_raises_410_expired(core, emu):
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    old_rv = core.list_namespaced_pod(NS).metadata.resource_version
    for i in range(60):  # the fixture keeps 50 changes of history
        core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {"n": str(i)}}})
    with pytest.raises(client.ApiException) as exc:
        stream(core, resource_version=old_rv, timeout_seconds=1)
    assert exc.value.status == 410
    assert exc.value.reason.startswith(f"Expired: too old resource version: {old_rv} (")


def test_watch_410_without_timeout_retries_once_then_raises(core, emu):
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    old_rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.patch_namespaced_pod("memgraph-0", NS, {"metadata": {"labels": {"n": "1"}}})
    emu.compact()
    emu.reset_counters()
    with pytest.raises(client.ApiException) as exc:
        stream(core, resource_version=old_rv)
    assert exc.value.status == 410
    assert emu.counters()["kube-emulator-tests/1.0"] == {"watch": 2}


def test_bookmarks_only_when_asked_and_carry_the_current_revision(core, emu):
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    with_bm = Collector(core.list_namespaced_pod, NS, allow_watch_bookmarks=True, timeout_seconds=3)
    without = Collector(core.list_namespaced_pod, NS, timeout_seconds=3)
    try:
        wait_until(
            lambda: with_bm.types() == ["ADDED"] and without.types() == ["ADDED"], what="initial events"
        )

        def bookmarked() -> bool:
            emu.send_bookmarks()
            return "BOOKMARK" in with_bm.types()

        wait_until(bookmarked, what="a BOOKMARK")
        bm = next(e for e in with_bm.events if e["type"] == "BOOKMARK")
        assert bm["object"]["metadata"]["resourceVersion"] == str(emu.revision)
        assert with_bm.watch.resource_version == str(emu.revision)
        assert "BOOKMARK" not in without.types()
    finally:
        with_bm.close()
        without.close()


def test_cut_watches_breaks_open_streams(core, emu):
    col = Collector(core.list_namespaced_pod, NS, timeout_seconds=30)
    try:
        time.sleep(0.2)
        started = time.monotonic()
        emu.cut_watches()
        wait_until(lambda: not col._thread.is_alive(), what="stream ended by the cut")
        assert time.monotonic() - started < 5
    finally:
        col.close()


def test_watch_of_a_lease_by_name(coord):
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="memgraph-ha"), spec=client.V1LeaseSpec(holder_identity="a")
    )
    coord.create_namespaced_lease(NS, body)
    coord.create_namespaced_lease(NS, client.V1Lease(metadata=client.V1ObjectMeta(name="other")))
    events = list(
        watch.Watch().stream(
            coord.list_namespaced_lease, NS, field_selector="metadata.name=memgraph-ha", timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].spec.holder_identity) for e in events] == [("ADDED", "a")]


def test_http_level_410_on_watch_raises_at_once(core, emu):
    emu.inject(410, verb="watch", path_regex=r"/pods$", count=1)
    with pytest.raises(client.ApiException) as exc:
        stream(core, resource_version="1", timeout_seconds=1)
    assert exc.value.status == 410 and status_of(exc)["reason"] == "Expired"
    assert stream(core, resource_version=str(emu.revision), timeout_seconds=1) == []
