"""`memgraph-ha --version` prints the installed package's version (importlib.metadata)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from ctl.cli import main


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"memgraph-ha {metadata.version('memgraph-ha')}"


def test_console_script_prints_the_version_of_setup_cfg() -> None:
    script = Path(sys.executable).parent / "memgraph-ha"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60, check=False)
    cfg = (Path(__file__).resolve().parents[2] / "setup.cfg").read_text()
    version = next(line.split("=", 1)[1].strip() for line in cfg.splitlines() if line.startswith("version"))
    assert (done.returncode, done.stdout.strip()) == (0, f"memgraph-ha {version}")
