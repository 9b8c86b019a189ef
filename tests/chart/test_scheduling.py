"""Scheduling for HA: pod anti-affinity across nodes by default with HA on; topologySpreadConstraints."""

from __future__ import annotations

from tests.chart import render as r

SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "memgraph", "app.kubernetes.io/instance": "memgraph"}}


def test_ha_on_spreads_pods_over_nodes_with_preferred_anti_affinity(ha_docs) -> None:
    name, docs = ha_docs
    terms = r.pod_spec(docs)["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms == [
        {
            "weight": 100,
            "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": SELECTOR},
        }
    ], name


def test_official_values_with_ha_on_get_anti_affinity_next_to_their_node_affinity() -> None:
    docs = r.render(
        {
            **r.official_values(),
            "haAgent": {"enabled": True},
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
        }
    )
    affinity = r.pod_spec(docs)["affinity"]
    assert set(affinity) == {"nodeAffinity", "podAntiAffinity"}


def test_ha_off_adds_no_anti_affinity(default_docs) -> None:
    assert "affinity" not in r.pod_spec(default_docs)


def test_required_anti_affinity_and_none() -> None:
    docs = r.render(
        {
            "haAgent": {
                "enabled": True,
                "podAntiAffinity": "required",
                "podAntiAffinityTopologyKey": "topology.kubernetes.io/zone",
            }
        }
    )
    required = r.pod_spec(docs)["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert required == [{"topologyKey": "topology.kubernetes.io/zone", "labelSelector": SELECTOR}]
    assert "affinity" not in r.pod_spec(r.render({"haAgent": {"enabled": True, "podAntiAffinity": "none"}}))


def test_user_pod_anti_affinity_wins() -> None:
    own = {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": {"topologyKey": "rack", "labelSelector": SELECTOR}}
        ]
    }
    docs = r.render({"haAgent": {"enabled": True}, "affinity": {"podAntiAffinity": own}})
    assert r.pod_spec(docs)["affinity"] == {"podAntiAffinity": own}


def test_topology_spread_constraints_default_their_selector_to_the_release_pods() -> None:
    own_selector = {"matchLabels": {"tier": "db"}}
    docs = r.render(
        {
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                },
                {
                    "maxSkew": 2,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": own_selector,
                },
            ]
        }
    )
    spread = r.pod_spec(docs)["topologySpreadConstraints"]
    assert [c["labelSelector"] for c in spread] == [SELECTOR, own_selector]
    assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone"
