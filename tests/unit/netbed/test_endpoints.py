"""EndpointSlice rules (sim.endpoints) and the propagation delay, on a fake clock."""

from __future__ import annotations

from typing import Any

from sim.endpoints import EndpointsController, dns_published, endpoints_for, proxy_candidates, service_spec

SEL = {"app": "mg"}


def pod(name: str, ip: str | None = "198.18.0.10", ready: bool = True, terminating: bool = False,
        labels: dict[str, str] | None = None, subdomain: str = "mg-headless") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "labels": {**SEL, **(labels or {})}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": "Running",
                              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    containers = [{"name": "memgraph", "ports": [{"name": "bolt", "containerPort": 7687}]}]
    return {"metadata": meta, "status": status,
            "spec": {"hostname": name, "subdomain": subdomain, "containers": containers}}


def svc(name: str, selector: dict[str, str], headless: bool = False, publish: bool = False) -> dict[str, Any]:
    ports = [{"name": "bolt", "port": 7687, "targetPort": "bolt"}]
    cluster_ip = "None" if headless else "198.18.0.2"
    spec: dict[str, Any] = {"selector": selector, "ports": ports, "clusterIP": cluster_ip}
    if publish:
        spec["publishNotReadyAddresses"] = True
    return {"metadata": {"name": name}, "spec": spec}


def test_a_terminating_pod_is_not_ready_but_still_serving() -> None:
    (ep,) = endpoints_for(service_spec(svc("mg", SEL)), [pod("mg-0", terminating=True)])
    assert (ep.ready, ep.serving, ep.terminating) == (False, True, True)


def test_publish_not_ready_addresses_makes_every_selected_pod_ready_even_terminating() -> None:
    spec = service_spec(svc("mg-headless", SEL, headless=True, publish=True))
    eps = endpoints_for(spec, [pod("mg-0", ready=False), pod("mg-1", "198.18.0.11", terminating=True)])
    assert [e.ready for e in eps] == [True, True]
    assert [e.hostname for e in eps] == ["mg-0", "mg-1"]


def test_pods_without_an_ip_or_not_selected_are_no_endpoints() -> None:
    spec = service_spec(svc("mg", {**SEL, "role": "main"}))
    pods = [pod("mg-0", ip=None, labels={"role": "main"}), pod("mg-1", labels={"role": "replica"}),
            pod("mg-2", "198.18.0.12", labels={"role": "main"})]
    eps = endpoints_for(spec, pods)
    assert [e.pod for e in eps] == ["mg-2"]
    assert eps[0].port_for("bolt") == 7687 and eps[0].port_for("nope") is None


def test_kube_proxy_prefers_ready_endpoints_then_falls_back_to_serving_terminating_ones() -> None:
    spec = service_spec(svc("mg", SEL))
    both = endpoints_for(spec, [pod("mg-0", terminating=True), pod("mg-1", "198.18.0.11")])
    assert [e.pod for e in proxy_candidates(both)] == ["mg-1"]
    only_terminating = endpoints_for(spec, [pod("mg-0", terminating=True)])
    assert [e.pod for e in proxy_candidates(only_terminating)] == ["mg-0"]  # KEP-1669
    failing = endpoints_for(spec, [pod("mg-0", ready=False, terminating=True)])
    assert proxy_candidates(failing) == []


def test_dns_publishes_only_ready_endpoints() -> None:
    spec = service_spec(svc("mg-headless", SEL, headless=True))
    eps = endpoints_for(spec, [pod("mg-0", terminating=True), pod("mg-1", "198.18.0.11", ready=False),
                               pod("mg-2", "198.18.0.12")])
    assert [e.pod for e in dns_published(eps)] == ["mg-2"]


class Store:
    def __init__(self) -> None:
        self.pods: list[dict[str, Any]] = []
        self.services = [svc("mg", SEL)]
        self.rev = 1

    def set(self, *pods: dict[str, Any]) -> None:
        self.pods, self.rev = list(pods), self.rev + 1


def test_consumers_see_a_change_only_after_the_propagation_delay() -> None:
    store, now = Store(), [100.0]
    ctl = EndpointsController(lambda: store.pods, lambda: store.services, lambda: store.rev, delay_s=1.0,
                              clock=lambda: now[0])
    store.set(pod("mg-0"))
    ctl.observe()
    assert ctl.view("mg") == () and [e.pod for e in ctl.current("mg")] == ["mg-0"]
    now[0] = 100.99
    assert ctl.view("mg") == ()
    now[0] = 101.0
    assert [e.pod for e in ctl.view("mg")] == ["mg-0"]
    store.set(pod("mg-0", terminating=True))
    ctl.observe()
    now[0] = 101.5
    assert ctl.view("mg")[0].terminating is False  # still the old state for another half second
    now[0] = 102.0
    assert ctl.view("mg")[0].terminating is True


def test_an_unchanged_store_revision_is_not_recomputed() -> None:
    store, now, calls = Store(), [0.0], []

    def pods() -> list[dict[str, Any]]:
        calls.append(1)
        return store.pods

    ctl = EndpointsController(pods, lambda: store.services, lambda: store.rev, clock=lambda: now[0])
    ctl.observe()
    ctl.observe()
    assert len(calls) == 1
