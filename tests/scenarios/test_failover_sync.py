"""Scenario of issue 16 item 7: no acknowledged write without its sync copy after a failover.

The new MAIN must not be labelled (no client reaches it) before a replica is registered on it STRICT_SYNC,
when one that was ready can be: otherwise it acknowledges writes that exist only on itself until the sync
replica is designated a cycle later. Read-order argument of the check: the label is read first, the
MAIN's registrations after, so a registration done before the label is always seen.
"""

from __future__ import annotations

import time

import pytest

from sim import faults
from tests.scenarios.conftest import MakeScenario

SLACK_S = 20.0  # generous: 2 shared cores, other suites running
POLL_S = 0.02


def _labelled_main_rows(sc, pod: str) -> dict[str, str] | None:  # type: ignore[no-untyped-def]
    """The modes of the MAIN's registrations once `pod` is labelled role=main and answers MAIN; else None."""
    labels = sc.cluster.kube.get("Pod", sc.cfg.namespace, pod)["metadata"].get("labels") or {}
    if labels.get("memgraph-ha.io/role") != "main":
        return None
    state = sc.cluster.runtime(pod).memgraph.admin("state", timeout_s=2.0)
    if state.get("role") != "main":
        return None
    return {name: str(row.get("mode")) for name, row in (state.get("replicas") or {}).items()}


@pytest.mark.long
def test_failover_registers_the_sync_replica_before_the_new_main_is_labelled(scenario: MakeScenario) -> None:
    sc = scenario(seed=17)
    old, sync = sc.main(), sc.sync_replica()
    third = next(p for p in sc.replicas() if p != sync)
    faults.kill_memgraph(sc.cluster, old, hold=True, flog=sc.flog)  # CrashLoopBackOff keeps it down
    deadline = time.monotonic() + sc.cluster.timings.failover_after_s + SLACK_S
    rows: dict[str, str] | None = None
    while rows is None and time.monotonic() < deadline:
        try:
            rows = _labelled_main_rows(sc, sync)
        except Exception as exc:  # the emulator or the API between two states: read again
            sc.flog.add(f"poll: {type(exc).__name__}")
        time.sleep(POLL_S)
    assert rows is not None, f"{sync} was never labelled MAIN after the failover"
    sc.flog.add(f"{sync} first seen labelled MAIN with registrations {rows}")
    sc.wait_acks_after(time.monotonic(), 10, SLACK_S)
    faults.release(sc.cluster, old, flog=sc.flog)
    sc.converge()
    ev = sc.finish(extra={"registrations_when_first_labelled": rows})
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert rows.get(third.replace("-", "_")) == "strict_sync", (
        f"{sync} was labelled MAIN with registrations {rows}: writes acknowledged without a sync copy")
