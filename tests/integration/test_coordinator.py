"""The coordinator in process against 3 Memgraph emulator processes and the Kubernetes emulator.

Real pieces: the neo4j driver (coordinator.edge.memgraph), the kubernetes client (coordinator.edge.kube,
the Lease store), the elector, the planner, the executor. The agents' guards are played by a loop in the test
(agent.guard.Guard, one per pod) so a returning old MAIN is demoted as its own agent would do it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import neo4j
import pytest

from agent.guard import Guard
from coordinator.core import history
from coordinator.core import record as record_codec
from coordinator.core.lease_rules import ElectionConfig
from coordinator.core.model import ClusterRecord, Policy, ReplicaMode, ReplicaStatus, Role
from coordinator.core.outcomes import TransitionKind
from coordinator.edge.election import LeaderElector
from coordinator.edge.kube import KubeOps
from coordinator.edge.lease_store import KubeLeaseStore
from coordinator.edge.memgraph import MemgraphClient
from coordinator.runtime.reconciler import Coordinator
from sim.kube.server import KubeEmulator
from sim.memgraph.control import MemgraphProcess
from sim.network import Network
from tests.support import wait as support_wait

NS, STS, HEADLESS = "default", "memgraph", "memgraph-headless"
SELECTOR = "app.kubernetes.io/name=memgraph"
FAILOVER_AFTER = 1.5
INTERVAL = 0.3


class LeaseAdapter:
    def __init__(self, elector: LeaderElector) -> None:
        self.e = elector

    def is_leader(self) -> bool:
        return self.e.is_leader()

    def lease_valid_for(self) -> float:
        return self.e.lease_valid_for()

    def read_annotations(self) -> dict[str, str]:
        return self.e.read_record()[0]

    def update_annotations(self, changes: Any) -> bool:
        return self.e.update_annotations(changes)


@dataclass
class Env:
    kube: KubeEmulator
    net: Network
    mg: dict[str, MemgraphProcess]
    ips: dict[str, str]
    bolt: int
    elector: LeaderElector
    coord: Coordinator
    stop: threading.Event
    guards_on: threading.Event
    start: Callable[[], None] = lambda: None
    clients: dict[str, MemgraphClient] = field(default_factory=dict)

    def pause(self, paused: bool) -> None:
        assert self.elector.update_annotations(
            {record_codec.PREFIX + "paused": "true" if paused else "false"}
        )

    def client(self, pod: str) -> MemgraphClient:
        if pod not in self.clients:
            self.clients[pod] = MemgraphClient(
                self.ips[pod], self.bolt, connect_timeout=0.5, query_timeout=1.0
            )
        return self.clients[pod]

    def record(self) -> ClusterRecord:
        return record_codec.decode(self.elector.read_record(fresh=True)[0])[0]

    def set_ready(self, pod: str, ready: bool) -> None:
        cond = {"type": "Ready", "status": "True" if ready else "False"}
        self.kube.patch_status("Pod", NS, pod, {"conditions": [cond]})

    def labels(self) -> dict[str, dict[str, str]]:
        return {p["metadata"]["name"]: p["metadata"].get("labels") or {} for p in self.kube.list("Pod", NS)}

    def events(self) -> list[dict[str, Any]]:
        return list(self.kube.list("Event", NS))


def wait_until(pred: Callable[[], bool], timeout_s: float, what: str) -> bool:
    """A condition on the emulated cluster: a process restarting meanwhile refuses calls (ignored)."""
    return support_wait.wait_until(pred, timeout_s, what, interval_s=0.05, ignore=(Exception,))


def healthy(env: Env, main: str, replicas: int = 2) -> bool:
    rows = env.client(main).replicas()
    return (
        env.client(main).role() is Role.MAIN
        and sum(r.status is ReplicaStatus.READY for r in rows) == replicas
    )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    net = Network(tmp_path / "hosts", HEADLESS, NS, seed=None)
    bolt, repl = net.pick_ports(2)
    kube = KubeEmulator().start()
    mg: dict[str, MemgraphProcess] = {}
    ips: dict[str, str] = {}
    stop, guards_on = threading.Event(), threading.Event()
    elector: LeaderElector | None = None
    try:
        kube.create(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": STS, "namespace": NS},
                "spec": {
                    "replicas": 3,
                    "serviceName": HEADLESS,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "memgraph"}},
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": "memgraph"}},
                        "spec": {"containers": [{"name": "memgraph", "image": "m"}]},
                    },
                },
            }
        )
        for i in range(3):
            name = f"{STS}-{i}"
            ip = net.allocate_ip()
            ips[name] = ip
            net.set_pod(name, ip)
            mg[name] = MemgraphProcess(
                tmp_path / name,
                ip,
                bolt_port=bolt,
                hosts_file=net.hosts_file,
                replication_port=repl,
                extra_args=["--replica-check-frequency-sec", "0.2"],
            )
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": name,
                        "namespace": NS,
                        "labels": {"app.kubernetes.io/name": "memgraph"},
                    },
                    "spec": {"containers": [{"name": "memgraph", "image": "m"}]},
                    "status": {
                        "phase": "Running",
                        "podIP": ip,
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                },
                keep_status=True,
            )
        elector = LeaderElector(
            KubeLeaseStore(kube.api_client(), NS, f"{STS}-ha", request_timeout=0.3),
            "coordinator-test",
            ElectionConfig(3.0, 2.0, 0.5),
        )
        box: dict[str, Coordinator] = {}
        ops = KubeOps(
            kube.api_client(),
            NS,
            STS,
            SELECTOR,
            request_timeout=1.0,
            on_change=lambda: box["c"].wake() if "c" in box else None,
        )
        policy = Policy(ReplicaMode.STRICT_SYNC, FAILOVER_AFTER, False, repl, HEADLESS)
        e = Env(kube, net, mg, ips, bolt, elector, None, stop, guards_on)  # type: ignore[arg-type]
        coord = Coordinator(
            "coordinator-test",
            ops,
            lambda p: e.client(p.name),
            LeaseAdapter(elector),
            policy,
            interval_s=INTERVAL,
            probe_timeout_s=0.8,
            switchover_budget_s=10.0,
        )
        box["c"] = e.coord = coord
        yield_env = e
        guards = {p: Guard(p, (lambda p=p: e.client(p).demote(repl)), min_interval_s=0.5) for p in mg}

        def guard_loop() -> None:
            while not stop.wait(0.3):
                if not guards_on.is_set():
                    continue
                try:
                    rec = record_codec.decode(elector.read_record()[0])[0]
                except Exception:
                    continue
                for pod, g in guards.items():
                    try:
                        role: Role | None = e.client(pod).role()
                    except Exception:
                        role = None
                    g.check(role, rec)

        for p in mg.values():
            p.start()
        elector.start()
        wait_until(elector.is_leader, 5, "elector leads")
        ops.start()
        threads = [
            threading.Thread(target=coord.run, args=(stop,), daemon=True),
            threading.Thread(target=guard_loop, daemon=True),
        ]

        def start() -> None:
            guards_on.set()
            for t in threads:
                t.start()

        e.start = start
        yield yield_env
        stop.set()
        coord.wake()
        for t in threads:
            t.join(timeout=5)
        ops.stop()
    finally:
        stop.set()
        if elector is not None:
            elector.stop(release=True, timeout_s=2)
        for p in mg.values():
            p.kill()
        kube.stop()


def bootstrapped(env: Env) -> str:
    env.start()
    wait_until(
        lambda: (
            bool(env.record().main) and env.record().sync_confirmed and healthy(env, env.record().main)
        ),
        20,
        "bootstrap with a sync replica the coordinator has seen in sync",
    )
    return env.record().main


def test_bootstrap_chooses_the_instance_with_most_data_and_registers_the_others(env: Env) -> None:
    # memgraph-1 gets data before the coordinator starts: it must win over the lower ordinal
    for i in range(3):
        _write(env, "memgraph-1", i)
    main = bootstrapped(env)
    assert main == "memgraph-1"
    rec = env.record()
    assert rec.generation >= 1
    assert rec.sync_replica in {"memgraph-0", "memgraph-2"}
    modes = {r.name: r.mode for r in env.client(main).replicas()}
    assert sorted(modes.values()) == [ReplicaMode.ASYNC, ReplicaMode.STRICT_SYNC]
    wait_until(
        lambda: (
            sorted(lb.get("memgraph-ha.io/role", "") for lb in env.labels().values())
            == ["main", "replica", "replica"]
        ),
        5,
        "role labels",
    )
    assert env.labels()["memgraph-1"]["memgraph-ha.io/role"] == "main"
    reasons = {ev.get("reason") for ev in env.events()}
    assert "ReplicaRegistered" in reasons


def _write(env: Env, pod: str, i: int) -> None:
    import neo4j

    with neo4j.GraphDatabase.driver(f"bolt://{env.ips[pod]}:{env.bolt}", auth=("", "")) as d:
        d.execute_query("CREATE (:Seed {i: $i})", i=i)


def test_kill_main_fails_over_to_the_sync_replica_and_the_old_main_rejoins(env: Env) -> None:
    main = bootstrapped(env)
    sync = env.record().sync_replica
    for i in range(5):
        _write(env, main, i)
    env.mg[main].kill()
    env.set_ready(main, False)
    t0 = time.monotonic()
    wait_until(lambda: env.record().main != main, FAILOVER_AFTER + 2 * INTERVAL + 4, "failover")
    took = time.monotonic() - t0
    new = env.record().main
    assert new == sync
    assert env.record().generation >= 2
    assert took <= FAILOVER_AFTER + 2 * INTERVAL + 3.0
    wait_until(lambda: env.labels()[new].get("memgraph-ha.io/role") == "main", 5, "new main labelled")
    assert env.labels()[main].get("memgraph-ha.io/role") != "main"
    # the old MAIN comes back with its role restored: its guard demotes it, the coordinator re-registers it
    env.mg[main].start()
    env.set_ready(main, True)
    wait_until(lambda: healthy(env, new), 20, "old main re-registered as a replica")
    assert env.client(main).role() is Role.REPLICA
    with pytest.raises(neo4j.exceptions.ClientError, match="replica"):
        _write(env, main, 99)
    reasons = [ev.get("reason") for ev in env.events()]
    assert "FailoverStarted" in reasons or "Promoted" in reasons


def test_diverged_instance_is_reported_and_left_alone(env: Env) -> None:
    main = bootstrapped(env)
    victim = next(p for p in env.mg if p not in (main, env.record().sync_replica))
    # give the victim a history of its own while the coordinator is paused and its guard is off:
    # drop it, promote it alone, write, demote it again (what an operator's manual failover leaves behind)
    env.guards_on.clear()
    env.pause(True)
    time.sleep(INTERVAL * 3)
    env.client(main).drop(victim.replace("-", "_"))
    env.client(victim).promote()
    _write(env, victim, 1000)
    _write(env, victim, 1001)
    env.client(victim).demote(env.coord.policy.replication_port)
    env.guards_on.set()
    env.pause(False)
    wait_until(lambda: victim in env.record().diverged, 10, "victim marked diverged")
    time.sleep(INTERVAL * 5)
    warnings = [ev for ev in env.events() if ev.get("reason") == "ReplicaDiverged"]
    assert len(warnings) == 1, "one Warning Event, not one per cycle"
    assert warnings[0].get("type") == "Warning"
    names = {r.name for r in env.client(main).replicas() if r.status is not ReplicaStatus.DIVERGED}
    assert victim.replace("-", "_") not in names
    # its data is quarantined, not deleted
    import neo4j

    with neo4j.GraphDatabase.driver(f"bolt://{env.ips[victim]}:{env.bolt}", auth=("", "")) as d:
        ids = {r["n.i"] for r in d.execute_query("MATCH (n:Seed) RETURN n.i").records}
    assert {1000, 1001} <= ids
    status = env.coord.status()
    pods = {p["name"]: p for p in status["pods"]}
    assert pods[victim]["diverged"] is True


def test_labels_are_level_triggered(env: Env) -> None:
    main = bootstrapped(env)
    # someone removes the main label by hand: the next cycle puts it back
    env.kube.patch("Pod", NS, main, {"metadata": {"labels": {"memgraph-ha.io/role": None}}})
    wait_until(lambda: env.labels()[main].get("memgraph-ha.io/role") == "main", 5, "label restored")


def test_history_keeps_each_switchover_and_failover_with_its_write_pause(env: Env) -> None:
    main = bootstrapped(env)
    result = env.coord.switchover(None, None, 10.0)
    assert result.ok, result
    first = result.new_main
    assert first is not None and first != main
    wait_until(lambda: healthy(env, first) and env.record().sync_confirmed, 20, "healthy after switchover")
    sync = env.record().sync_replica
    env.mg[first].kill()
    env.set_ready(first, False)
    wait_until(lambda: env.record().main == sync, FAILOVER_AFTER + 2 * INTERVAL + 4, "failover")
    wait_until(lambda: history.parse(env.record().history)[0][-1].write_pause_s is not None, 10,
               "the failover's write pause, once the new MAIN is labelled")
    items, problem = history.parse(env.record().history)  # read from the API server: any leader sees it
    assert problem == ""
    assert [(t.kind, t.from_pod, t.to_pod, t.outcome) for t in items] == [
        (TransitionKind.SWITCHOVER, main, first, "done"), (TransitionKind.FAILOVER, first, sync, "done")]
    switch, fail = items
    assert switch.write_pause_s is not None and 0 < switch.write_pause_s <= switch.duration_s
    assert switch.generation + 1 == fail.generation == env.record().generation
    assert fail.duration_s >= FAILOVER_AFTER
    assert fail.write_pause_s is not None and fail.write_pause_s >= fail.duration_s
    assert abs(fail.at - time.time()) < 60 and switch.at <= fail.at  # wall clock, for people
    print(f"\nswitchover write pause {switch.write_pause_s:.3f}s of {switch.duration_s:.3f}s; "
          f"failover after {fail.duration_s:.2f}s, write pause {fail.write_pause_s:.2f}s")
