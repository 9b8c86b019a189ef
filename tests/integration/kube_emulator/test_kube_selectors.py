"""Label selectors (every operator) and field selectors on list, through the real client."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import NS, pod_body, status_of


@pytest.fixture
def three_pods(core):
    core.create_namespaced_pod(NS, pod_body("memgraph-0", {"app": "memgraph", "memgraph-ha.io/role": "main"}))
    core.create_namespaced_pod(
        NS, pod_body("memgraph-1", {"app": "memgraph", "memgraph-ha.io/role": "replica"})
    )
    core.create_namespaced_pod(NS, pod_body("other", {"app": "web"}))


def names(core, **kw) -> list[str]:
    return [p.metadata.name for p in core.list_namespaced_pod(NS, **kw).items]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=memgraph", ["memgraph-0", "memgraph-1"]),
        ("app==web", ["other"]),
        ("app!=memgraph", ["other"]),
        ("memgraph-ha.io/role!=main", ["memgraph-1", "other"]),  # != matches objects without the key
        ("memgraph-ha.io/role in (main, replica)", ["memgraph-0", "memgraph-1"]),
        ("memgraph-ha.io/role notin (main)", ["memgraph-1", "other"]),
        ("memgraph-ha.io/role", ["memgraph-0", "memgraph-1"]),
        ("!memgraph-ha.io/role", ["other"]),
        ("app=memgraph,memgraph-ha.io/role=main", ["memgraph-0"]),
        ("app in (memgraph,web),!memgraph-ha.io/role", ["other"]),
    ],
)
def test_label_selector_operator_selects_matching_pods(core, three_pods, selector, expected):
    assert names(core, label_selector=selector) == expected


def test_field_selector_by_name_and_namespace(core, three_pods):
    assert names(core, field_selector="metadata.name=memgraph-1") == ["memgraph-1"]
    assert names(core, field_selector="metadata.name!=memgraph-1,metadata.namespace=default") == [
        "memgraph-0",
        "other",
    ]
    assert names(core, field_selector="metadata.name=memgraph-1", label_selector="app=web") == []


def test_field_selector_on_status_phase(core, emu, three_pods):
    emu.patch_status("Pod", NS, "memgraph-1", {"phase": "Running"})
    assert names(core, field_selector="status.phase=Running") == ["memgraph-1"]


def test_unparsable_or_unsupported_selector_is_400_not_match_all(core, three_pods):
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_pod(NS, label_selector="app in memgraph")
    assert exc.value.status == 400 and status_of(exc)["reason"] == "BadRequest"
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_pod(NS, field_selector="spec.hostname=x")
    assert exc.value.status == 400
    assert "field label not supported" in status_of(exc)["message"]


def test_list_across_namespaces_and_namespace_isolation(core, three_pods):
    core.create_namespaced_pod("other-ns", pod_body("memgraph-0", {"app": "memgraph"}))
    assert names(core) == ["memgraph-0", "memgraph-1", "other"]
    everywhere = core.list_pod_for_all_namespaces(label_selector="app=memgraph").items
    assert sorted((p.metadata.namespace, p.metadata.name) for p in everywhere) == [
        ("default", "memgraph-0"),
        ("default", "memgraph-1"),
        ("other-ns", "memgraph-0"),
    ]
