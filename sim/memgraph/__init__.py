"""sim/memgraph package."""
