"""Every default of the product, named once.

Role: the one definition of each default value -- the Lease timings (client-go's 15/10/2 s), the
coordinator's pace and failover delay, the ports, the preStop budget and drain, logging -- read by the
settings loader, the elector's own defaults, the planner's default Policy, the operator face, the
emulated cluster's bench and the tests. The chart (`charts/memgraph/values.yaml`) and the preStop hook
(`hooks/prestop.py`, standard library only) cannot import this module; `tests/unit/test_defaults.py`
checks that their copies agree with it.

Must never: hold anything but constants (and the one derived name below), or do I/O.
"""

from __future__ import annotations

# The Lease election (client-go's defaults; reference kubernetes-and-helm B.3).
LEASE_DURATION_S = 15.0
RENEW_DEADLINE_S = 10.0
RETRY_PERIOD_S = 2.0

# The coordinator.
RECONCILE_INTERVAL_S = 2.0
FAILOVER_AFTER_S = 5.0
SYNC_MODE = "STRICT_SYNC"  # as HA_SYNC_MODE and the chart spell it (ReplicaMode.keyword)
ALLOW_ASYNC_FAILOVER = False
RESEED = "auto"  # haAgent.divergence.reseed / HA_RESEED: auto | manual (ReseedPolicy)

# Memgraph.
MEMGRAPH_HOST = "127.0.0.1"  # the local Memgraph, in the same pod
BOLT_PORT = 7687
REPLICATION_PORT = 10000

# The data volume (the re-seed init container, agent.reseed).
DATA_DIR = "/var/lib/memgraph/mg_data"  # Memgraph's --data-directory; the volume is mounted one level up
ARCHIVE_DIR = "/var/lib/memgraph/diverged"  # archives of diverged data: same volume, outside mg_data
RESEED_RESERVE_BYTES = 0  # free space to keep beyond the fresh copy's size when re-seeding

# Pod termination.
PRESTOP_BUDGET_S = 600.0  # the agent's hand-over budget; also the hook's PRESTOP_TIMEOUT_SECONDS default
DRAIN_S = 5.0
# A terminating MAIN's preStop ends early once no hand-over has been possible for this long without a
# break (issue 16 item 8): the pod restarts and the MAIN is back in seconds instead of the full budget.
PRESTOP_NO_TARGET_S = 20.0
LOG_DIR = "/var/log/memgraph"

# The agent's HTTP API and logs.
AGENT_BIND = "0.0.0.0"
AGENT_PORT = 8080
LOG_FORMAT = "logfmt"
LOG_LEVEL = "INFO"
STATUS_AUTH = "open"  # HA_STATUS_AUTH: the status and local routes need no token


def lease_name(statefulset: str) -> str:
    """The Lease of a StatefulSet's election when HA_LEASE_NAME is not set: `<statefulset>-ha`."""
    return f"{statefulset}-ha"
