"""Reading back what each Memgraph instance holds at the end of a run (the evidence for I3 and I4).

Role: `read_ids` asks one instance for every id of a label, bounded (a hung instance cannot hang the
caller: the call runs on a helper thread and is abandoned after its bound); `collect_final_ids` reads
every instance until each holds the expected ids or a bounded catch-up time passes.

Must never: wait without a bound, write, or log a password.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sim.bolt_client import Address, check_label, close_quietly, driver

log = logging.getLogger(__name__)
T = TypeVar("T")


class CallTimeout(Exception):
    """A driver call did not finish within its bound; the call was abandoned."""


def _bounded(fn: Callable[[], T], timeout_s: float, name: str) -> T:
    """Run `fn` on a daemon thread and wait at most `timeout_s` (for readers of final data only)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    th = threading.Thread(target=run, name=name, daemon=True)
    th.start()
    th.join(timeout_s)
    if th.is_alive():
        raise CallTimeout(f"{name} did not finish within {timeout_s:.1f}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]




def read_ids(
    host: str,
    port: int,
    label: str = "W",
    user: str = "",
    password: str = "",
    timeout_s: float = 5.0,
) -> set[str]:
    """The ids of every `(:label)` node on one instance (`MATCH (n:label) RETURN n.id`), bounded.

    Raises the driver's error, or CallTimeout, when the instance does not answer.
    """
    query = f"MATCH (n:{check_label(label)}) RETURN n.id AS id"
    drv = driver(host, port, user, password, min(timeout_s, 2.0))

    def run() -> set[str]:
        with drv.session() as session:
            return {str(r["id"]) for r in session.run(query) if r["id"] is not None}

    try:
        return _bounded(run, timeout_s, f"read-{host}:{port}")
    finally:
        close_quietly(drv)


def collect_final_ids(
    instances: dict[str, Address],
    expected: set[str],
    label: str = "W",
    user: str = "",
    password: str = "",
    catch_up_s: float = 10.0,
    poll_s: float = 0.2,
) -> dict[str, set[str]]:
    """Read every instance until each holds all `expected` ids or `catch_up_s` passes (bounded catch-up).

    Returns the last ids read per pod; an instance that cannot be read maps to an empty set (logged).
    """
    deadline = time.monotonic() + catch_up_s
    result: dict[str, set[str]] = {}
    pending = dict(instances)
    while True:
        for pod, (host, port) in list(pending.items()):
            try:
                bound = min(5.0, catch_up_s + 1.0)
                result[pod] = read_ids(host, port, label, user, password, timeout_s=bound)
            except Exception as exc:
                log.info("event=read_ids_failed pod=%s error=%s detail=%s", pod, type(exc).__name__, exc)
                result.setdefault(pod, set())
                continue
            if expected <= result[pod]:
                del pending[pod]
        if not pending or time.monotonic() >= deadline:
            return result
        time.sleep(poll_s)
