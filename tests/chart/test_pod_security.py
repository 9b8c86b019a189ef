"""Secure defaults: the default render (HA off and on) passes Pod Security "restricted"; privileged root
containers appear only when a value asks for them; only the agent has a Kubernetes token."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart import pss
from tests.chart import render as r


def _pods(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(name, pod spec, pod annotations) of every pod the objects would create."""
    out = []
    for d in docs:
        if d["kind"] == "StatefulSet":
            tpl = d["spec"]["template"]
            out.append((d["metadata"]["name"], tpl["spec"], tpl["metadata"].get("annotations") or {}))
        elif d["kind"] == "CronJob":
            tpl = d["spec"]["jobTemplate"]["spec"]["template"]
            out.append(
                (d["metadata"]["name"], tpl["spec"], (tpl.get("metadata") or {}).get("annotations") or {})
            )
        elif d["kind"] == "Pod":
            out.append((d["metadata"]["name"], d["spec"], d["metadata"].get("annotations") or {}))
    return out


@pytest.mark.parametrize("value_set", ["default", "ha", "ha-ordinary-sidecar", "everything-on"])
def test_default_render_passes_pod_security_restricted(value_set: str) -> None:
    values = r.VALUE_SETS[value_set]
    pods = _pods(r.render(values) + r.hooks(values))
    assert pods, "no pod rendered"
    for name, spec, pod_annotations in pods:
        assert pss.violations(spec, "restricted", pod_annotations) == [], name


def test_the_checker_finds_the_official_defaults_privileged_root_init_container() -> None:
    """The official chart's defaults fail baseline (and so restricted): the check can fail."""
    spec = r.pod_spec(r.render_set("official"))
    found = pss.violations(spec, "baseline")
    assert "container 'init-sysctl': privileged" in found
    restricted = pss.violations(spec, "restricted")
    assert "container 'init-sysctl': runAsUser 0" in restricted
    assert "container 'init-sysctl': allowPrivilegeEscalation not false" in restricted


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.update(hostNetwork=True), "pod: hostNetwork"),
        (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "volume 'h': hostPath"),
        (
            lambda s: s["containers"][0]["securityContext"].update(runAsNonRoot=False),
            "container 'memgraph': runAsNonRoot not true",
        ),
        (
            lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
            "container 'memgraph': adds capability SYS_ADMIN",
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(seccompProfile={"type": "Unconfined"}),
            "container 'memgraph': seccompProfile Unconfined",
        ),
        (
            lambda s: s["securityContext"].update(sysctls=[{"name": "vm.max_map_count", "value": "1"}]),
            "pod: sysctl vm.max_map_count",
        ),
        (
            lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
            "volume 'n': type nfs",
        ),
    ],
)
def test_the_checker_flags_each_restricted_rule(mutate: Any, expected: str) -> None:
    spec = r.pod_spec(r.render_set("ha"))
    mutate(spec)
    assert expected in pss.violations(spec, "restricted")


def test_privileged_root_init_containers_only_when_a_value_asks() -> None:
    plain = r.pod_spec(r.render_set("default"))
    assert "initContainers" not in plain
    asked = r.render(
        {"sysctlInitContainer": {"enabled": True}, "persistentVolumeClaim": {"createCoreDumpsClaim": True}}
    )
    for name in ("init-sysctl", "init-core-dumps"):
        ctx = r.container(asked, name)["securityContext"]
        assert ctx["privileged"] is True and ctx["runAsUser"] == 0


def test_only_the_agent_image_containers_get_a_token_and_the_pod_automounts_none(ha_docs) -> None:
    _, docs = ha_docs
    spec = r.pod_spec(docs)
    assert spec["automountServiceAccountToken"] is False
    token_volumes = {
        v["name"]
        for v in spec["volumes"]
        if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))
    }
    holders = [
        c["name"]
        for c in pss.containers(spec)
        if token_volumes & {m["name"] for m in c.get("volumeMounts", [])}
    ]
    # the re-seed init container reads the record; memgraph (user query modules): none
    assert sorted(holders) == ["agent", "reseed"]


def test_notes_give_the_resources_and_memory_limit_advice_when_resources_are_empty() -> None:
    notes = r.notes({})
    assert "resources" in notes and "--memory-limit" in notes and "below the pod's memory limit" in notes
    assert "--memory-limit" not in r.notes(r.VALUE_SETS["everything-on"])


def test_notes_say_when_the_sysctl_init_container_is_needed() -> None:
    assert "vm.max_map_count is too low" in r.notes({})
    assert "vm.max_map_count is too low" not in r.notes({"sysctlInitContainer": {"enabled": True}})
