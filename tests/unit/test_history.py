"""coordinator/core/history.py: the bounded history of MAIN changes kept in the cluster record."""

from __future__ import annotations

import json
from dataclasses import replace

from coordinator.core import record as record_codec
from coordinator.core.history import (
    KEEP,
    Transition,
    append_transition,
    as_status,
    parse,
    switchover_outcome,
    with_write_pause,
)
from coordinator.core.model import ClusterRecord
from coordinator.core.outcomes import SwitchoverOutcome, TransitionKind


def failover(gen: int, to: str = "memgraph-1", pause: float | None = None) -> Transition:
    return Transition(TransitionKind.FAILOVER, "memgraph-0", to, gen, 1_760_000_000.0 + gen, 5.2, pause)


def test_history_keeps_the_last_ten_transitions_oldest_dropped() -> None:
    text = ""
    for gen in range(1, 15):
        text = append_transition(text, failover(gen))
    items, problem = parse(text)
    assert problem == ""
    assert [t.generation for t in items] == list(range(15 - KEEP, 15))
    assert len(text) < 2000  # an annotation shares the Lease's size limit with the rest of the record


def test_history_survives_the_record_codec_like_every_other_field() -> None:
    rec = replace(ClusterRecord(main="memgraph-1", generation=3),
                  history=append_transition("", failover(3, pause=0.412)))
    annotations = record_codec.encode(rec)
    assert json.loads(annotations["memgraph-ha.io/history"])[0]["write_pause_s"] == 0.412
    decoded, problems = record_codec.decode(annotations)
    assert problems == [] and decoded == rec


def test_unreadable_history_reads_as_empty_with_a_problem_never_raises() -> None:
    bad = ("{not json", '{"kind": "failover"}', '[{"kind": "reboot"}]', '[{"kind": "failover", "at": "x"}]')
    for text in bad:
        items, problem = parse(text)
        assert items == () and problem.startswith("history annotation unreadable"), text
    assert parse("") == ((), "")


def test_write_pause_is_filled_once_on_the_matching_failover_only() -> None:
    text = append_transition(append_transition("", failover(2, "memgraph-2")), failover(3, "memgraph-1"))
    assert with_write_pause(text, 3, "memgraph-2", 1.0) is None  # other pod
    assert with_write_pause(text, 4, "memgraph-1", 1.0) is None  # other generation
    done = with_write_pause(text, 3, "memgraph-1", 2.71828)
    assert done is not None
    assert [t.write_pause_s for t in parse(done)[0]] == [None, 2.718]
    assert with_write_pause(done, 3, "memgraph-1", 9.0) is None  # never overwritten


def test_status_view_is_newest_first_with_the_documented_names() -> None:
    text = append_transition(append_transition("", failover(2)), Transition(
        TransitionKind.SWITCHOVER, "memgraph-1", "", 2, 1_760_000_100.5, 30.0, 0.25,
        switchover_outcome(SwitchoverOutcome.TIMEOUT)))
    view = as_status(text)
    assert view == [
        {"kind": "switchover", "from": "memgraph-1", "to": None, "generation": 2, "at": 1_760_000_100.5,
         "duration_s": 30.0, "write_pause_s": 0.25, "outcome": "timeout"},
        {"kind": "failover", "from": "memgraph-0", "to": "memgraph-1", "generation": 2, "at": 1_760_000_002.0,
         "duration_s": 5.2, "write_pause_s": None, "outcome": "done"},
    ]


def test_a_switchover_that_moved_the_main_is_done_else_its_outcome() -> None:
    assert switchover_outcome(SwitchoverOutcome.DONE) == "done"
    assert switchover_outcome(SwitchoverOutcome.NO_TARGET) == "no-target"
