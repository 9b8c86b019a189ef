"""The coordinator library: runtime > edge > ports > core (import-linter `layers`, `.importlinter`).

Used by the agent (`agent/`) and by the operator face (`ctl/`); it never imports either of them.
"""
