"""`python -m ctl.standalone` (memgraph-ha-coordinator) on the emulated cluster: it bootstraps a cluster whose
pods have no agent, releases the Lease on SIGTERM, never takes the Lease from a leading agent, and
refuses a bad configuration with exit code 2.

Real pieces: the standalone coordinator as a subprocess with the sim's kubeconfig (kubernetes client,
the Lease elector, the reconcile loop, the neo4j driver to the pod IPs), Memgraph emulators, and for the
second test the real agents.

Must never: leave a process behind (subprocesses are killed in a `finally`, clusters stopped), or assert
a speed.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

import pytest
from kubernetes import client, config

from ctl.rollout import Rollout, RolloutOptions
from ctl.standalone import main as coordinator_main
from sim.cluster import ClusterConfig, SimCluster
from sim.kubelet import PodTemplate

REPO = Path(__file__).resolve().parents[2]
IDENTITY = "standalone-test"
pytestmark = pytest.mark.timeout(300)


@contextmanager
def cluster_of(tmp_path: Path, with_agent: bool = True, with_hook: bool = True) -> Iterator[SimCluster]:
    tmpl = PodTemplate(with_agent=with_agent, with_hook=with_hook)
    cfg = ClusterConfig(replicas=3, seed=3, template=tmpl)
    c = SimCluster(tmp_path / "cluster", cfg)
    try:
        c.start(wait_ready_s=90)
        yield c
    finally:
        c.stop()


@contextmanager
def standalone(c: SimCluster, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "HA_LEASE_DURATION_SECONDS": "4", "HA_RENEW_DEADLINE_SECONDS": "3",
           "HA_RETRY_PERIOD_SECONDS": "0.5", "HA_RECONCILE_INTERVAL_SECONDS": "0.5",
           "HA_POD_SELECTOR": "app.kubernetes.io/name=memgraph,app.kubernetes.io/instance=memgraph"}
    cmd = [sys.executable, "-m", "ctl.standalone", "--kubeconfig", str(c.kubeconfig), "-n", "default",
           "--statefulset", "memgraph", "--headless-service", "memgraph-headless",
           "--bolt-port", str(c.ports["bolt"]), "--replication-port", str(c.ports["replication"]),
           "--identity", IDENTITY]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def lease(c: SimCluster) -> client.V1Lease:
    api = config.new_client_from_config(config_file=str(c.kubeconfig))
    try:
        return client.CoordinationV1Api(api).read_namespaced_lease(
            "memgraph-ha", "default", _request_timeout=5
        )
    finally:
        api.close()


def holder(c: SimCluster) -> str:
    try:
        spec = lease(c).spec
        return (spec.holder_identity if spec is not None else "") or ""
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return ""
        raise


def mains(c: SimCluster) -> list[str]:
    return [p for p, r in c.roles().items() if r.role == "main"]


def test_bootstraps_a_cluster_without_agents_and_releases_the_lease_on_sigterm(tmp_path: Path) -> None:
    with cluster_of(tmp_path, with_agent=False, with_hook=False) as c:
        # without agents every Memgraph starts as MAIN (waited for, bounded: the pods just started)
        c.wait_for(lambda: len(mains(c)) == 3, 15, "every Memgraph reports MAIN before any coordinator runs")
        log = tmp_path / "standalone.log"
        with standalone(c, log) as proc:
            c.wait_for(lambda: holder(c) == IDENTITY, 30, "the standalone coordinator leads")
            c.wait_for(lambda: len(mains(c)) == 1, 60, "one MAIN left")
            check = Rollout(RolloutOptions(kubeconfig=str(c.kubeconfig)), lambda _: None)
            try:
                check.load()
                c.wait_for(lambda: check.observe()[0].healthy, 60, "cluster healthy (shared check)")
                record = check.record()
            finally:
                check.close()
            (main_pod,) = mains(c)
            assert record.main == main_pod and record.sync_replica and record.generation >= 1
            c.wait_for(lambda: c.labels()[main_pod].get("memgraph-ha.io/role") == "main", 20, "MAIN labelled")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        assert holder(c) == "", "SIGTERM released the Lease"
        text = log.read_text()
        assert "leadership acquired: starting the coordinator" in text
        assert f'msg="standalone coordinator stopped" identity={IDENTITY} lease=released' in text
        assert "level=info" in text  # logfmt, as the agent logs


def test_never_takes_the_lease_from_a_leading_agent(tmp_path: Path) -> None:
    with cluster_of(tmp_path) as c:
        c.wait_for(c.healthy, 60, "healthy")
        agent_leader = holder(c)
        generation = c.status()["cluster"]["generation"]
        assert agent_leader.startswith("memgraph-")
        log = tmp_path / "standalone.log"
        with standalone(c, log) as proc:
            seen: set[str] = set()
            deadline = time.monotonic() + 10.0  # 2.5 lease durations
            while time.monotonic() < deadline:
                seen.add(holder(c))
                assert proc.poll() is None
                time.sleep(0.2)
            assert seen == {agent_leader}
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        assert holder(c) == agent_leader and c.status()["cluster"]["generation"] == generation
        text = log.read_text()
        assert f'msg="lease holder changed" elector={IDENTITY} holder={agent_leader}' in text
        assert "leadership acquired" not in text


def test_bad_configuration_exits_2() -> None:
    err = io.StringIO()
    with redirect_stderr(err):
        code = coordinator_main(["--statefulset", "memgraph", "--bolt-port", "0"], env={})
    assert code == 2
    text = err.getvalue()
    assert text.startswith("config error: ")
    assert "HA_POD_SELECTOR: required, not set" in text
    assert "HA_HEADLESS_SERVICE" not in text  # optional: without it replicas are addressed by pod IP
    assert "MEMGRAPH_BOLT_PORT: expected a port number 1-65535, got '0'" in text
