"""Contract tests of the Kubernetes API emulator (sim/kube) with the real kubernetes client."""
