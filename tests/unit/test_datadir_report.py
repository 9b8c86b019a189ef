"""The init container's data-directory report survives the termination message: codec and size limit."""

from __future__ import annotations

from coordinator.core.datadir import (
    TERMINATION_MESSAGE_LIMIT,
    Archive,
    DataOutcome,
    DataReport,
    decode,
    encode,
)


def test_a_report_round_trips_through_its_json() -> None:
    report = DataReport(DataOutcome.ARCHIVED, generation=7, reason="", durable_files=0, free_bytes=10,
                        archives=(Archive("20261130T203000Z-g7", 123, 7, "2026-11-30T20:30:00Z",
                                          ("snapshots", "wal")),), archived_bytes=123)
    assert decode(encode(report)) == report


def test_many_archives_keep_the_newest_and_count_the_rest_within_the_kubelet_limit() -> None:
    archives = tuple(Archive(f"2026{i:04d}T000000Z-g{i}", i, i, "t", ("wal",)) for i in range(200))
    text = encode(DataReport(DataOutcome.KEPT, durable_files=3, archives=archives))
    back = decode(text)
    assert back is not None and len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert back.archives_omitted == 200 - len(back.archives) > 0
    assert back.archives[-1].name == archives[-1].name


def test_an_unreadable_report_is_unknown_not_clean() -> None:
    assert decode("") is None and decode("not json") is None and decode('{"outcome": "??"}') is None
