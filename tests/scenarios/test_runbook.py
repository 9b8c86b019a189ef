"""The runbook's manual repair of a diverged pod (docs/operations.md, "A pod is reported diverged", under
`manual`), run command by command on the emulated cluster.

The commands are read from the runbook's bash block and run as written: `kubectl` is the machine's own
kubectl against the Kubernetes API emulator. The one translation: the emulator has no container file
system and no `exec` endpoint, so `kubectl exec $POD -c memgraph -- sh -c '<script>'` runs `<script>`
with `sh` on the host, with the pod's mount point /var/lib/memgraph replaced by its emulated volume.
(That an emptied graph does not clear the mark is pinned in tests/unit/planner/test_reseed.py.)

Must never: loop without a bound, or leave a process behind (the fixture tears the cluster down).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from sim import faults
from tests.scenarios.conftest import MakeScenario
from tests.scenarios.harness import Scenario
from tests.scenarios.test_reseed import REDUNDANCY_S, SLACK_S, full_redundancy

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
MOUNT = "/var/lib/memgraph"


def runbook_commands() -> list[str]:
    text = RUNBOOK.read_text()
    section = text[text.index("**A pod is reported diverged**"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the runbook lost its bash block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def run_as_written(sc: Scenario, line: str, env: dict[str, str]) -> None:
    line = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), m.group(0)), line)
    if re.fullmatch(r"\w+=\S+", line):
        key, value = line.split("=", 1)
        env[key] = value
        return
    argv = shlex.split(line)
    assert argv[0] == "kubectl", line
    kube = {**os.environ, "KUBECONFIG": str(sc.cluster.kubeconfig)}
    if argv[1] == "exec":
        assert argv[-3:-1] == ["sh", "-c"], line
        pod, script = argv[2], argv[-1]
        volume = str(sc.cluster.workdir / "pvc" / pod / "lib")
        done = subprocess.run(["sh", "-c", script.replace(MOUNT, volume)], timeout=30, capture_output=True)
    else:
        done = subprocess.run(argv, env=kube, timeout=60, capture_output=True)
    assert done.returncode == 0, f"{line}: {done.stdout!r} {done.stderr!r}"


def _diverged(sc: Scenario) -> list[str]:
    return list(sc.cluster.status(timeout_s=2.0)["cluster"].get("diverged") or [])


@pytest.mark.long  # minutes: run by `make scenarios`
@pytest.mark.timeout(420)
def test_the_runbook_repairs_a_diverged_pod_by_hand_with_its_data_kept(scenario: MakeScenario) -> None:
    sc = scenario(seed=22, reseed="manual")
    pod = next(p for p in sc.cluster.pod_names() if p != sc.main())
    faults.kill_memgraph(sc.cluster, pod, hold=True, flog=sc.flog)
    held = faults.write_offline(sc.cluster, pod, [f"{pod}-own-{i}" for i in range(3)], flog=sc.flog,
                                    new_epoch=True)
    sc.timeline.injected_divergence.append(pod)
    sc.timeline.diverged_ids_before[pod] = tuple(sorted(held))
    faults.release(sc.cluster, pod, flog=sc.flog)
    sc.cluster.wait_for(lambda: pod in _diverged(sc), SLACK_S, f"{pod} reported diverged")
    time.sleep(3.0)  # several cycles: quarantined, nothing started under `manual`
    assert pod in _diverged(sc) and not sc.cluster.status()["cluster"].get("reseed")
    env = {"POD": pod}
    for line in runbook_commands():
        run_as_written(sc, line.replace("POD=memgraph-2", f"POD={pod}"), env)
    sc.cluster.wait_for(lambda: full_redundancy(sc), REDUNDANCY_S, "full redundancy after the runbook")
    assert pod not in _diverged(sc)
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)  # I4: its own writes are in the moved files
