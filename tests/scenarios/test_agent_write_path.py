"""Scenario: the agent is not in the write path (issue 16 item 1, DESIGN "Start and termination order").

A container that is not running is not ready, the agent's (a native sidecar) included, so the pod of a MAIN
whose agent crashes or crash-loops is NotReady. The client Service routes by the coordinator's role label
and publishes not-ready addresses, so a healthy MAIN keeps taking writes while its agent is down, and
nobody fails it over (its Bolt port answers).
"""

from __future__ import annotations

import time

from sim import faults
from tests.scenarios.conftest import MakeScenario

SLACK_S = 20.0  # generous: 2 shared cores


def test_main_whose_agent_is_down_keeps_taking_writes(scenario: MakeScenario) -> None:
    sc = scenario(seed=41)
    main = sc.main()

    def pod_ready() -> bool:
        return sc.cluster.pod_ready(main)

    down_at = time.monotonic()
    faults.kill_agent(sc.cluster, main, hold=True, flog=sc.flog)  # crash-looping: kept down
    sc.cluster.wait_for(lambda: not pod_ready(), SLACK_S, f"{main} NotReady (its agent is not running)")
    # the agent stays down for more than a lease and several failover delays
    hold_s = sc.cluster.timings.lease_duration_s + 3 * sc.cluster.timings.failover_after_s
    sc.wait_acks_after(time.monotonic() + hold_s, 5, hold_s + SLACK_S)
    up_at = time.monotonic()
    faults.release(sc.cluster, main, flog=sc.flog)
    sc.cluster.wait_for(pod_ready, SLACK_S, f"{main} Ready again")
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.main() == main and not ev.timeline.failovers, "a MAIN whose agent is down was failed over"
    during = [a for a in ev.timeline.attempts if down_at <= a.t_start and a.t_end <= up_at]
    failed = [a for a in during if not a.acked]
    assert during and not failed, (
        f"{len(failed)} of {len(during)} writes failed while only the MAIN's agent was down: "
        f"{[(round(a.t_start - sc.t0, 2), a.error_class, a.message[:80]) for a in failed[:5]]}")
