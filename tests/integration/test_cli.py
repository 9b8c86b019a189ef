"""`memgraph-ha status|switchover|pause|resume` against the real agents of a running emulated cluster, and
the command line's argument errors (exit 2, a message saying which argument), in process and as a
subprocess (the installed console script).

One cluster serves the module (token configured through ClusterConfig.extra_agent_env HA_API_TOKEN);
tests that move the MAIN wait until the cluster is healthy again.

Must never: leave a process behind (the fixture stops the cluster in a `finally`), or print the token.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.cli import main, status_text
from sim.cluster import ClusterConfig, SimCluster
from tests.support.cluster import healthy_cluster

TOKEN = "tok-cli-5d2e-distinctive"
HEALTHY_S = 60.0
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    cfg = ClusterConfig(
        replicas=3, seed=5, extra_agent_env={"HA_API_TOKEN": TOKEN},
    )
    with healthy_cluster(tmp_path_factory.mktemp("cli-cluster"), cfg, HEALTHY_S) as c:
        yield c


@pytest.fixture
def healthy(cluster: SimCluster) -> SimCluster:
    cluster.wait_for(cluster.healthy, HEALTHY_S, "cluster healthy")
    return cluster


def url_of(c: SimCluster, pod: str) -> str:
    return c.runtime(pod).agent_url


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- status -------------------------------------------------------------------------------------------


def test_status_text_table(healthy: SimCluster, capsys: pytest.CaptureFixture[str]) -> None:
    c = healthy
    main_pod = c.main()
    assert main_pod
    replica = next(p for p in c.pod_names() if p != main_pod)
    code, out, err = cli(capsys, "status", "--url", url_of(c, replica))  # a non-leader forwards
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"MAIN {main_pod}  sync replica memgraph-")
    assert lines[1].split() == ["POD", "ROLE", "LABEL", "READY", "REPLICA", "BEHIND", "SYNC"]
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert set(rows) == set(c.pod_names())
    assert rows[main_pod][1:3] == ["main", "main"]
    assert lines[5].startswith("verdict: ")
    assert lines[6] == "healthy" or lines[6].startswith("NOT healthy: ")
    # the same document as JSON, rendered: every column matches its field exactly
    code, out, err = cli(capsys, "status", "--url", url_of(c, replica), "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    table = {line.split()[0]: line.split() for line in status_text(doc)[2:5]}
    for pod in doc["pods"]:
        row, rep = table[pod["name"]], pod["replica"]
        assert row[1:4] == [pod["role"], pod["role_label"], "yes" if pod["ready"] else "no"]
        if rep:
            assert row[4:7] == [rep["mode"], rep["status"], str(rep["behind"])]
        assert (row[-1] == "*") == pod["is_sync_replica"]
    assert sum(p["is_sync_replica"] for p in doc["pods"]) == 1, "one sync replica"


def test_status_json_through_the_environment(
    healthy: SimCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMGRAPH_HA_URL", url_of(healthy, "memgraph-0"))
    code, out, _ = cli(capsys, "status", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["cluster"]["main"] == healthy.main() and doc["cluster"]["healthy"]
    assert {p["name"] for p in doc["pods"]} == set(healthy.pod_names())


def test_unreachable_agent_is_a_clear_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "status", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and out == ""
    assert "cannot reach the agent at http://127.0.0.1:" in err and "kubectl port-forward" in err


# ---- switchover, pause, resume ---------------------------------------------------------------------------


def test_switchover_to_a_named_replica(healthy: SimCluster, capsys: pytest.CaptureFixture[str]) -> None:
    c = healthy
    old = c.main()
    assert old
    target = next(p for p in reversed(c.pod_names()) if p != old)
    code, out, err = cli(capsys, "switchover", "--to", target, "--url", url_of(c, target), "--token", TOKEN,
                         "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["outcome"], doc["old_main"], doc["new_main"]) == ("switchover-done", old, target)
    c.wait_for(lambda: c.main() == target and c.healthy(), HEALTHY_S, f"{target} MAIN and healthy")
    code, out, err = cli(capsys, "switchover", "--url", url_of(c, old), "--token", TOKEN)
    assert code == 0, err
    assert out.startswith(f"switchover switchover-done: {target} -> ")
    assert TOKEN not in out + err


def test_switchover_errors(healthy: SimCluster, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    url = url_of(healthy, "memgraph-0")
    before = healthy.status()["cluster"]
    monkeypatch.delenv("MEMGRAPH_HA_TOKEN", raising=False)
    code, _, err = cli(capsys, "switchover", "--url", url)
    assert code == 2 and "switchover needs the API token: --token or MEMGRAPH_HA_TOKEN" in err
    code, _, err = cli(capsys, "switchover", "--url", url, "--token", "wrong")
    assert code == 1 and "401 unauthorized" in err and "check --token" in err
    code, _, err = cli(capsys, "switchover", "--url", url, "--token", TOKEN, "--to", "memgraph-9")
    assert code == 1 and "404 unknown-pod: memgraph-9 is not a pod of this cluster" in err
    # the refused calls changed nothing (a probe timing out on a loaded machine may make one status
    # document unhealthy for a cycle: wait, bounded, rather than sample once)
    healthy.wait_for(healthy.healthy, HEALTHY_S, "cluster healthy after the refused calls")
    after = healthy.status()["cluster"]
    assert (after["main"], after["generation"]) == (before["main"], before["generation"])


def test_pause_and_resume(healthy: SimCluster, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMGRAPH_HA_TOKEN", TOKEN)
    url = url_of(healthy, "memgraph-1")
    try:
        code, out, err = cli(capsys, "pause", "--url", url)
        assert code == 0 and out.startswith("coordinator paused"), err
        healthy.wait_for(lambda: healthy.status()["cluster"]["paused"] is True, 10, "paused in status")
        code, out, _ = cli(capsys, "status", "--url", url)
        assert "paused yes" in out.splitlines()[0]
    finally:
        code, out, err = cli(capsys, "resume", "--url", url, "-o", "json")
    assert code == 0 and json.loads(out)["paused"] is False, err
    healthy.wait_for(lambda: healthy.status()["cluster"]["paused"] is False, 10, "resumed in status")


# ---- bad arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["status", "--output", "yaml"], "argument --output/-o: invalid choice: 'yaml'"),
        (["status", "--url", "ftp://x"], "expected an http:// or https:// URL"),
        (["rollout"], "the following arguments are required: ACTION"),
        (["rollout", "restart"], "one of the arguments --pod --all is required"),
        (["rollout", "restart", "--pod", "memgraph-0", "--all"], "not allowed with argument"),
        (["rollout", "restart", "--all", "--timeout", "-5"], "expected a positive number of seconds"),
        (["rollout", "restart", "--all", "--bolt-port", "99999"], "expected a port number 1-65535"),
        (["rollout", "restart", "--all", "--kubeconfig", "/nonexistent/kubeconfig"], "no such file"),
    ],
)
def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = cli(capsys, *argv)
    assert code == 2
    assert message in err and "usage: memgraph-ha" in err


def test_unknown_pod_or_statefulset_exit_2(cluster: SimCluster, capsys: pytest.CaptureFixture[str]) -> None:
    kc = str(cluster.kubeconfig)
    code, _, err = cli(capsys, "rollout", "restart", "--pod", "memgraph-7", "--kubeconfig", kc)
    assert code == 2
    assert "error: not a pod of statefulset memgraph: memgraph-7" in err
    assert "(pods: memgraph-0, memgraph-1, memgraph-2)" in err
    code, _, err = cli(capsys, "rollout", "restart", "--all", "--statefulset", "nope", "--kubeconfig", kc)
    assert code == 2 and "error: statefulset default/nope not found" in err


# ---- the console script ----------------------------------------------------------------------------------


def test_console_script(healthy: SimCluster) -> None:
    exe = shutil.which("memgraph-ha", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "ctl.cli"]
    proc = subprocess.run([*cmd, "status", "--url", url_of(healthy, "memgraph-2")],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].startswith("POD")
    proc = subprocess.run([*cmd, "rollout", "restart", "--all", "--timeout", "0"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and "argument --timeout: expected a positive number of seconds" in proc.stderr
