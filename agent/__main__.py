"""`python -m agent` / `memgraph-ha-agent`: the sidecar process.

Role: read the settings (a bad or missing value ends the process with exit code 2 and a message naming
the variable), set up logging (logfmt or JSON, secrets redacted), then serve the HTTP API with gunicorn:
one worker with threads; the agent's loops are created and started inside that worker, and stopped by
the worker's exit hook, which gunicorn runs on SIGTERM after the graceful drain.

Must never: start loops in the gunicorn master (threads do not survive the fork), import the heavy
client libraries in the master (the pod's agent memory budget covers both processes), or print a
secret.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Any

from coordinator.edge.logs import add_secret, setup_logging
from coordinator.edge.settings import exit_on_error

PR_SET_DUMPABLE = 4  # prctl(2)


def make_non_dumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): with the pod's process namespace shared (the chart does it for fencing),
    the memgraph container runs as the same UID and could otherwise read this process's environment (the
    API token, the Memgraph password) and files (the ServiceAccount token) through /proc/<pid>/. Kept
    across fork (gunicorn's worker), reset by execve. False when the call is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError) as exc:
        logging.getLogger(__name__).warning("prctl(PR_SET_DUMPABLE, 0) failed: %s", exc)
        return False


def main() -> None:
    settings = exit_on_error(os.environ)
    setup_logging(settings.log.format, settings.log.level)
    if not make_non_dumpable():
        logging.getLogger(__name__).warning("agent process stays dumpable: /proc/<pid>/environ is readable "
                                            "by processes of the same UID")
    add_secret(settings.memgraph.password)
    add_secret(settings.api.token)

    from agent.server import serve  # gunicorn only: the master stays small

    box: dict[str, Any] = {}

    def app_factory():  # type: ignore[no-untyped-def]
        # Imported here, in the worker: the kubernetes client and the neo4j driver are tens of MB each,
        # and the master process (which only supervises the worker) must not hold a copy of them.
        from agent.api import create_app
        from agent.metrics import AgentMetrics
        from agent.runtime import Agent

        metrics = AgentMetrics()
        box["agent"] = Agent(settings, metrics)
        return create_app(box["agent"], metrics, status_auth=settings.api.status_auth == "token")

    def on_worker_start() -> None:
        box["agent"].start()

    def on_worker_exit() -> None:
        agent = box.get("agent")
        if agent is not None:
            agent.shutdown(budget_s=5.0)

    serve(
        app_factory,
        settings.api.bind,
        settings.api.port,
        threads=8,
        on_worker_start=on_worker_start,
        on_worker_exit=on_worker_exit,
        graceful_timeout=max(15.0, settings.prestop.drain_s + 10.0),
    )


if __name__ == "__main__":
    main()
