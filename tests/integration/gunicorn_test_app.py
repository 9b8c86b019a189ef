"""A small program for tests: the real agent API (`agent.api.create_app`) under the real gunicorn server
(`agent.server.serve`), with a fake AgentServices (the unit under test is the HTTP/server layer).

Usage: python tests/integration/gunicorn_test_app.py HOST PORT MARKER_FILE

`on_worker_start` records the worker's pid in the services object and appends `started <pid>` to
MARKER_FILE; `/health` is ok only in the process where that callback ran. `on_worker_exit` appends
`exited <pid>`. Logging goes to stdout in a recognisable format so the test can see gunicorn's own
log lines arriving through the standard logging tree.

Must never: bind outside 127.0.0.0/8.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.api import PrestopRequest, create_app
from agent.metrics import AgentMetrics
from agent.server import serve
from sim.proc import check_loopback

LOG_FORMAT = "testfmt logger=%(name)s level=%(levelname)s msg=%(message)s"


class FakeServices:
    """Answers like a healthy leader of a 2-pod cluster; health depends on the worker callback."""

    pod_name = "memgraph-0"

    def __init__(self) -> None:
        self.loops_pid: int | None = None

    def health(self) -> tuple[bool, str]:
        ok = self.loops_pid == os.getpid()
        return ok, f"loops started in pid {self.loops_pid}, serving from pid {os.getpid()}"

    def ready(self) -> tuple[bool, str]:
        return True, "memgraph answers"

    def local_state(self) -> dict[str, Any]:
        return {"role": "main", "worker_pid": os.getpid()}

    def is_leader(self) -> bool:
        return True

    def leader_url(self) -> str | None:
        return None

    def cluster_status(self) -> dict[str, Any]:
        return {"main": "memgraph-0", "replicas": ["memgraph-1"]}

    def prestop(self, request: PrestopRequest) -> tuple[int, dict[str, Any]]:
        return 200, {"outcome": "replica-drained", "safe_to_stop": True, "new_main": None, "detail": ""}

    def switchover(self, to: str | None) -> tuple[int, dict[str, Any]]:
        return 200, {"new_main": to or "memgraph-1"}

    def pause(self) -> tuple[int, dict[str, Any]]:
        return 200, {"paused": True}

    def resume(self) -> tuple[int, dict[str, Any]]:
        return 200, {"paused": False}

    def purge(self, pod: str, archive: str) -> tuple[int, dict[str, Any]]:
        return 202, {"pod": pod, "archive": archive, "pending": [f"{pod}/{archive}"]}

    def known_pods(self) -> set[str]:
        return {"memgraph-0", "memgraph-1"}

    def fence(self, request: Any) -> tuple[int, dict[str, Any]]:
        return 409, {"error": "main-healthy", "detail": "test app"}

    def handover(self, request: Any) -> tuple[int, dict[str, Any]]:
        return 409, {"error": "not-terminating", "detail": "test app"}

    def api_token(self) -> str | None:
        return None

    def fence_token(self) -> str | None:
        return None


def main() -> None:
    host, port, marker = check_loopback(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    services = FakeServices()
    metrics = AgentMetrics()

    def started() -> None:
        services.loops_pid = os.getpid()
        metrics.set_leader(True)
        with marker.open("a") as f:
            f.write(f"started {os.getpid()}\n")

    def exited() -> None:
        with marker.open("a") as f:
            f.write(f"exited {os.getpid()}\n")

    serve(lambda: create_app(services, metrics), host, port, threads=4, on_worker_start=started,
          graceful_timeout=3.0, on_worker_exit=exited, access_log=True)


if __name__ == "__main__":
    main()
