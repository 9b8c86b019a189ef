"""The preStop hook (`hooks/prestop.py`) run as `python3 hooks/prestop.py` against a real local HTTP server
or against nothing. Pins the record's exact lines, retries, budget bound (I6), exit codes and pruning."""

from __future__ import annotations

import ast
import os
import re
import signal
import sys
import time
from pathlib import Path

from hooks import prestop
from sim.proc import free_port, kill_group, start_group
from tests.support.wait import wait_until
from tests.unit.hook.conftest import HOOK, LINE_RE, Step

OK_BODY = {"outcome": "switchover-done", "safe_to_stop": True, "new_main": "memgraph-0", "detail": ""}
DUR = r"\d+\.\d{3}s"


def record_lines(text: str) -> list[str]:
    """The messages of the record's lines; every line must carry the exact timestamp format."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    out = []
    for ln in lines:
        m = re.match(LINE_RE, ln)
        assert m, f"line without the [YYYY-MM-DDTHH:MM:SS.mmmZ] prefix: {ln!r}"
        out.append(m.group(1))
    return out


def assert_lines(actual: list[str], patterns: list[str]) -> None:
    assert len(actual) == len(patterns), "\n".join(actual)
    for line, pattern in zip(actual, patterns, strict=True):
        assert re.fullmatch(pattern, line), f"{line!r} !~ {pattern!r}"


def test_success_first_try_writes_exact_record_and_exits_0(scripted_agent, run_hook):
    agent = scripted_agent(Step(200, OK_BODY))
    run = run_hook(agent.url, budget=20)
    assert run.code == 0
    path = run.record_file()
    assert path.name == "prestop-uid-1_10.1.2.3.log"
    url = re.escape(f"{agent.url}/api/v1/prestop")
    assert_lines(record_lines(path.read_text()), [
        re.escape("START PreStop hook (pod=memgraph-1 budget=20s)"),
        f"Attempt 1: POST {url}",
        rf"Attempt 1: SUCCESS \(status=200, duration={DUR}\) outcome=switchover-done new_main=memgraph-0",
        re.escape("END PreStop hook (exit=0)"),
    ])
    assert len(agent.requests) == 1
    body = agent.requests[0]
    assert body["path"] == "/api/v1/prestop"
    assert (body["pod"], body["uid"]) == ("memgraph-1", "uid-1")
    assert 15 < body["budget_s"] <= 20
    # every record line is mirrored to stderr, identically
    assert path.read_text().splitlines() == [ln for ln in run.output.splitlines() if ln.startswith("[")]


def test_503_then_200_retries_after_the_agents_hint(scripted_agent, run_hook):
    agent = scripted_agent(Step(503, {"retry_after_s": 0.2}), Step(200, OK_BODY))
    run = run_hook(agent.url, budget=20)
    assert run.code == 0
    lines = record_lines(run.record_file().read_text())
    assert_lines(lines, [
        r"START PreStop hook \(pod=memgraph-1 budget=20s\)",
        r"Attempt 1: POST .*",
        rf'Attempt 1: HTTP 503 \(duration={DUR}\) {{"retry_after_s": 0.2}}',
        r"Attempt 2: POST .*",
        rf"Attempt 2: SUCCESS \(status=200, duration={DUR}\) outcome=switchover-done new_main=memgraph-0",
        r"END PreStop hook \(exit=0\)",
    ])
    assert run.elapsed_s < 5
    assert agent.requests[1]["budget_s"] < agent.requests[0]["budget_s"]


def test_500_is_retried_and_names_the_body(scripted_agent, run_hook):
    agent = scripted_agent(Step(500, {"error": "internal", "detail": "boom"}), Step(200, OK_BODY))
    run = run_hook(agent.url, budget=20)
    assert run.code == 0
    lines = record_lines(run.record_file().read_text())
    assert re.fullmatch(rf'Attempt 1: HTTP 500 \(duration={DUR}\) {{"error": "internal", "detail": "boom"}}',
                        lines[2])
    assert lines[4].startswith("Attempt 2: SUCCESS")


def test_refused_until_budget_then_exit_1_within_budget(run_hook):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = run_hook(url, budget=3)
    assert run.code == 1
    assert run.elapsed_s < 3.5, f"hook ran {run.elapsed_s:.2f}s on a 3s budget"
    lines = record_lines(run.record_file().read_text())
    assert lines[0] == "START PreStop hook (pod=memgraph-1 budget=3s)"
    errors = [ln for ln in lines if "ERROR" in ln]
    assert len(errors) >= 2
    for n, line in enumerate(errors, start=1):
        assert line == f"Attempt {n}: ERROR ConnectionRefusedError: [Errno 111] Connection refused"
    assert re.fullmatch(r"GIVE UP: budget of 3s spent after \d+ attempt\(s\); not confirmed safe", lines[-2])
    assert lines[-1] == "END PreStop hook (exit=1)"


def test_slow_agent_times_out_each_request_then_succeeds(scripted_agent, run_hook):
    agent = scripted_agent(Step(200, OK_BODY, delay_s=5), Step(200, OK_BODY))
    run = run_hook(agent.url, budget=10, PRESTOP_REQUEST_TIMEOUT_SECONDS="0.5")
    assert run.code == 0
    lines = record_lines(run.record_file().read_text())
    m = re.fullmatch(r"Attempt 1: TIMEOUT after (\d+\.\d{3})s", lines[2])
    assert m and 0.45 <= float(m.group(1)) < 1.5
    assert lines[4].startswith("Attempt 2: SUCCESS (status=200")


def test_agent_that_never_answers_is_bounded_by_the_budget(scripted_agent, run_hook):
    agent = scripted_agent(Step(200, OK_BODY, delay_s=30))
    run = run_hook(agent.url, budget=3)
    assert run.code == 1
    assert run.elapsed_s < 3.5, f"hook ran {run.elapsed_s:.2f}s on a 3s budget"
    lines = record_lines(run.record_file().read_text())
    assert re.fullmatch(r"Attempt 1: TIMEOUT after 2\.\d{3}s", lines[2])
    assert lines[-1] == "END PreStop hook (exit=1)"


def test_trickling_agent_is_stopped_by_the_hard_guard(trickle_server, run_hook):
    run = run_hook(trickle_server, budget=2)
    assert run.code == 1
    assert run.elapsed_s < 2.5, f"hook ran {run.elapsed_s:.2f}s on a 2s budget"
    lines = record_lines(run.record_file().read_text())
    assert lines[-2:] == ["TIMEOUT: budget of 2s reached; stopping the hook", "END PreStop hook (exit=1)"]


def test_sigterm_ends_the_record_with_exit_1(scripted_agent, tmp_path, python3):
    agent = scripted_agent(Step(200, OK_BODY, delay_s=30))
    env = {"POD_NAME": "memgraph-1", "POD_UID": "uid-1", "POD_IP": "10.1.2.3", "AGENT_URL": agent.url,
           "PRESTOP_TIMEOUT_SECONDS": "30", "PRESTOP_LOG_DIR": str(tmp_path)}
    proc = start_group([python3, str(HOOK)], env=env, log_path=tmp_path / "out.txt")
    try:
        record = tmp_path / "prestop-uid-1_10.1.2.3.log"
        wait_until(lambda: agent.requests, 10.0, "the hook reaching the agent")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 1
    finally:
        kill_group(proc)
    assert record_lines(record.read_text())[-2:] == ["TERMINATED by signal SIGTERM; not confirmed safe",
                                                     "END PreStop hook (exit=1)"]


def test_agent_saying_not_safe_ends_at_once_with_exit_1(scripted_agent, run_hook):
    body = {"outcome": "no-target", "safe_to_stop": False, "new_main": None, "detail": "no ready replica"}
    agent = scripted_agent(Step(200, body))
    run = run_hook(agent.url, budget=20)
    assert run.code == 1
    lines = record_lines(run.record_file().read_text())
    assert re.fullmatch(rf"Attempt 1: NOT SAFE \(status=200, duration={DUR}\) outcome=no-target new_main=- "
                        r"detail=no ready replica", lines[2])
    assert lines[3] == "END PreStop hook (exit=1)"
    assert len(agent.requests) == 1


def test_forbidden_is_final_not_retried(scripted_agent, run_hook):
    agent = scripted_agent(Step(403, {"error": "forbidden", "detail": "loopback only"}))
    run = run_hook(agent.url, budget=20)
    assert run.code == 1
    assert len(agent.requests) == 1
    assert record_lines(run.record_file().read_text())[-1] == "END PreStop hook (exit=1)"
    assert run.elapsed_s < 5


def test_unwritable_log_dir_falls_back_to_stderr_with_start_and_end(scripted_agent, run_hook, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory should be")
    agent = scripted_agent(Step(200, OK_BODY))
    run = run_hook(agent.url, budget=20, log_dir=blocker / "sub")
    assert run.code == 0
    lines = record_lines(run.output)
    assert re.fullmatch(r"WARNING cannot write .*not-a-dir/sub/prestop-uid-1_10\.1\.2\.3\.log: "
                        r"(NotADirectoryError|FileExistsError): .*; recording to stderr only", lines[0])
    assert lines[1] == "START PreStop hook (pod=memgraph-1 budget=20s)"
    assert lines[-1] == "END PreStop hook (exit=0)"
    assert any(ln.startswith("Attempt 1: SUCCESS") for ln in lines)


def test_keeps_the_newest_100_records(scripted_agent, run_hook, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    now = time.time()
    for i in range(105):
        p = log_dir / f"prestop-old{i:03d}_10.0.0.{i % 250}.log"
        p.write_text("old\n")
        os.utime(p, (now - 10000 + i, now - 10000 + i))  # old000 is the oldest
    (log_dir / "memgraph.log").write_text("not a prestop record\n")
    agent = scripted_agent(Step(200, OK_BODY))
    run = run_hook(agent.url, budget=20, log_dir=log_dir)
    assert run.code == 0
    records = sorted(p.name for p in log_dir.glob("prestop-*.log"))
    assert len(records) == 100
    assert "prestop-uid-1_10.1.2.3.log" in records
    gone = {f"prestop-old{i:03d}_10.0.0.{i}.log" for i in range(6)}
    assert not gone & set(records)
    assert (log_dir / "prestop-old006_10.0.0.6.log").exists()
    assert (log_dir / "memgraph.log").exists()


def test_bad_budget_value_falls_back_to_default_and_says_so():
    cfg = prestop.load_settings({"PRESTOP_TIMEOUT_SECONDS": "ten", "POD_NAME": "memgraph-2"})
    assert cfg.budget_s == 600
    assert cfg.agent_url == "http://127.0.0.1:8080"
    assert cfg.log_dir == "/var/log/memgraph"
    assert cfg.warnings == ("WARNING PRESTOP_TIMEOUT_SECONDS='ten' is not a positive number of seconds; "
                            "using 600",)


def test_backoff_doubles_from_half_a_second_and_caps_at_10s(scripted_agent, tmp_path, capfd):
    """Fake clock: the schedule is exact. Real HTTP: the agent answers 503 without a hint every time."""
    agent = scripted_agent(Step(503, {"detail": "not yet"}))
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(d: float) -> None:
        sleeps.append(d)
        now[0] += d

    cfg = prestop.Settings(pod="memgraph-1", uid="u", ip="i", agent_url=agent.url, budget_s=60.0,
                           log_dir=str(tmp_path), request_timeout_s=0.0)
    rec = prestop.Recorder(prestop.record_path(str(tmp_path), "u", "i"))
    assert prestop.run(cfg, rec, clock=lambda: now[0], sleep=sleep) is False
    # 59 s usable (1 s reserve): the last wait is cut to what is left, then the hook gives up
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0, 3.5]
    assert len(agent.requests) == 10
    out = capfd.readouterr().err
    assert "GIVE UP: budget of 60s spent after 10 attempt(s); not confirmed safe" in out


def test_record_path_and_append_line_for_the_agent(tmp_path):
    path = prestop.record_path(str(tmp_path), "abc-123", "10.0.0.7")
    assert path == str(tmp_path / "prestop-abc-123_10.0.0.7.log")
    prestop.append_line(path, "agent: switchover step 1/7 remove role label from memgraph-1")
    prestop.append_line(path, "multi\nline")
    lines = record_lines(Path(path).read_text())
    assert lines == ["agent: switchover step 1/7 remove role label from memgraph-1", "multi line"]
    assert prestop.record_path(str(tmp_path), "", "") == str(tmp_path / "prestop-unknown_unknown.log")


def test_timestamp_format_is_utc_with_milliseconds():
    assert prestop.timestamp(1760877296.789) == "2025-10-19T12:34:56.789Z"
    assert prestop.format_line("x", 1760877296.0) == "[2025-10-19T12:34:56.000Z] x\n"


def test_hook_imports_only_the_standard_library():
    tree = ast.parse(HOOK.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    assert modules, "no imports found"
    assert modules <= set(sys.stdlib_module_names) | {"__future__"}, modules - set(sys.stdlib_module_names)


def test_interpret_treats_unparsable_200_as_retryable():
    reply = prestop.interpret(3, 200, b"<html>oops</html>", 0.004)
    assert reply.line == "Attempt 3: HTTP 200 (duration=0.004s) <html>oops</html>"
    assert not reply.final
