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
    code = bench.main(["--quick", "--window", "6", "--seed", "3"])
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    missing = [k for k in bench.REQUIRED if not isinstance(result.get(k), int | float)
               or isinstance(result.get(k), bool)]
    assert not missing, f"figures not measured: {missing}\n{err[-3000:]}"
    network = "netns" if netns.probe() is None else "loopback"  # the bed the cluster's "auto" gets here
    assert result["bed"] == {"network": network, "time_scale": TimeScale.from_env().factor,
                             "timings": "chart-defaults"}
    quick = {p.name: p.quick for p in bench_plan.PHASES}
    assert {ph: len(s) for ph, s in result["details"]["samples"].items()} == {
        ph: n for ph, n in quick.items() if n}, "one sample of every quick phase, raw in details"
    assert result["lost_acked_writes"] == 0, result
    assert result["agent_memory_mb_max"] > 0 and result["agent_rss_mb_max"] >= result["agent_memory_mb_max"]
    assert result["rolling_restart_ratio"] > 0
    pods = {"memgraph-0", "memgraph-1", "memgraph-2"}
    assert set(result["details"]["api_requests_per_min_by_agent"]) == pods
    assert isinstance(result["targets_missed"], list)
    assert "3 pods with the chart's timings" in err and "without the agents" in err  # progress: stderr
    assert _bench_processes() - before == set()
    # exit code 1 only for an invariant the product breaks today, named in details (every figure is there)
    assert code == 0 or result["details"]["invariant_failures"], err[-3000:]
