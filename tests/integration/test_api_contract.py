"""The agent's HTTP API holds its OpenAPI contract (docs/openapi.yaml) under schemathesis, on the emulated
cluster; the mutating routes run too, and the cluster stays whole.

Real pieces: the 3-pod emulated cluster (Kubernetes API emulator, three Memgraph emulators, three real
agents under gunicorn, with an API token and HA_STATUS_AUTH=token), a writer through the client Service,
the invariant sampler, and schemathesis' pytest integration over the document. The routes come from the
document, not from a list here: a route added to it is fuzzed without editing this file.

The fuzzed agent is a replica's agent that does not lead. Every agent of the emulated cluster listens on
a 127.x address, so its loopback-only preStop route is reachable and fuzzed too. The agents run with
HA_PRESTOP_BUDGET_SECONDS=4: the agent holds a preStop at most min(budget_s, that) (less 1 s), so the
fuzzer's `budget_s` of up to 86400 costs at most ~3 s per call, and a switchover at most 4 s.
HA_DRAIN_SECONDS=0: a replica's preStop answers at once. Before each route's examples the MAIN is moved
off the fuzzed pod when the fuzzer's switchovers put it there (`main_elsewhere`): a preStop of the
MAIN's pod whose agent does not lead waits the whole budget for the leader to see a deletionTimestamp
that never comes here (the hook only runs for a terminating pod), which would make the run's length
depend on where the MAIN landed.

Order: the two fuzz tests (with and without the token), then the check that the fuzzer reached every
documented route both ways and that the cluster is healthy, I1-I5 and I7 held and the writer lost no
acknowledged write (I6 is the hook's invariant: no hook runs here, the fuzzer calls the agent's preStop
route itself, so the records hold agent lines without the hook's START and END).

Must never: leave a process behind (the fixture stops the cluster in a `finally`), assert a speed, or
run without a bound (examples per route are capped; every request has a timeout).
"""

from __future__ import annotations

import collections
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings

from sim.check import Sampler
from sim.cluster import ClusterConfig, SimCluster
from sim.runs import finish
from sim.timeline import Timeline
from sim.workload import Writer

# schemathesis' generated cases do not run on pytest-xdist workers: `make test` runs this module alone
pytestmark = pytest.mark.serial

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
USER, PASSWORD = "memgraph", "Pw-contract-fuzz-7c1e"
TOKEN = "tok-contract-fuzz-4f0a9"
EXAMPLES = 6  # generated examples per route and run (the coverage phase adds its own, bounded by the schema)
REQUEST_TIMEOUT_S = 30.0  # > the longest hold of a request (a switchover or preStop: 4 s here)
HEALTHY_S = 60.0
CALLS: collections.Counter[tuple[str, bool]] = collections.Counter()


@dataclass
class Fuzzed:
    cluster: SimCluster
    target: str  # pod whose agent is fuzzed
    base_url: str
    generation_before: int
    writer: Writer
    sampler: Sampler
    timeline: Timeline


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    cfg = ClusterConfig(
        replicas=3,
        seed=41,
        memgraph_auth=(USER, PASSWORD),
        values={"haAgent": {"prestopBudgetSeconds": 4, "drainSeconds": 0}},
        extra_agent_env={"HA_API_TOKEN": TOKEN, "HA_STATUS_AUTH": "token"},
    )
    workdir = tmp_path_factory.mktemp("api-contract")
    cluster = SimCluster(workdir, cfg)
    writer: Writer | None = None
    sampler: Sampler | None = None
    try:
        cluster.start(wait_ready_s=90)
        cluster.wait_for(cluster.healthy, HEALTHY_S, "cluster healthy after start")
        st = cluster.status()["cluster"]
        target = next(p for p in cluster.pod_names() if p not in (st["main"], st["leader"]))
        timeline = Timeline(pods=cluster.pod_names())
        sampler = Sampler(timeline, cluster.roles, period_s=0.2).start()
        writer = Writer(cluster.resolve_main, USER, PASSWORD, rate_hz=40).start()
        assert writer.wait_acks(20, 20), "the writer got no acknowledgement before the fuzz"
        yield Fuzzed(cluster, target, cluster.runtime(target).agent_url, int(st["generation"]), writer,
                     sampler, timeline)
    finally:
        for stoppable in (writer, sampler):
            if stoppable is not None:
                stoppable.stop()
        cluster.stop()


@pytest.fixture
def main_elsewhere(fuzzed: Fuzzed) -> None:
    """Before a route's examples: the cluster healthy and the MAIN not on the fuzzed pod."""
    c = fuzzed.cluster
    for _ in range(5):
        c.wait_for(c.healthy, HEALTHY_S, "cluster healthy before a route's examples")
        st = c.status()["cluster"]
        if st["main"] != fuzzed.target:
            return
        to = next(p for p in c.pod_names() if p not in (st["main"], fuzzed.target))
        code, doc = _post(fuzzed.base_url + "/api/v1/switchover", {"to": to})
        print(f"\nmoved the MAIN off the fuzzed pod: {code} {doc.get('outcome')}")
    raise AssertionError(f"the MAIN stays on the fuzzed pod {fuzzed.target}")


# Loaded at import (schemathesis' lazy `from_fixture` does not run under pytest 9.2); the agent's address
# is only known once the cluster runs, so every call passes it as `base_url`.
contract = schemathesis.openapi.from_path(DOC)
contract.config.update(request_timeout=REQUEST_TIMEOUT_S)
contract.config.generation.update(max_examples=EXAMPLES)
FUZZ_SETTINGS = settings(database=None, deadline=None, suppress_health_check=list(HealthCheck),
                         max_examples=EXAMPLES)


@contract.parametrize()
@FUZZ_SETTINGS
def test_every_documented_route_holds_the_contract_with_the_token(
    case: Any, fuzzed: Fuzzed, main_elsewhere: None
) -> None:
    CALLS[(case.operation.label, True)] += 1
    case.call_and_validate(base_url=fuzzed.base_url, headers={"Authorization": f"Bearer {TOKEN}"},
                           timeout=REQUEST_TIMEOUT_S)


@contract.parametrize()
@FUZZ_SETTINGS
def test_every_documented_route_holds_the_contract_without_a_token(
    case: Any, fuzzed: Fuzzed, main_elsewhere: None
) -> None:
    CALLS[(case.operation.label, False)] += 1
    case.call_and_validate(base_url=fuzzed.base_url, timeout=REQUEST_TIMEOUT_S)


def _documented_operations() -> set[str]:
    doc = yaml.safe_load(DOC.read_text())
    return {f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops}


def _post(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST", headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_fuzzer_reached_every_route_and_the_cluster_stayed_whole(fuzzed: Fuzzed, tmp_path: Path) -> None:
    ops = _documented_operations()
    missed = sorted(f"{op} ({'with' if tok else 'without'} token)" for op in ops for tok in (True, False)
                    if CALLS[(op, tok)] == 0)
    assert not missed, f"run the whole module: the fuzz tests did not reach {missed}"
    c = fuzzed.cluster
    # the fuzzer may have paused failover last; resuming is the operator's next step, and ours
    code, doc = _post(fuzzed.base_url + "/api/v1/resume")
    assert code == 200 and doc["paused"] is False, (code, doc)
    c.wait_for(lambda: c.healthy() and all(c.pod_ready(p) for p in c.pod_names()), HEALTHY_S,
               "cluster healthy after the fuzz")
    st = c.status()["cluster"]
    print(f"\nfuzz calls per route (with/without token): "
          f"{ {op: (CALLS[(op, True)], CALLS[(op, False)]) for op in sorted(ops)} }; "
          f"generation {fuzzed.generation_before} -> {st['generation']}")
    assert st["generation"] > fuzzed.generation_before, "no switchover: the mutating routes were not fuzzed"
    tl = fuzzed.timeline
    tl.fault_stop_t = stop_t = time.monotonic()  # I5 counts convergence from the end of the fuzz
    c.wait_for(lambda: bool(tl.samples) and tl.samples[-1].t > stop_t, 10.0, "a role sample after the fuzz")
    evidence = finish(c, fuzzed.writer, fuzzed.sampler, fuzzed.timeline, tmp_path / "reports", "api-contract")
    results = {r.name: r for r in evidence.report.results if r.name != "I6"}
    failed = {name: (r.summary, r.evidence[:3]) for name, r in results.items() if not r.ok}
    assert not failed, failed
    acked = [a for a in evidence.timeline.attempts if a.acked]
    assert acked and evidence.lost_acked_writes == 0, (len(acked), evidence.lost_acked_writes)
