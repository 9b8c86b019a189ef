"""The one-coordinator-at-a-time rule (sim/check_leaders.py) on hand-built action sequences, and which
emulator records count as coordinator actions (sim/leader_acts.py)."""

from __future__ import annotations

from sim.check_leaders import Act, Actor, judge
from sim.kube.audit import AuditRecord
from sim.leader_acts import Gathered, api_acts, memgraph_acts
from sim.memgraph.audit import Command

OLD0, NEW0 = Actor("memgraph-0", "aaaaaaaa-old"), Actor("memgraph-0", "bbbbbbbb-new")
ONE = Actor("memgraph-1", "cccccccc-one")
WINDOW = 3.75  # the Lease duration at the suite's time scale


def renewals(actor: Actor, start: float, end: float, every: float = 0.5) -> list[Act]:
    n = round((end - start) / every)
    return [Act(start + i * every, actor, "update leases/memgraph-ha", "api") for i in range(n + 1)]


def act(actor: Actor, t: float, what: str = "REGISTER REPLICA memgraph_2", release: bool = False) -> Act:
    return Act(t, actor, what, "memgraph" if not release else "api", release)


# ---- sequences that pass -------------------------------------------------------------------------------


def test_one_leader_renewing_is_one_coordinator() -> None:
    verdict = judge(renewals(OLD0, 0.0, 30.0), WINDOW)
    assert verdict.ok, verdict.render()
    assert [(s.actor, s.api, s.memgraph) for s in verdict.actors] == [(OLD0, 61, 0)]


def test_a_takeover_after_the_lease_expired_is_one_coordinator_at_a_time() -> None:
    # the old leader's last action at 10.0; the next holder claims once the Lease expired, 3.75 s later
    verdict = judge(renewals(OLD0, 0.0, 10.0) + renewals(ONE, 13.75, 40.0), WINDOW)
    assert verdict.ok, verdict.render()


def test_a_leader_back_after_two_expiries_is_not_an_overlap() -> None:
    # OLD0 -> ONE -> OLD0 without a release: two expiries, more than a Lease duration between OLD0's acts
    acts = [*renewals(OLD0, 0.0, 10.0), act(ONE, 13.8), act(ONE, 14.0), *renewals(OLD0, 18.0, 25.0)]
    assert judge(acts, WINDOW).ok


def test_hand_overs_by_release_may_follow_each_other_closely() -> None:
    acts = [*renewals(OLD0, 0.0, 5.0), act(OLD0, 5.2, "release", release=True),
            *renewals(ONE, 5.5, 8.0), act(ONE, 8.2, "release", release=True), *renewals(OLD0, 8.5, 12.0)]
    verdict = judge(acts, WINDOW)
    assert verdict.ok, verdict.render()


def test_events_in_any_order_are_judged_by_time() -> None:
    acts = renewals(OLD0, 0.0, 10.0) + renewals(ONE, 13.75, 20.0)
    assert judge(list(reversed(acts)), WINDOW).ok


# ---- sequences that fail --------------------------------------------------------------------------------


def test_an_old_incarnation_acting_once_amid_the_new_leaders_renewals_is_two_coordinators() -> None:
    acts = [*renewals(NEW0, 0.0, 10.0), act(OLD0, 5.1, "SET REPLICATION ROLE TO REPLICA WITH PORT 10000")]
    verdict = judge(acts, WINDOW)
    assert not verdict.ok
    first = verdict.overlaps[0]
    assert (first.a1.actor, first.b.actor, first.a2.actor) == (NEW0, OLD0, NEW0)
    assert (first.a1.t, first.b.t, first.a2.t) == (5.0, 5.1, 5.5)
    text = verdict.render()
    assert text.startswith("two coordinators acted at once")
    assert "memgraph-0/aaaaaaaa" in text and "memgraph-0/bbbbbbbb" in text, "two incarnations, one pod name"


def test_two_incarnations_renewing_in_turn_are_two_coordinators() -> None:
    # A, B, A, B...: both believe they hold the Lease (the identity of the pod name alone)
    acts = renewals(OLD0, 0.0, 5.0, every=1.0) + renewals(NEW0, 0.5, 5.5, every=1.0)
    verdict = judge(acts, WINDOW)
    assert not verdict.ok
    assert len(verdict.overlaps) >= 9
    assert "... and" in verdict.render()


def test_an_a_b_a_pattern_inside_the_lease_duration_is_an_overlap() -> None:
    acts = [act(ONE, 0.0), act(OLD0, 1.0), act(ONE, 3.7)]
    assert not judge(acts, WINDOW).ok
    assert judge(acts, 3.6).ok, "A's two actions 3.7 s apart: outside a 3.6 s window"


def test_acting_on_after_ones_own_release_is_an_overlap() -> None:
    acts = [*renewals(OLD0, 0.0, 2.0), act(OLD0, 2.2, "release", release=True), *renewals(ONE, 2.5, 8.0),
            act(OLD0, 4.1, "DROP REPLICA memgraph_2")]
    verdict = judge(acts, WINDOW)
    assert not verdict.ok
    assert {o.b.actor for o in verdict.overlaps} == {OLD0}


# ---- which emulator records are coordinator actions -------------------------------------------------------

OLD_IP, NEW_IP, ONE_IP = "198.18.0.10", "198.18.0.13", "198.18.0.11"
BY_IP = {OLD_IP: OLD0, NEW_IP: NEW0, ONE_IP: ONE}


def record(ip: str, verb: str, resource: str, name: str, code: int = 200, holder: str | None = None,
           body: str = "", t: float = 1.0) -> AuditRecord:
    return AuditRecord(t, t, ip, "system:serviceaccount:default:memgraph", "agent", verb, resource, "default",
                       name, "", code, holder, body)


def labels(inner: str) -> str:
    return '{"metadata":{"labels":{' + inner + '}}}'


def test_api_records_that_are_coordinator_actions() -> None:
    out = Gathered()
    api_acts([
        record(ONE_IP, "update", "leases", "memgraph-ha", holder="memgraph-1_cccccccc-one", t=1.0),
        record(ONE_IP, "update", "leases", "memgraph-ha", holder="", t=2.0),
        record(OLD_IP, "update", "leases", "memgraph-ha", code=401, t=3.0),
        record(NEW_IP, "update", "leases", "memgraph-ha", code=409, t=3.5),
        record(ONE_IP, "patch", "pods", "memgraph-0", body=labels('"memgraph-ha.io/role":"main"'), t=4.0),
        record(ONE_IP, "patch", "pods", "memgraph-1", body=labels('"memgraph-ha.io/role":null'), t=5.0),
        record(ONE_IP, "patch", "pods", "memgraph-1", body=labels('"memgraph-ha.io/leader":"true"'), t=6.0),
        record(ONE_IP, "create", "events", "", code=201, t=7.0),
        record(ONE_IP, "delete", "pods", "memgraph-2", t=8.0),
        record("198.18.0.1", "delete", "pods", "memgraph-2", t=9.0),
    ], BY_IP, out)
    assert [(a.t, a.actor, a.release) for a in out.acts] == [
        (1.0, ONE, False), (2.0, ONE, True), (4.0, ONE, False), (6.0, ONE, False), (7.0, ONE, False),
        (8.0, ONE, False)]
    assert (out.refused, out.local, out.unattributed) == (2, 1, 1)
    assert out.acts[1].what == "update leases/memgraph-ha (release)"


def test_memgraph_commands_from_a_pod_are_actions_and_from_localhost_are_the_pods_own() -> None:
    out = Gathered()
    memgraph_acts([
        Command(1.0, ONE_IP, ONE_IP, "REGISTER REPLICA memgraph_2 ASYNC TO 198.18.0.12:10000"),
        Command(2.0, "127.0.0.1", "127.0.0.1", "SET REPLICATION ROLE TO REPLICA WITH PORT 10000"),
        Command(3.0, OLD_IP, ONE_IP, "SET REPLICATION ROLE TO REPLICA WITH PORT 10000", "Couldn't set role"),
        Command(4.0, "198.18.0.1", ONE_IP, "CREATE SNAPSHOT"),
    ], ONE, BY_IP, out)
    assert [(a.t, a.actor, a.channel) for a in out.acts] == [(1.0, ONE, "memgraph"), (3.0, OLD0, "memgraph")]
    assert out.acts[1].what == ("SET REPLICATION ROLE TO REPLICA WITH PORT 10000 on memgraph-1/cccccccc "
                                "-> Couldn't set role")
    assert (out.local, out.unattributed) == (1, 1)
