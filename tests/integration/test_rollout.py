"""`memgraph-ha rollout restart` on the emulated cluster: both strategies, the MAIN last, no acknowledged
write lost with a writer running, stop at the first failure, refuse an unhealthy cluster, dry run.

Real pieces: the kubernetes client (the CLI, in process via `main(argv)` and once as a subprocess, with
the sim's kubeconfig), the real agents and preStop hook (agent-managed), the agent API (manual with
agents), the switchover procedure run by the command under the Lease (manual without agents: the cluster
is first bootstrapped by the standalone coordinator, which is then stopped), the neo4j driver (writer).

Must never: leave a process behind (every cluster and subprocess is stopped in a `finally`), assert a
speed (durations are printed for the report), or wait without a bound.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ctl.cli import main
from sim.cluster import ClusterConfig, SimCluster
from sim.kubelet import PodTemplate
from sim.workload import Writer, collect_final_ids

TOKEN = "tok-rollout-3b1f"
HEALTHY_S = 60.0
PER_POD_TIMEOUT = "90"
REPO = Path(__file__).resolve().parents[2]
# a 3-pod roll with its cluster start takes ~30-60 s on 2 idle cores; the default 120 s is too tight
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., SimCluster]]:
    started: list[SimCluster] = []

    def make(**template: Any) -> SimCluster:
        cfg = ClusterConfig(replicas=3, seed=11, template=PodTemplate(**template),
                            extra_agent_env={"HA_API_TOKEN": TOKEN})
        c = SimCluster(tmp_path / f"c{len(started)}", cfg)
        started.append(c)
        c.start(wait_ready_s=90)
        return c

    try:
        yield make
    finally:
        for c in started:
            c.stop()


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def uids(c: SimCluster) -> dict[str, str | None]:
    return {p: c.pod_uid(p) for p in c.pod_names()}


def mains(c: SimCluster) -> list[str]:
    return [p for p, r in c.roles().items() if r.role == "main"]


def assert_no_acked_write_lost(c: SimCluster, writer: Writer) -> int:
    writer.stop()
    acked = writer.acked_ids()
    assert len(acked) > 20, "the writer made progress"
    (main_pod,) = mains(c)
    rt = c.runtime(main_pod)
    held = collect_final_ids({main_pod: (rt.ip, c.ports["bolt"])}, acked, catch_up_s=10)[main_pod]
    lost = acked - held
    assert not lost, f"{len(lost)} acknowledged writes missing on the MAIN {main_pod}: {sorted(lost)[:5]}"
    return len(acked)


def check_roll(doc: dict[str, Any], old_main: str, before: dict[str, str | None], c: SimCluster) -> None:
    results = doc["results"]
    assert [r["pod"] for r in results] == doc["order"]
    assert len(results) == 3 and all(r["success"] for r in results), results
    assert results[-1]["pod"] == old_main and results[-1]["was_main"], "the MAIN is restarted last"
    assert results[-1]["new_main"] not in (None, old_main)
    assert all(not r["was_main"] and r["new_main"] is None for r in results[:-1])
    after = uids(c)
    assert all(after[p] not in (None, before[p]) for p in before), "every pod was replaced"
    assert doc["ok"] and doc["cluster"]["healthy"]


def test_agent_managed_rollout_dry_run_then_roll_under_writes(
    make_cluster: Callable[..., SimCluster],
) -> None:
    c = make_cluster()
    c.wait_for(c.healthy, HEALTHY_S, "healthy")
    kc = str(c.kubeconfig)
    old_main = c.main()
    assert old_main
    before = uids(c)

    code, out, err = run_cli("rollout", "restart", "--all", "--kubeconfig", kc, "--dry-run", "-o", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["dry_run"] and plan["strategy"]["name"] == "agent-managed"
    budget = c.timings.prestop_budget_s  # the chart's, on the suite's time scale
    assert plan["strategy"]["delete_grace_s"] == budget + 60 and plan["strategy"]["hook_budget_s"] == budget
    assert plan["order"][-1] == old_main and plan["results"] == []
    assert "preStop hook hands over" in plan["plan"][-1]["action"]
    assert "dry run: nothing changed" in err
    time.sleep(1.0)
    assert uids(c) == before, "a dry run changes nothing"

    with Writer(c.resolve_main, rate_hz=40) as writer:
        assert writer.wait_acks(20, 20)
        t = time.monotonic()
        code, out, err = run_cli(
            "rollout", "restart", "--all", "--kubeconfig", kc, "--timeout", PER_POD_TIMEOUT, "-o", "json"
        )
        took = time.monotonic() - t
        assert code == 0, err
        doc = json.loads(out)
        check_roll(doc, old_main, before, c)
        n = assert_no_acked_write_lost(c, writer)
    assert "strategy agent-managed" in err and "MAIN moved" not in err  # the hook moved it, not us
    print(f"\nagent-managed 3-pod rollout: {took:.1f}s, per pod "
          f"{[round(r['duration_s'], 1) for r in doc['results']]}, {n} acknowledged writes, none lost")


def test_manual_rollout_with_agents_as_a_subprocess(make_cluster: Callable[..., SimCluster]) -> None:
    c = make_cluster(with_hook=False)
    c.wait_for(c.healthy, HEALTHY_S, "healthy")
    old_main = c.main()
    assert old_main
    before = uids(c)
    env = {**os.environ, "MEMGRAPH_HA_TOKEN": TOKEN, "KUBECONFIG": str(c.kubeconfig)}
    with Writer(c.resolve_main, rate_hz=40) as writer:
        assert writer.wait_acks(20, 20)
        t = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "ctl.cli", "rollout", "restart", "--all", "--timeout",
             PER_POD_TIMEOUT, "-o", "json"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
        )
        took = time.monotonic() - t
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["strategy"]["name"] == "manual" and "has no preStop hook" in doc["strategy"]["reason"]
        check_roll(doc, old_main, before, c)
        n = assert_no_acked_write_lost(c, writer)
    assert "asking the agents' coordinator for a switchover" in proc.stderr
    assert f"{old_main}: MAIN moved to" in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout
    print(f"\nmanual (agents) 3-pod rollout: {took:.1f}s, per pod "
          f"{[round(r['duration_s'], 1) for r in doc['results']]}, {n} acknowledged writes, none lost")


def _standalone(c: SimCluster, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HA_LEASE_DURATION_SECONDS": "4", "HA_RENEW_DEADLINE_SECONDS": "3",
           "HA_RETRY_PERIOD_SECONDS": "0.5", "HA_RECONCILE_INTERVAL_SECONDS": "0.5"}
    cmd = [sys.executable, "-m", "ctl.standalone", "--kubeconfig", str(c.kubeconfig),
           "--namespace", "default",
           "--statefulset", "memgraph", "--selector", "app.kubernetes.io/instance=memgraph",
           "--headless-service", "memgraph-headless", "--bolt-port", str(c.ports["bolt"]),
           "--replication-port", str(c.ports["replication"]), "--identity", "standalone-test"]
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def test_manual_rollout_without_agents_runs_the_switchover_under_the_lease(
    make_cluster: Callable[..., SimCluster], tmp_path: Path
) -> None:
    c = make_cluster(with_agent=False, with_hook=False)
    kc, repl = str(c.kubeconfig), str(c.ports["replication"])
    proc = _standalone(c, tmp_path / "standalone.log")
    try:
        c.wait_for(lambda: len(mains(c)) == 1, HEALTHY_S, "the standalone coordinator bootstraps 1 MAIN")
        c.wait_for(lambda: run_cli("rollout", "restart", "--all", "--kubeconfig", kc, "--dry-run")[0] == 0,
                   HEALTHY_S, "cluster healthy (dry run accepted)")
    finally:
        proc.send_signal(signal.SIGTERM)  # releases the Lease: the command may lead it now
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    (old_main,) = mains(c)
    before = uids(c)
    with Writer(_main_resolver(c), rate_hz=40) as w:
        assert w.wait_acks(20, 20)
        t = time.monotonic()
        code, out, err = run_cli(
            "rollout", "restart", "--all", "--kubeconfig", kc, "--timeout", PER_POD_TIMEOUT,
            "--replication-port", repl, "-o", "json",
        )
        took = time.monotonic() - t
        assert code == 0, err
        doc = json.loads(out)
        assert doc["strategy"]["reason"] == "no agent and no preStop hook in the pod template"
        check_roll(doc, old_main, before, c)
        n = assert_no_acked_write_lost(c, w)
    assert "running the switchover under the Lease" in err and "leading the Lease as memgraph-ha-cli-" in err
    assert "Lease released by memgraph-ha-cli-" in err
    print(f"\nmanual (no agents) 3-pod rollout: {took:.1f}s, per pod "
          f"{[round(r['duration_s'], 1) for r in doc['results']]}, {n} acknowledged writes, none lost")


def _main_resolver(c: SimCluster) -> Callable[[], tuple[str, int] | None]:
    """Without agents nobody labels pods: route to the instance that reports MAIN (a Service would need
    the label; the writer only needs to reach the MAIN)."""

    def resolve() -> tuple[str, int] | None:
        found = mains(c)
        if len(found) != 1 or not c.pod_ready(found[0]):
            return None
        return c.runtime(found[0]).ip, c.ports["bolt"]

    return resolve


def test_rollout_stops_at_the_first_failure_and_then_refuses(make_cluster: Callable[..., SimCluster]) -> None:
    c = make_cluster()
    c.wait_for(c.healthy, HEALTHY_S, "healthy")
    kc = str(c.kubeconfig)
    before = uids(c)
    c.cfg.template.agent_env["HA_SYNC_MODE"] = "BOGUS"  # every new pod's agent exits 2: never Ready
    code, out, err = run_cli(
        "rollout", "restart", "--all", "--kubeconfig", kc, "--timeout", "15", "-o", "json"
    )
    assert code == 1
    doc = json.loads(out)
    assert not doc["ok"] and len(doc["results"]) == 1
    (first,) = doc["results"]
    assert first["pod"] == "memgraph-2" and not first["success"]
    assert "timed out waiting for memgraph-2 recreated and Ready" in first["error"]
    assert not doc["cluster"]["healthy"]
    assert any("memgraph-2" in p for p in doc["cluster"]["problems"]), doc["cluster"]
    assert "stopped after memgraph-2" in err and "cluster now: MAIN" in err
    now = uids(c)
    untouched = ("memgraph-0", "memgraph-1")
    assert {p: now[p] for p in untouched} == {p: before[p] for p in untouched}

    code, out, err = run_cli("rollout", "restart", "--pod", "memgraph-1", "--kubeconfig", kc)
    assert code == 1
    assert "refusing to start: the cluster is not healthy" in out and "--force" in out
    assert err.startswith("memgraph-ha: refused: the cluster is not healthy")
    assert uids(c)["memgraph-1"] == before["memgraph-1"]
