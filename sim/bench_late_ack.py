"""Bench phase `late_ack`: the residual risk of issue 16 item 5, acknowledged writes the new MAIN lacks.

Role: on a fresh 3-pod emulated cluster (sim timings, STRICT_SYNC, the agents holding the generated fence
token, as the chart's defaults give them), N times: freeze the MAIN at the worst moment of a client's
write -- between the STRICT_SYNC votes and its local commit (`sim.faults.commit_fault(..., "votes_in",
"stop")`, reference memgraph-replication.md 7.2) -- wait for the failover, resume the old MAIN right
after it, and count the writes that were acknowledged to the client but are not on the new MAIN. Two flavours:
- `unfenced`: the old MAIN's whole pod is frozen (a lost node that comes back: NotReady after the node
  grace, nothing of it answers), so the leader fails over with `fence: unconfirmed`:
  `late_ack_lost_writes`, the residual risk;
- `fenced`: the agent answers, the leader fences before promoting: `late_ack_lost_writes_fenced` (0 is
  the fix working).
After each pause the cluster is settled (`sim.bench_recovery.settle`: a diverged old MAIN is re-seeded by
the product; repaired by hand only as settle's last resort, and then counted in `late_ack_repaired_by_hand`).

Usage: python -m sim.bench_late_ack [--pauses 5] [--seed 7]; the last stdout line is JSON.

Must never: wait without a bound, leave a process stopped or running after `run` returns, or count a
write whose outcome it did not see.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neo4j import GraphDatabase

from sim import faults
from sim.bench_recovery import settle
from sim.cluster import ClusterConfig, SimCluster
from sim.timescale import TimeScale

# A frozen Memgraph and agent on a node that still runs its kubelet would keep the pod Ready (its TCP port
# accepts) and, with nothing of the pod answering, no failover is due; a lost node is what turns it
# NotReady (`sim.faults.node_loss`: the node controller's grace, on the cluster's time scale).
WAIT_S = 90.0
# `make bench` runs this phase on its own cluster at this scale (the chart's timings x 0.25: node grace
# 10 s, lease 3.75 s, failoverAfter 1.25 s), as it ran at the sim's short timings before issue 14: what it
# counts depends on the fence, not on the timings, and at 1.0 each unfenced pause waits for the 40 s grace
SCALE = 0.25
Say = Callable[[str], None]


def _write(uri: str, ident: str, outcome: dict[str, Any]) -> None:
    with GraphDatabase.driver(uri, auth=None, connection_timeout=3.0, max_transaction_retry_time=0.0) as d:
        try:
            with d.session() as s:
                s.run("CREATE (:Late {id: $id})", id=ident).consume()
            outcome["acked"] = True
        except Exception as exc:  # the outcome is the measurement
            outcome["error"] = type(exc).__name__


def _on(cluster: SimCluster, pod: str, ident: str) -> bool:
    uri = f"bolt://{cluster.runtime(pod).ip}:{cluster.ports['bolt']}"
    with GraphDatabase.driver(uri, auth=None, connection_timeout=3.0) as d, d.session() as s:
        return ident in {r["id"] for r in s.run("MATCH (n:Late) RETURN n.id AS id")}


def _seed(cluster: SimCluster) -> None:
    """One acknowledged write on every pod first. Without it the only data ever written is the late
    writes themselves (the fenced ones are never committed), so a new MAIN is empty while the thawed old
    MAIN holds its late write, and the coordinator's empty-MAIN guard rightly refuses to route or register
    there: a state no cluster with data reaches, which stopped an earlier run of this bench."""
    main = cluster.main()
    if main is None:
        raise TimeoutError("no MAIN to seed")
    outcome: dict[str, Any] = {}
    _write(f"bolt://{cluster.runtime(main).ip}:{cluster.ports['bolt']}", "seed", outcome)
    if not outcome.get("acked"):
        raise RuntimeError(f"the seed write was not acknowledged: {outcome}")
    cluster.wait_for(lambda: all(_on(cluster, p, "seed") for p in cluster.pod_names()), 30, "seed everywhere")


def one_pause(cluster: SimCluster, ident: str, unfenced: bool) -> dict[str, Any]:
    """One frozen commit and failover; what the client was told and whether the new MAIN has the write."""
    old = cluster.main()
    if old is None:
        raise TimeoutError("no MAIN before the pause")
    faults.commit_fault(cluster, old, "votes_in", "stop")
    outcome: dict[str, Any] = {}
    uri = f"bolt://{cluster.runtime(old).ip}:{cluster.ports['bolt']}"
    client = threading.Thread(target=_write, args=(uri, ident, outcome), daemon=True)
    client.start()
    t0 = time.monotonic()
    with contextlib.ExitStack() as undo:  # the worst moment: the old MAIN resumes right after the promotion
        undo.callback(faults.resume_memgraph, cluster, old)
        cluster.runtime(old).memgraph.wait_stopped(10.0)
        if unfenced:  # the node is lost: agent and kubelet frozen too, the pod NotReady after the node grace
            undo.enter_context(faults.node_loss(cluster, old, "freeze"))
        cluster.wait_for(lambda: cluster.main() not in (None, old), WAIT_S, f"failover from {old}")
        new = cluster.main()
        assert new is not None
        failover_s = time.monotonic() - t0
    client.join(30.0)
    if client.is_alive():
        raise TimeoutError(f"the paused write {ident} got no answer")
    text = ((cluster.status().get("cluster") or {}).get("last_failover") or {}).get("text", "")
    acked = bool(outcome.get("acked"))
    return {"old": old, "new": new, "acked": acked, "on_new_main": _on(cluster, new, ident),
            "failover_s": round(failover_s, 2), "fence": text.rsplit("fence: ", 1)[-1] if "fence: " in text
            else "", "error": outcome.get("error", "")}


def run(pauses: int, seed: int, workdir: Path, say: Say, scale: TimeScale | None = None) -> dict[str, Any]:
    cfg = ClusterConfig(replicas=3, seed=seed, sync_mode="STRICT_SYNC", pod_management="Parallel",
                        time_scale=scale or TimeScale(SCALE))
    cluster = SimCluster(workdir / "late-ack", cfg)
    out: dict[str, Any] = {"pauses": pauses, "time_scale": cfg.time_scale.factor}
    try:
        cluster.start(wait_ready_s=90)
        cluster.wait_for(cluster.healthy, 60, "cluster healthy")
        _seed(cluster)
        for flavour, unfenced in (("fenced", False), ("unfenced", True)):
            episodes = []
            for i in range(pauses):
                ep = one_pause(cluster, f"{flavour}-{i}", unfenced)
                reseeded, by_hand, _ = settle(cluster, WAIT_S, f"pause {flavour}-{i}")
                ep["reseeded"], ep["repaired_by_hand"] = reseeded, by_hand
                say(f"  late-ack {flavour} {i + 1}/{pauses}: {ep}")
                episodes.append(ep)
            lost = sum(1 for e in episodes if e["acked"] and not e["on_new_main"])
            key = "late_ack_lost_writes" if unfenced else "late_ack_lost_writes_fenced"
            out[key] = lost
            out[f"late_ack_{flavour}_episodes"] = episodes
        out["late_ack_repaired_by_hand"] = sum(len(e["repaired_by_hand"]) for k in ("fenced", "unfenced")
                                               for e in out[f"late_ack_{k}_episodes"])
    finally:
        cluster.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.bench_late_ack", description=__doc__.splitlines()[0])
    ap.add_argument("--pauses", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)
    t0 = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {text}", file=sys.stderr, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="memgraph-ha-late-ack-"))
    try:
        out = run(max(1, args.pauses), args.seed, workdir, say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out["wall_time_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(out, sort_keys=True), flush=True)
    return 0 if out.get("late_ack_lost_writes_fenced") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
