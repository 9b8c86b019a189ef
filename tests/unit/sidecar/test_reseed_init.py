"""The re-seed init container on a real directory tree: it moves Memgraph's files into an archive on the
same volume (auth/ stays), refuses without the room for a fresh copy, and never deletes a byte."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from agent.reseed import Asked, RecordUnreadable, act
from coordinator.core.datadir import DataOutcome
from coordinator.edge.settings import DataSettings

NOW = dt.datetime(2026, 11, 30, 20, 30, 0, tzinfo=dt.UTC)
ASKED = Asked(generation=5, main="memgraph-0", incarnation="uid-2/0")


def _volume(tmp_path: Path) -> DataSettings:
    data = tmp_path / "vol" / "mg_data"
    for rel, text in {"snapshots/s1": "S" * 100, "wal/w1": "W" * 50, "wal/w2": "W" * 25,
                      "replication/state": "R" * 10, "auth/users": "A" * 7}.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text(text)
    return DataSettings(data_dir=str(data), archive_dir=str(tmp_path / "vol" / "diverged"))


def _bytes_on(volume: Path) -> int:
    return sum(p.stat().st_size for p in volume.rglob("*") if p.is_file() and p.name != "manifest.json")


def test_nothing_asked_moves_nothing_and_reports_the_durable_files(tmp_path: Path) -> None:
    report = act(_volume(tmp_path), "memgraph-2", "uid-2b", None, now=lambda: NOW)
    assert report.outcome is DataOutcome.KEPT and report.durable_files == 3 and report.archives == ()


def test_asked_reseed_archives_memgraph_files_keeps_auth_and_deletes_nothing(tmp_path: Path) -> None:
    data = _volume(tmp_path)
    before = _bytes_on(tmp_path / "vol")
    report = act(data, "memgraph-2", "uid-2b", ASKED, now=lambda: NOW)
    assert report.outcome is DataOutcome.ARCHIVED and report.generation == 5 and report.clean
    assert _bytes_on(tmp_path / "vol") == before
    assert sorted(p.name for p in Path(data.data_dir).iterdir()) == ["auth"]
    [archive] = report.archives
    assert archive.bytes == 185 and archive.holds == ("snapshots", "wal", "replication")
    manifest = json.loads((Path(data.archive_dir) / archive.name / "manifest.json").read_text())
    assert (manifest["generation"], manifest["main"], manifest["bytes"]) == (5, "memgraph-0", 185)


def test_a_second_start_of_the_same_reseed_adds_no_empty_archive(tmp_path: Path) -> None:
    data = _volume(tmp_path)
    act(data, "memgraph-2", "uid-2b", ASKED, now=lambda: NOW)
    again = act(data, "memgraph-2", "uid-2c", ASKED, now=lambda: NOW + dt.timedelta(seconds=1))
    assert again.outcome is DataOutcome.ARCHIVED and again.clean and len(again.archives) == 1


def test_too_little_free_space_refuses_with_the_numbers_and_moves_nothing(tmp_path: Path) -> None:
    data = _volume(tmp_path)
    report = act(data, "memgraph-2", "uid-2b", ASKED, free_bytes=lambda p: 100, now=lambda: NOW)
    assert report.outcome is DataOutcome.REFUSED and report.durable_files == 3
    assert report.reason == "volume has 100 bytes free, a fresh copy needs 185 (+0 reserve); nothing moved"
    assert not Path(data.archive_dir).exists()


def test_an_unreadable_record_is_a_failure_that_moves_nothing(tmp_path: Path) -> None:
    report = act(_volume(tmp_path), "memgraph-2", "uid-2b", RecordUnreadable("timeout"), now=lambda: NOW)
    assert report.outcome is DataOutcome.FAILED and report.durable_files == 3 and "timeout" in report.reason


def test_an_operator_purge_removes_only_the_named_archive(tmp_path: Path) -> None:
    data = _volume(tmp_path)
    first = act(data, "memgraph-2", "uid-2b", ASKED, now=lambda: NOW)
    stray = Path(data.archive_dir) / "not-an-archive"
    stray.mkdir()
    name = first.archives[0].name
    after = act(data, "memgraph-2", "uid-2c", None, (name, "not-an-archive", "../vol"), now=lambda: NOW)
    assert after.archives == () and stray.is_dir()
    assert (Path(data.data_dir) / "auth" / "users").is_file()
