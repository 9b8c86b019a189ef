"""`make bench` code paths in one tiny run (`--quick`: one sample of each phase, a short steady window) at
the suite's time scale; the last stdout line must be JSON with every figure measured (a number), the bed
described and the raw samples in `details`.

No speed assertions: the figures are judged in docs/benchmarks.md, not here. The bench stops its clusters
in `finally`; the test checks afterwards that none of its processes is left.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from sim import bench, bench_plan, netns
from sim.timescale import TimeScale

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _bench_processes() -> set[str]:
    """Processes whose command line names a bench run directory (its Memgraph emulators)."""
    out = subprocess.run(["pgrep", "-af", "memgraph-ha-bench-"], capture_output=True, text=True,
                         check=False).stdout
    return {line for line in out.splitlines() if "pgrep" not in line}


def test_tiny_bench_run_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    before = _bench_processes()  # another bench may be running on this machine: only ours count
    # no node loss here: a frozen MAIN thawed after the failover can acknowledge a write the new MAIN
    # lacks (paused between the STRICT_SYNC votes and its local commit, unfenced: issue 16 item 5's
    # residual risk); seen once in four full runs on the namespaced bed (lost_acked_writes 1). The
    # node-loss episodes run in `make bench` and the node-loss scenarios, where such a loss is reported.
    phases = [p.name for p in bench_plan.PHASES if p.quick and not p.name.startswith("failover_node_loss")]
    code = bench.main(["--quick", "--window", "6", "--seed", "3", "--only", ",".join(phases)])
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    missing = [k for k in bench.REQUIRED if not isinstance(result.get(k), int | float)
               or isinstance(result.get(k), bool)]
    # a figure may be unmeasured only when its writes never resumed (a product defect), said in details
    why = result["details"]["unmeasured"]
    left_out = {"failover_node_loss_p99_s"}  # its phases are not run here (above)
    unexplained = [k for k in missing if "no write acknowledged" not in why.get(k, "")
                   and not (k in left_out and why.get(k) == "no sample")]
    assert not unexplained, f"figures not measured: {unexplained}\n{err[-3000:]}"
    network = "netns" if netns.probe() is None else "loopback"  # the bed the cluster's "auto" gets here
    assert result["bed"] == {"network": network, "time_scale": TimeScale.from_env().factor,
                             "timings": "chart-defaults"}
    quick = {p.name: p.quick for p in bench_plan.PHASES if p.name in phases}
    assert {ph: len(s) for ph, s in result["details"]["samples"].items()} == quick, (
        "one sample of every quick phase run, raw in details")
    assert result["lost_acked_writes"] == 0, result
    assert result["agent_memory_mb_max"] > 0 and result["agent_rss_mb_max"] >= result["agent_memory_mb_max"]
    assert result["rolling_restart_ratio"] > 0
    pods = {"memgraph-0", "memgraph-1", "memgraph-2"}
    assert set(result["details"]["api_requests_per_min_by_agent"]) == pods
    assert isinstance(result["targets_missed"], list)
    assert "3 pods with the chart's timings" in err and "without the agents" in err  # progress: stderr
    assert _bench_processes() - before == set()
    # exit code 1 only for an invariant the product breaks today, named in details (every figure is there)
    assert code == 0 or result["details"]["invariant_failures"] or missing, err[-3000:]
