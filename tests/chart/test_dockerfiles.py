"""Dockerfile.agent / Dockerfile.coordinator: hadolint-clean, pinned base, non-root, right entry points,
and the package installs the way they install it (slow: a clean virtualenv, pip's cache reused)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.proc import start_group, stop_group
from tests.chart import render as r

DOCKERFILES = ("Dockerfile.agent", "Dockerfile.coordinator")
HADOLINT = Path(sys.executable).parent / "hadolint"


def _instructions(name: str) -> list[tuple[str, str]]:
    text = (r.REPO / name).read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_finds_nothing(name: str) -> None:
    done = subprocess.run(
        [str(HADOLINT), "--format", "json", str(r.REPO / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(done.stdout or "[]") == [], done.stdout
    assert done.returncode == 0


def test_hadolint_would_catch_an_unpinned_base_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    done = subprocess.run(
        [str(HADOLINT), "--format", "json", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert {f["code"] for f in json.loads(done.stdout)} >= {"DL3007", "DL3013"}


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_image_is_python_311_slim_pinned_by_tag(name: str) -> None:
    bases = [arg.split()[0] for op, arg in _instructions(name) if op == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases), bases


@pytest.mark.parametrize(
    ("name", "command"), [("Dockerfile.agent", "ENTRYPOINT"), ("Dockerfile.coordinator", "CMD")]
)
def test_final_stage_runs_non_root_with_the_entry_point(name: str, command: str) -> None:
    final = _instructions(name)
    final = final[max(i for i, (op, _) in enumerate(final) if op == "FROM") :]
    users = [arg for op, arg in final if op == "USER"]
    assert users and not users[-1].startswith(("0", "root"))
    program = "memgraph-ha-agent" if name.endswith("agent") else "memgraph-ha-coordinator"
    assert (command, f'["{program}"]') in final


def test_agent_image_user_matches_the_chart_security_context() -> None:
    final_user = [arg for op, arg in _instructions("Dockerfile.agent") if op == "USER"][-1]
    agent = r.container(r.render_set("ha"), "agent")["securityContext"]
    assert final_user == f"{agent['runAsUser']}:{agent['runAsGroup']}"


def test_dockerignore_keeps_everything_the_dockerfiles_copy() -> None:
    ignore = (r.REPO / ".dockerignore").read_text().splitlines()
    allowed = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    for name in DOCKERFILES:
        for op, arg in _instructions(name):
            if op == "COPY" and not arg.startswith("--from"):
                assert set(arg.split()[:-1]) <= allowed, (name, arg)


def _copied_paths(name: str) -> list[str]:
    paths: list[str] = []
    for op, arg in _instructions(name):
        if op == "COPY" and not arg.startswith("--from"):
            paths.extend(arg.split()[:-1])
    return paths


def _pip_install_args(name: str) -> list[str]:
    run = next(arg for op, arg in _instructions(name) if op == "RUN" and "pip install" in arg)
    args = run.split("pip install", 1)[1].split("&&")[0].split()
    return [a for a in args if a != "--no-cache-dir"]  # the test reuses pip's cache


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_package_installs_into_a_clean_venv_as_the_dockerfile_does(tmp_path: Path) -> None:
    src, venv = tmp_path / "src", tmp_path / "venv"
    src.mkdir()
    for path in _copied_paths("Dockerfile.agent"):
        origin = r.REPO / path
        if origin.is_dir():
            shutil.copytree(origin, src / path, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, src / path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_NO_CACHE"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    started = time.monotonic()
    for argv in (
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "--quiet", *_pip_install_args("Dockerfile.agent")],
    ):
        proc = start_group(argv, env=env, cwd=src, log_path=tmp_path / "install.log")
        try:
            code = proc.wait(timeout=240)
        finally:
            stop_group(proc)
        assert code == 0, (tmp_path / "install.log").read_text()[-3000:]
    elapsed = time.monotonic() - started
    for program in ("memgraph-ha-agent", "memgraph-ha-coordinator", "memgraph-ha"):
        assert (venv / "bin" / program).exists(), program
    check = start_group(
        [str(venv / "bin" / "python"), "-c", "import agent, coordinator, hooks, kubernetes, neo4j, flask"],
        env=env,
        cwd=tmp_path,
        log_path=tmp_path / "import.log",
    )
    try:
        assert check.wait(timeout=60) == 0, (tmp_path / "import.log").read_text()[-3000:]
    finally:
        stop_group(check)
    print(f"clean install took {elapsed:.1f}s")
