"""The stale-view control (sim.kube.faults): one client, by source address, learns of pod changes late --
its LIST answers the state of `delay` ago, its WATCH delivers each change `delay` after its commit, in
order; GETs, writes and every other client stay current. Time is the emulator's fake clock."""

from __future__ import annotations

import time

import pytest
from kubernetes import watch

from sim.kube.resources import by_kind
from sim.kube.store import Store

from .conftest import NS, Collector, pod_body, wait_until

ME = "127.0.0.1"  # the typed client's source address in these tests


def names(core) -> list[str]:
    return [p.metadata.name for p in core.list_namespaced_pod(NS).items]


def test_stale_list_answers_the_state_of_delay_ago_with_its_resource_version(core, emu, clock):
    core.create_namespaced_pod(NS, pod_body("old"))
    rv_old = core.list_namespaced_pod(NS).metadata.resource_version
    clock.advance(10)
    core.create_namespaced_pod(NS, pod_body("new"))
    core.patch_namespaced_pod("old", NS, {"metadata": {"labels": {"x": "1"}}})
    emu.set_stale_view(ME, 5.0)
    listed = core.list_namespaced_pod(NS)
    assert [p.metadata.name for p in listed.items] == ["old"]
    assert listed.items[0].metadata.labels in (None, {}), "the label patched 0 s ago is not seen yet"
    assert listed.metadata.resource_version == rv_old
    clock.advance(5)
    assert names(core) == ["new", "old"]


def test_stale_view_of_another_address_leaves_this_client_current(core, emu, clock):
    emu.set_stale_view("198.18.0.9", 30.0)
    core.create_namespaced_pod(NS, pod_body("p"))
    assert names(core) == ["p"]
    assert emu.faults.stale_delay("198.18.0.9", "list", "pods") == 30.0
    assert emu.faults.stale_delay("198.18.0.9", "get", "pods") == 0.0
    assert emu.faults.stale_delay("198.18.0.9", "list", "leases") == 0.0


def test_get_of_one_pod_stays_current_under_a_stale_view(core, emu, clock):
    core.create_namespaced_pod(NS, pod_body("p"))
    clock.advance(10)
    emu.set_stale_view(ME, 5.0)
    core.delete_namespaced_pod("p", NS, grace_period_seconds=30)
    assert core.read_namespaced_pod("p", NS).metadata.deletion_timestamp is not None
    assert core.list_namespaced_pod(NS).items[0].metadata.deletion_timestamp is None


def test_stale_watch_delivers_each_change_only_once_it_is_delay_old(core, emu, clock):
    core.create_namespaced_pod(NS, pod_body("p"))
    clock.advance(10)
    emu.set_stale_view(ME, 5.0)
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    col = Collector(core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=20)
    try:
        core.delete_namespaced_pod("p", NS, grace_period_seconds=30)  # MODIFIED: deletionTimestamp
        core.create_namespaced_pod(NS, pod_body("q"))
        clock.advance(4.9)
        time.sleep(1.0)  # several of the stream's polls: nothing may come through before the delay
        assert col.events == []
        clock.advance(0.1)
        wait_until(lambda: len(col.events) >= 2, 10.0, "both changes delivered")
        assert [(e["type"], e["object"].metadata.name) for e in col.events] == [
            ("MODIFIED", "p"), ("ADDED", "q")]
        assert col.events[0]["object"].metadata.deletion_timestamp is not None
    finally:
        col.close()


def test_stale_watch_without_resource_version_starts_from_the_state_of_delay_ago(core, emu, clock):
    core.create_namespaced_pod(NS, pod_body("a"))
    clock.advance(10)
    core.create_namespaced_pod(NS, pod_body("b"))
    emu.set_stale_view(ME, 5.0)
    events = list(watch.Watch().stream(core.list_namespaced_pod, NS, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a")]


def test_clearing_the_stale_view_makes_the_client_current_again(core, emu, clock):
    emu.set_stale_view(ME, 60.0)
    core.create_namespaced_pod(NS, pod_body("p"))
    assert names(core) == []
    emu.clear_stale_view(ME)
    assert names(core) == ["p"]
    assert emu.faults.describe()["stale_views"] == {}


@pytest.mark.parametrize("kwargs", [{"delay_s": 0.0}, {"delay_s": 1.0, "verbs": ("get",)},
                                    {"delay_s": 1.0, "resources": ()}])
def test_stale_view_refuses_a_view_it_cannot_apply(emu, kwargs):
    with pytest.raises(ValueError):
        emu.set_stale_view(ME, **kwargs)


def test_store_select_as_of_undoes_creates_updates_and_deletes_after_the_cutoff():
    now = [0.0]
    store = Store(clock=lambda: now[0])
    rt = by_kind("Pod")

    def pod(name: str, label: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"v": label}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}

    store.create(rt, NS, pod("kept", "1"))
    store.create(rt, NS, pod("gone", "1"))
    rv_then = store.revision
    now[0] = 10.0
    store.create(rt, NS, pod("later", "1"))
    obj = store.get(rt, NS, "kept")
    obj["metadata"]["labels"] = {"v": "2"}
    store.replace(rt, NS, "kept", obj)
    store.delete(rt, NS, "gone", grace=0)
    items, rv = store.select_as_of(rt, NS, lambda o: True, cutoff=5.0)
    seen = [(o["metadata"]["name"], o["metadata"]["labels"]["v"]) for o in items]
    assert seen == [("gone", "1"), ("kept", "1")]
    assert rv == rv_then
    now_items, now_rv = store.select(rt, NS, lambda o: True)
    assert store.select_as_of(rt, NS, lambda o: True, cutoff=10.0) == (now_items, now_rv)


def test_an_open_watch_follows_a_stale_view_set_after_it_started(core, emu, clock):
    col = Collector(core.list_namespaced_pod, NS, timeout_seconds=20)
    try:
        time.sleep(0.5)  # the stream is open (nothing to send: no pods)
        emu.set_stale_view(ME, 5.0)
        core.create_namespaced_pod(NS, pod_body("p"))
        time.sleep(1.0)
        assert col.events == []
        clock.advance(5.0)
        wait_until(lambda: len(col.events) >= 1, 10.0, "the change delivered once 5 s old")
        assert [(e["type"], e["object"].metadata.name) for e in col.events] == [("ADDED", "p")]
    finally:
        col.close()
