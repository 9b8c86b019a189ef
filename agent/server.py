"""Serve the agent's Flask app under gunicorn, started from Python (no command line, no config file).

Role: one gunicorn arbiter with exactly one `gthread` worker (the agent's loops and its HTTP API share
that worker's memory), N threads so a long preStop or switchover call never blocks the probes, a
`post_worker_init` callback where the agent starts its loops, a `worker_exit` callback where it drains,
a graceful timeout for SIGTERM, no worker timeout (the kubelet's liveness probe is the watchdog;
gunicorn's counts a frozen pod's pause as the worker's silence), and gunicorn's own logs routed into the
standard `logging` tree (the agent's logfmt/JSON formatter decides how they look). Access logs are off
unless asked for; then they are one logfmt line per request through the same tree.

Must never: run more than one worker (the state would split), open gunicorn's control socket (several
agents share a machine in the simulation), bind anything the caller did not ask for, or install its
own log handlers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)

ACCESS_LOG_FORMAT = 'method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_ms=%(M)s remote=%(h)s'
WSGIApp = Callable[..., Any]


class StdlibLogger(glogging.Logger):
    """gunicorn's logger without its own handlers: `gunicorn.error` and `gunicorn.access` propagate."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True

    def reopen_files(self) -> None:
        """Nothing to reopen: the handlers belong to the standard logging configuration."""


def bind_address(host: str, port: int) -> str:
    """gunicorn's bind string; IPv6 literals need brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class AgentServer(BaseApplication):
    """A gunicorn application whose WSGI app comes from `app_factory`, called in the worker."""

    def __init__(self, app_factory: Callable[[], WSGIApp], options: dict[str, Any]) -> None:
        self._factory = app_factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        return self._factory()


def server_options(
    bind: str,
    port: int,
    threads: int = 8,
    on_worker_start: Callable[[], None] | None = None,
    on_worker_exit: Callable[[], None] | None = None,
    graceful_timeout: float = 30.0,
    access_log: bool = False,
) -> dict[str, Any]:
    """The gunicorn settings `serve` uses (separate so they can be read and checked)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")

    def post_worker_init(worker: Any) -> None:
        log.info("agent worker started pid=%s threads=%s", worker.pid, threads)
        if on_worker_start is not None:
            on_worker_start()  # an exception here fails the boot: gunicorn exits, the container restarts

    def worker_exit(server: Any, worker: Any) -> None:
        log.info("agent worker exiting pid=%s", worker.pid)
        if on_worker_exit is not None:
            try:
                on_worker_exit()
            except Exception:
                log.exception("worker exit callback raised")

    return {
        "bind": [bind_address(bind, port)],
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "graceful_timeout": math.ceil(graceful_timeout),  # gunicorn takes whole seconds
        # gunicorn's worker watchdog off: the kubelet's liveness probe watches the agent (a stuck worker
        # fails /health). The arbiter measures a worker's silence on the monotonic clock, so after a pod
        # freeze longer than its timeout (a paused VM or node) it killed the agent's worker the moment
        # both thawed, just when the agent must demote its thawed MAIN; the new worker took seconds.
        "timeout": 0,
        "keepalive": 5,
        "accesslog": "-" if access_log else None,
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "loglevel": "info",
        "logger_class": StdlibLogger,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        "control_socket_disable": True,
        "preload_app": False,
        "proc_name": "memgraph-ha-agent",
    }


def serve(
    app_factory: Callable[[], WSGIApp],
    bind: str,
    port: int,
    threads: int = 8,
    on_worker_start: Callable[[], None] | None = None,
    graceful_timeout: float = 30.0,
    on_worker_exit: Callable[[], None] | None = None,
    access_log: bool = False,
) -> None:
    """Run gunicorn in this process until it is stopped (SIGTERM: graceful, SIGINT/SIGQUIT: quick).

    `app_factory` and `on_worker_start` run in the worker process, after the fork; `on_worker_exit` runs
    there too, once the worker stopped serving. A worker that fails to boot stops the whole server.
    """
    options = server_options(
        bind, port, threads, on_worker_start, on_worker_exit, graceful_timeout, access_log
    )
    log.info("serving agent API bind=%s threads=%s graceful_timeout=%s", options["bind"][0], threads,
             graceful_timeout)
    AgentServer(app_factory, options).run()
