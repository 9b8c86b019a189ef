"""A daemon thread that calls one method every period until stopped: the loop of the bed's controllers.

Role: the shared loop of `sim.endpoints.EndpointsController` and `sim.dns.ClusterDNS`: `start()`,
`stop()` (joined, bounded), and `poll_once()` every `poll_s`, where an exception is logged and the
loop goes on (a controller must outlive one bad round).

Must never: let an exception end the loop, or stop without a bound.
"""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger(__name__)


class Poller:
    """Subclasses implement `poll_once()`; `poll_s` and `poll_name` are set by their constructor."""

    poll_s: float = 0.05
    poll_name: str = "poller"

    def poll_once(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._poll_stop = threading.Event()
        self._poll_thread = threading.Thread(target=self._poll_loop, name=self.poll_name, daemon=True)
        self._poll_thread.start()
        return self

    def stop(self) -> None:
        if hasattr(self, "_poll_thread"):
            self._poll_stop.set()
            self._poll_thread.join(timeout=5)

    def _poll_loop(self) -> None:
        while not self._poll_stop.wait(self.poll_s):
            try:
                self.poll_once()
            except Exception as exc:  # the loop outlives a bad round
                log.warning("event=poll_failed poller=%s error=%s detail=%s", self.poll_name,
                            type(exc).__name__, exc)
