"""Lifecycle hooks that run in the memgraph container (standard library only)."""
