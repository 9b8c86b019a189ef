"""The operator face: the `memgraph-ha` CLI, the standalone coordinator and the rolling restart.

Top layer: it may import the coordinator library (and the agent, though it needs none of it); nothing in
the product imports it.
"""
