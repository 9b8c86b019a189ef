"""Scenario of issue 16 item 8: a preStop with no possible target ends early.

Both replicas are down (held, as in CrashLoopBackOff) when the MAIN's pod is deleted: no pod can become
MAIN. The hook used to hold the pod for its whole budget (600 s by default) with the pod already out of
the Service -- a write outage of the whole budget, after which the MAIN was stopped anyway. Now the agent
answers the terminal outcome `no-handover` once no hand-over has been possible for
PRESTOP_NO_TARGET_S (20 s), the hook writes END, and the pod restarts with its MAIN.
"""

from __future__ import annotations

import time

import pytest

from sim import faults
from sim.runs import max_pause_between
from tests.scenarios.conftest import MakeScenario

SLACK_S = 20.0  # generous: 2 shared cores, other suites running
PRESTOP_NO_TARGET_S = 20.0  # the product's bound (coordinator/core/defaults.py); a copy, so the scenario
# also runs on a tree without the fix (where it fails: the hook holds the pod for the whole budget)


@pytest.mark.long
def test_main_pod_deleted_with_both_replicas_down_restarts_within_the_no_target_bound(
    scenario: MakeScenario,
) -> None:
    sc = scenario(seed=18)
    budget_s = sc.cluster.timings.prestop_budget_s  # the chart's, on the time scale
    assert budget_s > PRESTOP_NO_TARGET_S + SLACK_S, "the budget must tell the two outcomes apart"
    main = sc.main()
    for pod in sc.replicas():
        faults.kill_memgraph(sc.cluster, pod, hold=True, flog=sc.flog)
    for pod in sc.replicas():
        sc.cluster.wait_for(lambda p=pod: not sc.cluster.pod_ready(p), SLACK_S, f"{pod} NotReady")
    sc.wait_acks_after(time.monotonic(), 10, SLACK_S)  # the MAIN commits alone (degraded), as it should
    uid = sc.cluster.pod_uid(main)
    deleted_at = time.monotonic()
    faults.delete_pod(sc.cluster, main, flog=sc.flog)
    sc.cluster.wait_for(lambda: sc.cluster.pod_uid(main) not in (None, uid) and sc.cluster.pod_ready(main),
                        budget_s + SLACK_S + 30.0, f"{main} re-created and Ready")
    sc.wait_main(lambda m: m == main, SLACK_S, f"{main} MAIN and labelled again")
    back_at = sc.wait_acks_after(deleted_at, 1, SLACK_S) + deleted_at
    term = next(r for r in sc.cluster.terminations if r.pod == main)
    sc.flog.add(f"hook {term.hook_s:.1f}s exit={term.hook_exit}; writes back {back_at - deleted_at:.1f}s "
                "after the delete")
    for pod in sc.replicas():
        faults.release(sc.cluster, pod, flog=sc.flog)
    sc.converge()
    pause = max_pause_between(sc.writer, deleted_at, back_at)
    ev = sc.finish(extra={"hook_s": round(term.hook_s, 3), "write_pause_s": round(pause, 3),
                          "write_back_after_delete_s": round(back_at - deleted_at, 3)})
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert term.hook_exit not in (0, None), "no hand-over happened: the hook says NOT safe"
    assert term.hook_s <= PRESTOP_NO_TARGET_S + SLACK_S < budget_s, (
        f"the hook held the pod {term.hook_s:.1f}s: not ended early for lack of a target")
    hooks = [r for r in ev.timeline.prestops if r.pod == main]
    assert hooks and hooks[0].end_wall is not None
