"""I/O edge: Memgraph over Bolt, the Kubernetes API, the Lease elector, settings, logging, the executor.

Each module talks to one outside thing and implements a port (`coordinator.ports`); none of them
decides what the cluster should look like (that is `coordinator.core`).
"""
