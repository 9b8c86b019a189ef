"""sim/kube package."""
