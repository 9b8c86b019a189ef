"""Pooled clients across changes of MAIN, and DNS of a terminating pod (seed 001, incident 3).

The writers hold one pooled neo4j driver per thread on the write Service's address: kube-proxy sent
each of their connections to the MAIN of the moment and keeps it there, whatever the labels do later.
So the question of the seed incident (two MAINs during a rolling restart, fed by pooled connections)
is asked directly: I1 fails if any write was acknowledged by a pod the cluster record did not name as
MAIN at that moment; I3 if an acknowledged write is lost or a write the client saw fail was committed.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from sim import faults, manifests
from tests.scenarios.conftest import MakeScenario

SLACK_S = 30.0
TOKEN = "scenario-token"


class StuckOnTheOldMain(AssertionError):
    """Pooled writers did not write again after a change of MAIN (a liveness failure, not a safety one)."""


def acked_backends(ev) -> set[str]:  # type: ignore[no-untyped-def]
    return {a.backend_pod for a in ev.timeline.attempts if a.acked}


def test_pooled_clients_across_a_rolling_restart_of_the_main(scenario: MakeScenario) -> None:
    sc = scenario(seed=31, writer_threads=3, reader=True)
    old = sc.main()
    with sc.planned_change():
        sc.cluster.restart_pod(old, timeout_s=sc.cluster.timings.grace_s + 60)  # preStop hands the MAIN over
    sc.wait_acks_after(time.monotonic(), 30, SLACK_S)
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert ev.report.result("reads").ok and ev.timeline.reads
    assert "" not in acked_backends(ev), "every acknowledged write is attributed to the pod it reached"
    assert len(acked_backends(ev)) == 2, "acknowledged first by the old MAIN, then by the new one"


@pytest.mark.long
def test_pooled_clients_across_a_failover(scenario: MakeScenario) -> None:
    sc = scenario(seed=33, writer_threads=3)
    old, c = sc.main(), sc.cluster
    faults.kill_memgraph(c, old, hold=True, flog=sc.flog)  # connections to it are reset by its kernel
    new = sc.wait_main(lambda m: m != old, c.timings.failover_after_s + SLACK_S, "failover")
    sc.wait_acks_after(time.monotonic(), 30, SLACK_S)  # the same pooled writers, on new connections
    faults.release(c, old, flog=sc.flog)
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert new in acked_backends(ev)


RECOVERED_RUN = 20


def _steady_acks(sc, since: float, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    """True once the last RECOVERED_RUN attempts started after `since` were all acknowledged."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # bounded: timeout_s
        done = sorted((a for a in sc.writer.attempts if a.t_start >= since and a.t_end is not None),
                      key=lambda a: a.t_start)
        if len(done) >= RECOVERED_RUN and all(a.acked for a in done[-RECOVERED_RUN:]):
            return True
        time.sleep(0.2)
    return False


def switchover(url: str, target: str) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    req = urllib.request.Request(url + "/api/v1/switchover", data=json.dumps({"to": target}).encode(),
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200, resp.read()


@pytest.mark.long
@pytest.mark.xfail(strict=True, raises=StuckOnTheOldMain, reason=(
    "after a switchover that leaves the old MAIN's pod running, pooled client connections stay on the "
    "demoted MAIN (kube-proxy keeps established connections) and every write fails with 'Write queries "
    "are forbidden on the replica instance' until the client drops the connection (the neo4j driver "
    "keeps it: max_connection_lifetime 1 h); for the HA-defects issue"))
def test_pooled_clients_write_again_after_an_api_switchover(scenario: MakeScenario) -> None:
    sc = scenario(seed=32, writer_threads=2, extra_agent_env={"HA_API_TOKEN": TOKEN})
    old, c = sc.main(), sc.cluster
    target = next(p for p in sc.replicas() if p != old)
    with sc.planned_change():
        switchover(c.runtime(old).agent_url, target)
        sc.wait_main(lambda m: m == target, SLACK_S, f"{target} is the MAIN")
    t = time.monotonic()
    # recovered: the writers' last RECOVERED_RUN attempts all acknowledged. Acks alone do not show it: the
    # lanes share one pooled driver, which opens a new connection (to the new MAIN) whenever its pinned
    # ones are all busy, so some writes succeed while others keep failing on the demoted MAIN
    recovered = _steady_acks(sc, t, SLACK_S)
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)  # safety holds either way
    assert ev.lost_acked_writes == 0
    if not recovered:
        stuck = [a for a in ev.timeline.attempts if a.t_start >= t and not a.acked]
        raise StuckOnTheOldMain(f"{len(stuck)} writes failed in {SLACK_S:.0f}s after the switchover, e.g. "
                                f"{stuck[-1].error_class}: {stuck[-1].message[:120] if stuck else ''}")


@pytest.mark.long
def test_a_terminating_main_whose_name_stops_resolving_still_hands_over(scenario: MakeScenario) -> None:
    sc = scenario(seed=34, headless_publish_not_ready=False)  # seed 001 incident 3's Service
    old, c = sc.main(), sc.cluster
    assert c.net is not None and c.net.dns is not None
    dns, name = c.net.dns, f"{old}.{manifests.headless(c.cfg, c.chart)}"
    assert dns.resolve(name) is not None
    gone: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            if dns.resolve(name) is None:
                gone.append(time.monotonic())
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with sc.planned_change():
            sc.cluster.restart_pod(old, timeout_s=sc.cluster.timings.grace_s + 60)
    finally:
        stop.set()
        watcher.join(5)
    sc.converge()
    ev = sc.finish()
    assert gone, f"{name} kept resolving while its pod terminated"
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.timeline.prestops and all(r.exit_code == 0 for r in sc.timeline.prestops)
