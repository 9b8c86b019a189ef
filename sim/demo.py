"""`make demo`: the real agents on an emulated 3-pod cluster, a writer, a rolling restart, the status.

Role: the first thing a newcomer runs. Starts the emulated cluster (Kubernetes API emulator, three
Memgraph emulator processes, three real agent processes; each pod in its own network namespace when
the machine allows it, on loopback otherwise), says on its first line which network it got
(`network=netns namespaces=3 ...`), waits until the agents have elected a leader and bootstrapped 1
MAIN + 2 replicas, starts pooled writers through the client Service, rolls the StatefulSet (highest
ordinal first; the MAIN's preStop hands the role over), prints the final status and ends with one line
`RESULT {json}`. It prints the status page's address (`GET /` of an agent) once the cluster is healthy;
`--hold S` keeps the cluster up S seconds after the result to look at it. Everything runs under a
temporary directory and is torn down at the end, also on Ctrl-C; the last lines say how many namespaces
the run made and that none is left. With `--keep` the cluster stays up after the result until Ctrl-C,
and the demo prints the `export KUBECONFIG=...` line (the cluster admin's kubeconfig; the API server
listens on the bridge address, reachable from the root namespace) and a kubectl command to look with;
the run directory is kept.

Must never: leave a process behind, or print a figure it did not measure.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from sim import netns, runs
from sim.check import Sampler
from sim.cluster import ClusterConfig, SimCluster
from sim.runs import finish, result_json, rolling_restart
from sim.timeline import Timeline
from sim.workload import Writer


def status_lines(doc: dict[str, Any]) -> list[str]:
    c = doc.get("cluster", {})
    lines = [
        f"  leader={c.get('leader')} main={c.get('main')} sync_replica={c.get('sync_replica')} "
        f"({c.get('sync_mode')}) generation={c.get('generation')} healthy={c.get('healthy')}",
        f"  verdict: {c.get('verdict')}",
    ]
    for p in doc.get("pods", []):
        rep = p.get("replica") or {}
        detail = f"{rep.get('mode')} {rep.get('status')} behind={rep.get('behind')}" if rep else ""
        lines.append(
            f"  {p.get('name'):<12} {p.get('ip'):<15} role={p.get('role')!s:<8} "
            f"label={p.get('role_label')!s:<8} ready={p.get('ready')!s:<5} {detail}"
        )
    return lines


def hold_open(cluster: SimCluster, say: Callable[[str], None]) -> None:
    """Leave the cluster running for kubectl until Ctrl-C or SIGTERM, then return (the caller tears down)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    say("the cluster keeps running for kubectl; Ctrl-C stops it. In another shell:")
    print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
    print("kubectl get pods -L memgraph-ha.io/role", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        say("stopping the cluster")


def page_url(cluster: SimCluster) -> str:
    """The status page on the lowest ordinal's agent (its address changes when the pod is re-created)."""
    return cluster.runtime(cluster.pod_names()[0]).agent_url + "/"


def run(workdir: Path, seed: int, keep: bool, hold_s: float = 0.0) -> int:
    t0 = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {text}", flush=True)

    cfg = ClusterConfig(replicas=3, seed=seed)  # the chart's defaults, on MGHA_TIME_SCALE (default 1.0)
    cluster = SimCluster(workdir, cfg)
    writer: Writer | None = None
    sampler: Sampler | None = None
    run_id, namespaced = "", False
    try:
        cluster.start(wait_ready_s=90)
        assert cluster.net is not None
        bed = cluster.net.bed
        run_id, namespaced = bed.run_id, bed.namespaced
        where = f"API server {bed.api_host}:{cluster.kube.port}, write Service {cluster.resolve_main()}"
        say(f"{bed.summary()}: a 3-pod emulated cluster in {workdir} (Kubernetes API emulator, 3 Memgraph "
            f"emulators, 3 real agents; {where})")
        cluster.wait_for(cluster.healthy, 60, "cluster healthy")
        say("cluster is healthy; status from the leader:")
        print("\n".join(status_lines(cluster.status())), flush=True)
        say(f"status page (any agent serves it, until that pod restarts in the roll): {page_url(cluster)}")
        timeline = Timeline(pods=cluster.pod_names())
        sampler = runs.sampler(cluster, timeline).start()
        writer = runs.writer(cluster, rate_hz=50.0, threads=2, reconnect_on_read_only=True).start()
        writer.wait_acks(50, timeout_s=20)
        say(
            f"2 pooled writers running through the client Service ({len(writer.acked_ids())} writes "
            "acknowledged); rolling restart, highest ordinal first:"
        )
        steps = rolling_restart(cluster, writer, progress=lambda line: print(line, flush=True), t0=t0)
        timeline.fault_stop_t = time.monotonic()  # I5 counts convergence from the end of the roll
        time.sleep(1.0)
        evidence = finish(cluster, writer, sampler, timeline, workdir / "reports", "demo")
        writer = sampler = None
        say("final status:")
        print("\n".join(status_lines(cluster.status())), flush=True)
        for r in evidence.report.results:
            print(f"  {r.name}: {'ok  ' if r.ok else 'FAIL'} {r.summary}", flush=True)
        if keep or hold_s > 0:
            more = "until Ctrl-C" if keep else f"{hold_s:.0f}s more; Ctrl-C ends it"
            say(f"status page: {page_url(cluster)} (the cluster stays up {more})")
        print("RESULT " + result_json(evidence, cluster, steps), flush=True)
        code = 0 if evidence.report.ok and evidence.lost_acked_writes == 0 else 1
        if keep:
            hold_open(cluster, say)
        else:
            time.sleep(max(0.0, hold_s))
        return code
    except KeyboardInterrupt:
        say("interrupted: tearing down")
        return 130
    finally:
        for stoppable in (writer, sampler):
            if stoppable is not None:
                stoppable.stop()
        made = cluster.net.bed.net.made if cluster.net and cluster.net.bed.net else 0
        cluster.stop()
        if namespaced:
            left = netns.objects_of(run_id)
            say(f"network: {made} namespaces made by this run, {len(left['netns'])} left, "
                f"{len(left['links'])} links left, {len(left['etc'])} hosts files left")
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the cluster running after the demo until Ctrl-C (for kubectl) and keep the run directory",
    )
    ap.add_argument("--hold", type=float, default=0.0, metavar="S",
                    help="keep the cluster up S seconds after the result, to look at the status page")
    args = ap.parse_args(argv)
    # SIGTERM (and SIGINT, also when started in the background) tear the cluster down like Ctrl-C
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="memgraph-ha-demo-"))
    code = run(workdir, args.seed, args.keep, args.hold)
    if args.keep:
        print(f"run directory kept: {workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
