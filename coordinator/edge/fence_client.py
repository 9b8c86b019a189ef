"""The leader's side of fencing: ask the old MAIN's agent to kill its Memgraph and confirm (issue 16 item 5).

Role: one bounded HTTP call, `POST /api/v1/fence` on the old MAIN's agent (docs/openapi.yaml) with the
agents' fence token (HA_FENCE_TOKEN, which the chart generates; else the operator token HA_API_TOKEN) as
a bearer token, naming the pod, its UID and the record
generation in which it is MAIN. The answer is sorted for the executor:
- 200: fenced (the detail is returned);
- `FenceUnconfirmable`: nothing of the pod answered (connect or read failure), or its agent cannot fence
  (no token here, 401/403, 501 fence-unavailable). The planner then fails over with the fence unconfirmed;
- `FenceRefused`: the agent answered and said no (409: its Memgraph is the record's MAIN and healthy,
  another incarnation or generation; 503: the kill was not confirmed). No promotion; the next cycle asks
  again.

Must never: call without a timeout, wait longer than FENCE_TIMEOUT_S, retry by itself (the planner asks
again in a later cycle), or log the token.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from coordinator.core.model import FENCE_CONNECT_S, FENCE_READ_S, PodView
from coordinator.edge.logs import log_event

log = logging.getLogger(__name__)

# connect; read: the agent's fresh local role query and the kill's confirmation, each bounded on its side
# (coordinator.core.model FENCE_*): a pod of which nothing answers delays its failover by at most this
FENCE_TIMEOUT_S = (FENCE_CONNECT_S, FENCE_READ_S)
UNCONFIRMABLE_STATUSES = frozenset({401, 403, 501})


class FenceRefused(RuntimeError):
    """The old MAIN's agent answered and did not fence: no promotion this cycle."""


class FenceUnconfirmable(RuntimeError):
    """Nothing of the old MAIN's pod answered, or its agent cannot fence: the failover may go ahead."""


class AgentFencer:
    """`coordinator.ports.FencePort` over the agents' HTTP API."""

    def __init__(self, port: int, token: str | None, timeout: Any = FENCE_TIMEOUT_S) -> None:
        self.port, self.token, self.timeout = port, token, timeout

    def fence(self, pod: PodView, generation: int) -> str:
        if not self.token:
            raise FenceUnconfirmable("no fence token configured (HA_FENCE_TOKEN, HA_API_TOKEN): "
                                     "agents cannot fence")
        url = f"http://{pod.ip}:{self.port}/api/v1/fence"
        body = {"pod": pod.name, "uid": pod.uid, "generation": generation}
        try:
            resp = requests.post(url, json=body, timeout=self.timeout,
                                 headers={"Authorization": f"Bearer {self.token}"})
        except requests.RequestException as exc:
            raise FenceUnconfirmable(f"agent of {pod.name} did not answer ({type(exc).__name__})") from exc
        try:
            doc = resp.json()
        except ValueError:
            doc = {}
        detail = str(doc.get("detail", "")) if isinstance(doc, dict) else ""
        log_event(log, "fence answered", pod=pod.name, status=resp.status_code, detail=detail)
        if resp.status_code == 200:
            return detail or "fenced"
        error = str(doc.get("error", "")) if isinstance(doc, dict) else ""
        what = f"agent of {pod.name} answered {resp.status_code} {error}: {detail}".strip()
        if resp.status_code in UNCONFIRMABLE_STATUSES:
            raise FenceUnconfirmable(what)
        raise FenceRefused(what)
