"""`memgraph-ha diverged list|purge`: the archives table from a status document, and the token check."""

from __future__ import annotations

import io

from ctl.cli import archives_text, main

STATUS = {
    "cluster": {"reseed": {"pod": "memgraph-2", "step": "catchup", "generation": 4}},
    "pods": [
        {"name": "memgraph-0", "data": None},
        {"name": "memgraph-2", "data": {
            "outcome": "archived", "archives_omitted": 0, "archived_bytes": 4096,
            "archives": [{"name": "20261130T203000.000000Z-g4", "bytes": 4096, "generation": 4,
                          "created": "2026-11-30T20:30:00Z", "holds": ["snapshots", "wal", "replication"]}]}},
    ],
}


def test_list_shows_each_archive_with_its_size_and_the_reseed_in_progress() -> None:
    lines = archives_text(STATUS, None)
    assert lines[0].split() == ["POD", "ARCHIVE", "BYTES", "GENERATION", "CREATED", "HOLDS"]
    assert lines[1].split() == ["memgraph-2", "20261130T203000.000000Z-g4", "4096", "4",
                                "2026-11-30T20:30:00Z", "snapshots,wal,replication"]
    assert lines[2] == "re-seed of memgraph-2: catchup (generation 4)"
    assert archives_text(STATUS, "memgraph-0")[0] == "no archives on memgraph-0"


def test_list_says_why_a_reseed_was_refused() -> None:
    refused = {"pods": [{"name": "memgraph-1", "data": {"outcome": "refused", "archives": [],
                                                        "reason": "volume has 10 bytes free"}}]}
    said = "memgraph-1: re-seed refused: volume has 10 bytes free"
    assert archives_text(refused, None) == ["no archives", said]


def test_purge_without_a_token_is_a_usage_error(monkeypatch) -> None:
    monkeypatch.delenv("MEMGRAPH_HA_TOKEN", raising=False)
    err = io.StringIO()
    assert main(["diverged", "purge", "memgraph-2", "x-g4"], out=io.StringIO(), err=err) == 2
    assert "needs the API token" in err.getvalue()
