"""Runtime: the reconcile loop, the switchover procedure, the leadership-term runner and their wiring."""
