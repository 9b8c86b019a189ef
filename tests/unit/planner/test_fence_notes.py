"""coordinator.core.fence_notes: the leader's fence notes stay bounded, and refusals are logged once per
change (issue 16 item 5, review defects c and d)."""

from __future__ import annotations

from coordinator.core.fence_notes import prune, refusals_after
from coordinator.core.model import Fence, FenceMiss, Promote

REFUSED = FenceMiss("uid-0", 3, "agent of memgraph-0 answered 409 main-healthy", 10.0)
FENCE_0 = Fence("memgraph-0", "uid-0", 3)


def test_notes_about_generations_before_the_latest_two_are_dropped() -> None:
    notes = {"memgraph-0": FenceMiss("u0", 7, "now"), "memgraph-1": FenceMiss("u1", 6, "before"),
             "memgraph-2": FenceMiss("u2", 5, "old")}
    assert set(prune(notes, 7)) == {"memgraph-0", "memgraph-1"}


def test_notes_naming_a_generation_the_record_has_not_reached_are_dropped() -> None:
    assert prune({"memgraph-0": FenceMiss("u0", 9, "from another leader's future")}, 7) == {}


def test_at_most_cap_notes_are_kept_the_newest_first() -> None:
    notes = {f"memgraph-{i}": FenceMiss(f"u{i}", 7, "x", float(i)) for i in range(12)}
    kept = prune(notes, 7, cap=4)
    assert set(kept) == {"memgraph-11", "memgraph-10", "memgraph-9", "memgraph-8"}


def test_a_new_refusal_is_one_change_and_the_same_refusal_again_is_none() -> None:
    first, said = refusals_after({}, [FENCE_0, Promote("memgraph-1")], [], ("memgraph-0", REFUSED))
    assert first == {"memgraph-0": REFUSED} and len(said) == 1 and "withheld" in said[0]
    same = FenceMiss("uid-0", 3, REFUSED.reason, 12.0)
    again, said = refusals_after(first, [FENCE_0], [], ("memgraph-0", same))
    assert said == [] and again["memgraph-0"].at == 12.0


def test_a_refusal_with_another_reason_is_a_change() -> None:
    other = FenceMiss("uid-0", 3, "agent of memgraph-0 answered 503 fence-failed", 12.0)
    _, said = refusals_after({"memgraph-0": REFUSED}, [FENCE_0], [], ("memgraph-0", other))
    assert len(said) == 1 and "503" in said[0]


def test_a_confirmed_fence_or_no_fence_asked_releases_the_refusal_once() -> None:
    after, said = refusals_after({"memgraph-0": REFUSED}, [FENCE_0], [FENCE_0], None)
    assert after == {} and said == ["memgraph-0: failover no longer withheld (fenced)"]
    after, said = refusals_after({"memgraph-0": REFUSED}, [Promote("memgraph-0")], [], None)
    assert after == {} and said == ["memgraph-0: failover no longer withheld (no fence asked)"]
    assert refusals_after({}, [], [], None) == ({}, [])
