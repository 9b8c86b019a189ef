"""A periodic loop on a daemon thread, for the emulated cluster's controllers.

Role: run `step()` every `period_s` until `stop()`, logging (never raising) what one step threw, as the
StatefulSet controller, the node lifecycle controller and the kubelets need.

Must never: let one failing step end the loop, or block `stop()` longer than its bound.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Loop:
    def __init__(self, name: str, step: Callable[[], None], period_s: float = 0.1) -> None:
        self.name, self.step, self.period_s = name, step, period_s
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self.stopping.wait(self.period_s):
            try:
                self.step()
            except Exception as exc:  # the loop goes on whatever one step did
                log.warning("%s: %s: %s", self.name, type(exc).__name__, exc)
