"""The Dockerfile (targets `agent` and `coordinator`): hadolint-clean, pinned base, non-root, right entry
points, one shared build, the dependency layer before the source, the product only (never `sim`), and
the package installs the way the Dockerfile installs it (slow: a clean virtualenv, pip's cache reused)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim.proc import start_group, stop_group
from tests.chart import render as r

DOCKERFILE = r.REPO / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
TARGETS = {"agent": ("ENTRYPOINT", "memgraph-ha-agent"), "coordinator": ("CMD", "memgraph-ha-coordinator")}
PRODUCT = {"agent", "coordinator", "ctl", "hooks"}
NEVER_SHIPPED = {"sim", "tests", "charts", ".venv"}


@dataclass
class Stage:
    name: str
    base: str
    steps: list[tuple[str, str]] = field(default_factory=list)


def _stages() -> dict[str, Stage]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in (ln.strip() for ln in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        op, arg = line.split(None, 1)
        if op.upper() == "FROM":
            base, _, name = arg.partition(" AS ")
            current = stages[name.strip()] = Stage(name.strip(), base.strip())
        else:
            assert current is not None, line
            current.steps.append((op.upper(), arg))
    return stages


def _chain(target: str) -> list[Stage]:
    """The stages a target is built on, base first (COPY --from stages are not part of it)."""
    stages, out = _stages(), []
    name: str | None = target
    while name in stages:
        out.insert(0, stages[name])
        name = stages[name].base
    return out


def _build_chain() -> list[Stage]:
    """The stages that build the venv both images copy (`COPY --from=<stage>`), base first."""
    sources = {arg.split()[0].removeprefix("--from=") for s in _stages().values() for op, arg in s.steps
               if op == "COPY" and arg.startswith("--from=")}
    assert len(sources) == 1, sources
    return _chain(sources.pop())


def _copied(stage: Stage) -> list[str]:
    copies = [arg for op, arg in stage.steps if op == "COPY" and not arg.startswith("--from")]
    return [path for arg in copies for path in arg.split()[:-1]]


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [str(HADOLINT), "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60,
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


def test_base_images_are_python_311_slim_pinned_by_tag() -> None:
    stages = _stages()
    bases = [s.base for s in stages.values() if s.base not in stages]
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases), bases


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_each_target_runs_non_root_with_its_entry_point(target: str) -> None:
    final = _stages()[target].steps
    users = [arg for op, arg in final if op == "USER"]
    assert users and not users[-1].startswith(("0", "root"))
    command, program = TARGETS[target]
    assert (command, f'["{program}"]') in final


def test_the_agent_is_the_default_target() -> None:
    assert list(_stages())[-1] == "agent"


def test_agent_image_user_matches_the_chart_security_context() -> None:
    final_user = [arg for op, arg in _stages()["agent"].steps if op == "USER"][-1]
    agent = r.container(r.render_set("ha"), "agent")["securityContext"]
    assert final_user == f"{agent['runAsUser']}:{agent['runAsGroup']}"


def test_both_images_share_one_build_of_the_product() -> None:
    stages = _stages()
    chains = {t: [s.name for s in _chain(t)] for t in TARGETS}
    assert chains["agent"][:-1] == chains["coordinator"][:-1], chains  # same stages up to the last
    built = [(s.name, a) for s in stages.values() for op, a in s.steps if op == "COPY" and "--from" in a]
    assert len(built) == 1, built  # the venv is copied out of the build once, into the shared runtime
    assert all(not _copied(s) for t in TARGETS for s in _chain(t))  # the final images copy no source


def test_the_dependency_layer_is_installed_before_any_source_is_copied() -> None:
    steps = [step for s in _build_chain() for step in s.steps]
    installs = [i for i, (op, arg) in enumerate(steps) if op == "RUN" and "-r requirements.txt" in arg]
    sources = [i for i, (op, arg) in enumerate(steps) if op == "COPY" and set(arg.split()[:-1]) & PRODUCT]
    assert installs and sources and installs[0] < min(sources), steps
    before = [p for op, arg in steps[: installs[0]] if op == "COPY" for p in arg.split()[:-1]]
    assert set(before) == {"constraints.txt", "setup.cfg"}  # only the pins and the requirement list
    product_install = [arg for op, arg in steps if op == "RUN" and "pip install" in arg][-1]
    assert "--no-deps" in product_install  # the source layer never reinstalls the dependencies


def test_neither_image_copies_or_installs_sim() -> None:
    for stage in _stages().values():
        for op, arg in stage.steps:
            assert not (set(arg.split()) & {"sim", "sim/", "./sim", "tests", "tests/"}), (stage.name, op, arg)
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(r.REPO / "setup.cfg")
    included = {line.split(".")[0] for line in setup_cfg["options.packages.find"]["include"].split()}
    assert included == PRODUCT


def test_dockerignore_keeps_what_the_dockerfile_copies_and_nothing_of_the_harness() -> None:
    ignore = (r.REPO / ".dockerignore").read_text().splitlines()
    allowed = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    assert "*" in ignore and not allowed & NEVER_SHIPPED
    for stage in _stages().values():
        assert set(_copied(stage)) <= allowed, (stage.name, _copied(stage))


def _run(argv: list[str], env: dict[str, str], cwd: Path, log: Path, timeout_s: float = 240) -> None:
    proc = start_group(argv, env=env, cwd=cwd, log_path=log)
    try:
        code = proc.wait(timeout=timeout_s)
    finally:
        stop_group(proc)
    assert code == 0, log.read_text()[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_package_installs_into_a_clean_venv_as_the_dockerfile_does(tmp_path: Path) -> None:
    """Every COPY and RUN of the build stages, in order, with the image's venv path replaced by one here
    (and pip's cache kept, for time)."""
    src, venv, log = tmp_path / "src", tmp_path / "venv", tmp_path / "install.log"
    src.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_NO_CACHE"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    started = time.monotonic()
    for op, arg in (step for s in _build_chain() for step in s.steps):
        if op == "COPY":
            for path in arg.split()[:-1]:
                origin = r.REPO / path
                if origin.is_dir():
                    shutil.copytree(origin, src / path, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(origin, src / path)
        elif op == "RUN":
            command = arg.replace("/opt/memgraph-ha", str(venv)).replace("--no-cache-dir ", "")
            command = re.sub(r"(^|&& )python ", rf"\g<1>{sys.executable} ", command)
            _run(["bash", "-c", command], env, src, log)
    elapsed = time.monotonic() - started
    for program in ("memgraph-ha-agent", "memgraph-ha-coordinator", "memgraph-ha"):
        assert (venv / "bin" / program).exists(), program
    python = str(venv / "bin" / "python")
    # the status page's files are in the package (agent/ui, package data)
    _run([python, "-c", "import agent, coordinator, ctl, hooks, kubernetes, neo4j, flask; "
          "from agent.status_page import _load; _load()"], env, tmp_path, tmp_path / "import.log", 60)
    probe = subprocess.run([python, "-c", "import sim"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert probe.returncode != 0 and "No module named 'sim'" in probe.stderr, probe.stderr
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not (site / "sim").exists() and not (site / "tests").exists()
    print(f"clean install took {elapsed:.1f}s")


def test_make_images_lints_and_says_when_no_docker_engine_is_there() -> None:
    """No Docker engine on the development machines: `make images` runs hadolint and exits 0 saying so."""
    make, docker = shutil.which("make"), shutil.which("docker")
    if make is None:
        pytest.skip("make is not installed")
    engine = docker and subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False)
    if engine and engine.returncode == 0:
        pytest.skip("a Docker engine runs here: make images would build for real")
    done = subprocess.run(
        [make, "--no-print-directory", "images"], cwd=r.REPO, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "hadolint Dockerfile" in done.stdout
    assert "no Docker engine available here" in done.stdout
