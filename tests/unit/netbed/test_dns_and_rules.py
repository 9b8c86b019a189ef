"""Cluster DNS rendering (sim.dns), partition rule sets (sim.partition) and the bed's naming rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import partition
from sim.dns import ClusterDNS, OwnName
from sim.endpoints import EndpointsController
from sim.netns import IFNAME_MAX, PodNet, bridge_name, ns_name, veth_name, write_in_place
from sim.runlease import SUBNETS, in_bench_range, run_id_of, subnet
from tests.unit.netbed.test_endpoints import SEL, pod, svc


def dns(publish: bool, *pods: dict) -> ClusterDNS:
    services = [svc("mg", {**SEL, "role": "main"}), svc("mg-headless", SEL, headless=True, publish=publish)]
    ctl = EndpointsController(lambda: list(pods), lambda: services, lambda: 1, delay_s=0.0, clock=lambda: 5.0)
    ctl.observe()
    return ClusterDNS(ctl, "default", "198.18.0.1")


def test_headless_names_resolve_for_ready_pods_and_vanish_when_terminating() -> None:
    d = dns(False, pod("mg-0"), pod("mg-1", "198.18.0.11", terminating=True))
    assert d.resolve("mg-0.mg-headless") == "198.18.0.10"
    assert d.resolve("mg-0.mg-headless.default.svc.cluster.local") == "198.18.0.10"
    assert d.resolve("mg-1.mg-headless") is None  # seed 001 incident 3


def test_publish_not_ready_keeps_a_terminating_pods_name() -> None:
    d = dns(True, pod("mg-1", "198.18.0.11", ready=False, terminating=True))
    assert d.resolve("mg-1.mg-headless") == "198.18.0.11"


def test_services_the_api_server_and_the_pods_own_name() -> None:
    d = dns(False)
    assert d.resolve("mg") == "198.18.0.2" and d.resolve("mg.default.svc.cluster.local") == "198.18.0.2"
    assert d.resolve("kubernetes.default.svc") == "198.18.0.1"
    own = OwnName("198.18.0.13", "mg-3", "mg-headless")
    assert d.resolve("mg-3.mg-headless.default.svc.cluster.local", own) == "198.18.0.13"
    assert d.resolve("localhost") == "127.0.0.1"


def test_hosts_files_are_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    write_in_place(path, "1.2.3.4 a\n")
    inode = path.stat().st_ino
    write_in_place(path, "5.6.7.8 b\n")
    assert path.stat().st_ino == inode
    assert path.read_text().startswith("5.6.7.8 b\n#") and "1.2.3.4" not in path.read_text()


TOPO = partition.Topology("198.18.0.1", "198.18.0.10", "198.18.0.254", 6443, 9999)
NET = PodNet("mgh-abcde-mg-0-10", "198.18.0.10", "mghabcdev10")


def rules(cut: partition.Cut) -> tuple[str, str]:
    text = partition.ruleset(NET, cut, TOPO)
    inc, out = text.split("chain outgoing")
    return inc, out


def test_a_full_cut_drops_both_ways_but_keeps_loopback_and_the_admin_port() -> None:
    inc, out = rules(partition.Cut("all"))
    assert inc.strip().endswith("drop\n  }") and out.rstrip().endswith("drop\n  }\n}")
    assert 'iifname "lo" accept' in inc and "tcp dport 9999 accept" in inc
    assert "reject" not in inc + out


@pytest.mark.parametrize(("cut", "in_match", "out_match"), [
    (partition.Cut("peers"), "ip saddr 198.18.0.10-198.18.0.254 drop",
     "ip daddr 198.18.0.10-198.18.0.254 drop"),
    (partition.Cut("api"), "ip saddr 198.18.0.1 tcp sport 6443 drop",
     "ip daddr 198.18.0.1 tcp dport 6443 drop"),
    (partition.Cut("hosts", hosts=("198.18.0.11",)), "ip saddr { 198.18.0.11 } drop",
     "ip daddr { 198.18.0.11 } drop"),
])
def test_scopes_match_what_they_name(cut: partition.Cut, in_match: str, out_match: str) -> None:
    inc, out = rules(cut)
    assert in_match in inc and out_match in out


def test_one_direction_leaves_the_other_chain_without_a_drop() -> None:
    inc, out = rules(partition.Cut("all", "in"))
    assert "drop" in inc and "drop" not in out
    inc, out = rules(partition.Cut("api", "out"))
    assert "drop" not in inc and "tcp dport 6443 drop" in out


def test_a_port_narrowed_cut_drops_that_port_on_either_end_only() -> None:
    inc, out = rules(partition.Cut("hosts", hosts=("198.18.0.11",), ports=(10000,)))
    assert "ip saddr { 198.18.0.11 } tcp dport { 10000 } drop" in inc
    assert "ip saddr { 198.18.0.11 } tcp sport { 10000 } drop" in inc
    assert "ip daddr { 198.18.0.11 } tcp dport { 10000 } drop" in out
    assert "    drop" not in inc + out  # nothing else is dropped


def test_a_node_partition_lets_the_nodes_own_probes_through_and_a_pod_cut_does_not() -> None:
    topo = partition.Topology("198.18.0.1", "198.18.0.10", "198.18.0.254", 6443, 9999, node_ip="198.18.0.2")
    inc, out = partition.ruleset(NET, partition.Cut("all", node=True), topo).split("chain outgoing")
    assert "ip saddr 198.18.0.2 accept" in inc and "ip daddr 198.18.0.2 accept" in out
    assert inc.index("198.18.0.2 accept") < inc.index("    drop"), "accepted before the drop"
    pod_cut = partition.ruleset(NET, partition.Cut("all"), topo)
    assert "198.18.0.2" not in pod_cut


def test_bad_cuts_are_refused() -> None:
    with pytest.raises(ValueError):
        partition.Cut("everything")
    with pytest.raises(ValueError):
        partition.Cut("all", "sideways")
    with pytest.raises(ValueError):
        partition.Cut("hosts")
    with pytest.raises(ValueError):
        partition.Cut("all", ports=(10000,))


def test_names_carry_the_prefix_and_the_run_and_fit_linux_interface_names() -> None:
    run = "zz9zz"
    assert len(bridge_name(run)) <= IFNAME_MAX and len(veth_name(run, 254)) <= IFNAME_MAX
    for name in (bridge_name(run), veth_name(run, 254), ns_name(run, "memgraph-12", 254)):
        assert run_id_of(name) == run
    assert run_id_of("eth0") is None and run_id_of("docker0") is None and run_id_of("mgh") is None


def test_subnets_are_the_512_slash24s_of_the_benchmark_range() -> None:
    assert str(subnet(0)) == "198.18.0.0/24" and str(subnet(SUBNETS - 1)) == "198.19.255.0/24"
    assert in_bench_range("198.19.255.254") and not in_bench_range("198.20.0.1") and not in_bench_range("x")
    with pytest.raises(ValueError):
        subnet(SUBNETS)
