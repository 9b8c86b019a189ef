"""What clients saw: write outcomes (sim.workload.classify) and their checks (sim.check_clients)."""

from __future__ import annotations

import pytest
from neo4j.exceptions import ClientError, IncompleteCommit, ServiceUnavailable, SessionExpired

from sim.bolt_client import classify
from sim.check import check
from sim.check_clients import acks_off_record, failed_but_present, reads_off_target
from sim.timeline import (
    ACKED,
    ERROR,
    UNKNOWN,
    FinalData,
    ReadAttempt,
    RecordSample,
    RoleSample,
    Timeline,
    WriteAttempt,
)


def client_error(message: str) -> ClientError:
    err = ClientError(message)
    return err


@pytest.mark.parametrize(("exc", "outcome"), [
    (ServiceUnavailable("Couldn't connect to 198.18.0.2:7687 (resolved to ...)"), ERROR),
    (ServiceUnavailable("Failed to write data to connection IPv4Address(...)"), ERROR),
    (ServiceUnavailable("Failed to read from defunct connection IPv4Address(...)"), UNKNOWN),
    (SessionExpired("Failed to read from defunct connection"), UNKNOWN),
    (IncompleteCommit("Connection lost during commit"), UNKNOWN),
    (client_error("Write queries are forbidden on the replica instance."), ERROR),
    (client_error("Replication Exception: Failed to replicate to SYNC replica 'mg_1': ... Transaction is "
                  "still committed on the main instance and other alive replicas."), UNKNOWN),
    (RuntimeError("anything else"), UNKNOWN),
])
def test_a_write_fails_only_when_nothing_can_have_been_committed(exc: BaseException, outcome: str) -> None:
    assert classify(exc) == outcome


def attempt(wid: str, t: float, outcome: str = ACKED, backend: str = "mg-0/u0") -> WriteAttempt:
    return WriteAttempt(wid, int(wid[1:]), "198.18.0.2:7687", t, t + 0.01, t, t, outcome, backend=backend)


def test_an_ack_from_a_pod_the_record_no_longer_names_is_reported() -> None:
    tl = Timeline(records=[RecordSample(0.0, "mg-0"), RecordSample(1.0, "mg-1"), RecordSample(5.0, "mg-1")])
    tl.attempts = [attempt("w1", 0.5), attempt("w2", 1.1), attempt("w3", 3.0),
                   attempt("w4", 3.1, backend="mg-1/u1")]
    bad = acks_off_record(tl, lag_s=0.2)
    assert len(bad) == 1 and bad[0].startswith("write w3 acknowledged by mg-0")  # w2: within the lag


def test_the_previous_main_may_ack_until_the_newly_named_main_reports_main_and_not_after() -> None:
    tl = Timeline(records=[RecordSample(0.0, "mg-0"), RecordSample(1.0, "mg-1"), RecordSample(5.0, "mg-1")])
    tl.samples = samples("mg-1", "replica", True, [0.8, 1.4]) + samples("mg-1", "main", True, [1.6, 2.0])
    tl.attempts = [attempt("w1", 1.3), attempt("w2", 1.7), attempt("w3", 2.5),
                   attempt("w4", 1.5, backend="mg-2/u2")]
    bad = acks_off_record(tl, lag_s=0.2)
    assert [b.split()[1] for b in bad] == ["w3", "w4"]  # w1, w2: before the promotion (+ lag) of mg-1


def test_failed_writes_must_not_be_committed_but_unknown_ones_may_be() -> None:
    tl = Timeline(attempts=[attempt("w1", 0, ERROR), attempt("w2", 1, UNKNOWN), attempt("w3", 2, ERROR)])
    tl.final = FinalData({"mg-0": ("w2", "w3"), "mg-1": ("w2",)}, "mg-0", ("mg-1",))
    assert failed_but_present(tl) == ["mg-0 holds 1 write(s) the client was told failed: w3"]


def samples(pod: str, role: str | None, ready: bool, times: list[float]) -> list[RoleSample]:
    return [RoleSample(t, i, pod, role, role, ready) for i, t in enumerate(times)]


def test_a_read_on_a_pod_that_was_never_a_ready_replica_nor_main_is_reported() -> None:
    tl = Timeline(sample_period_s=0.2, endpoint_delay_s=1.0)
    tl.samples = samples("mg-1", "replica", True, [0.0, 0.2]) + samples("mg-2", "replica", False, [0.0, 5.0])
    tl.reads = [ReadAttempt(0.1, 0.15, "mg-1/u", True), ReadAttempt(4.9, 5.0, "mg-2/u", True),
                ReadAttempt(9.0, 9.1, "mg-2/u", False), ReadAttempt(30.0, 30.1, "mg-2/u", True)]
    bad, judged, unjudged = reads_off_target(tl, lag_s=0.2)
    assert judged == 2 and unjudged == 1 and len(bad) == 1 and "mg-2" in bad[0]


def test_the_report_names_unknown_outcomes_and_fails_i3_on_a_committed_failure() -> None:
    writes = [attempt("w1", 0), attempt("w2", 1, UNKNOWN), attempt("w3", 2, ERROR)]
    tl = Timeline(pods=["mg-0"], attempts=writes)
    tl.samples = samples("mg-0", "main", True, [0.0, 0.2, 0.4])
    tl.fault_stop_t = 0.0
    tl.final = FinalData({"mg-0": ("w1",)}, "mg-0", ())
    i3 = check(tl).result("I3")
    assert i3.ok and "1 outcome(s) unknown" in i3.summary
    tl.final = FinalData({"mg-0": ("w1", "w3")}, "mg-0", ())
    i3 = check(tl).result("I3")
    assert not i3.ok and i3.summary == "writes reported failed were committed"
