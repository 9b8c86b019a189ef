"""`python -m sim.kube` as a subprocess: READY line, kubeconfig for load_kube_config, admin port, SIGTERM."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from sim.proc import python_module_args, start_group, stop_group

from .conftest import NS, pod_body

REPO = Path(__file__).resolve().parents[3]


def wait_ready(log: Path, proc, timeout_s: float = 20.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = (
            re.search(r"^READY port=(\d+) admin=(\d+)$", log.read_text(), re.MULTILINE)
            if log.exists()
            else None
        )
        if m:
            return int(m.group(1)), int(m.group(2))
        if proc.poll() is not None:
            raise AssertionError(f"emulator exited with {proc.returncode}: {log.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"no READY line within {timeout_s}s: {log.read_text() if log.exists() else ''}")


@pytest.fixture
def emulator_process(tmp_path):
    log = tmp_path / "kube.log"
    kubeconfig = tmp_path / "kubeconfig"
    args = python_module_args(
        "sim.kube", "--port", "0", "--token", "tok-123", "--kubeconfig-out", str(kubeconfig)
    )
    proc = start_group(args, log_path=log, cwd=REPO, env={"PYTHONUNBUFFERED": "1"})
    try:
        port, admin_port = wait_ready(log, proc)
        yield proc, port, admin_port, kubeconfig, log
    finally:
        stop_group(proc)


def test_module_prints_ready_and_its_kubeconfig_works_with_load_kube_config(emulator_process):
    proc, port, admin_port, kubeconfig, log = emulator_process
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    assert cfg.host == f"https://127.0.0.1:{port}"
    core: Any = client.CoreV1Api(client.ApiClient(cfg))
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    assert [p.metadata.name for p in core.list_namespaced_pod(NS).items] == ["memgraph-0"]
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/state", timeout=5) as resp:
        state = json.loads(resp.read())
    assert state["revision"] == int(core.list_namespaced_pod(NS).metadata.resource_version)
    assert "tok-123" not in log.read_text()
    assert stop_group(proc) == 0
