"""`python -m ctl.standalone` / `memgraph-ha-coordinator`: the coordinator run from outside the pods.

Role: the same coordinator the elected agent runs, started from a kubeconfig (or the in-cluster config of
its own pod: this is what the Dockerfile's `coordinator` target runs). It joins the SAME Lease election
as one more candidate with its own identity (default `standalone-<hostname>`), so it leads only when no
agent holds the Lease -- a cluster without agents, or all agents gone -- and can never act beside a
leading agent. It reaches Memgraph at the pod IPs. Settings come from flags or from the agent's
environment variables (coordinator.edge.settings: same names, same validation, exit code 2 naming a bad
value). Logging as the agent does (logfmt or JSON on stdout, secrets redacted). SIGTERM/SIGINT stop the
coordinator and release the Lease.

`Standalone` is also what `memgraph-ha rollout restart` uses to run one switchover under the Lease
when the pods have no agent (ctl.rollout: it leads until the cluster is healthy again, then releases).

Must never: run the coordinator while not leading (the elector decides, the executor re-checks the
lease before every mutation), take the Lease from a live holder, or log a credential.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from kubernetes import client as kclient

from coordinator.core.outcomes import SwitchoverOutcome
from coordinator.edge.logs import add_secret, log_event, setup_logging
from coordinator.edge.settings import ConfigError, Settings, load_settings
from coordinator.runtime.procedures import SwitchoverResult
from coordinator.runtime.reconciler import Coordinator
from coordinator.runtime.term import Term, TermRunner
from coordinator.runtime.wiring import MemgraphPool, api_client_for, elector_for, start_coordinator

log = logging.getLogger("ctl.standalone")  # also when run as __main__
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# flag -> environment variable of coordinator.edge.settings (the flag wins over the environment)
FLAGS: dict[str, str] = {
    "kubeconfig": "KUBECONFIG",
    "statefulset": "HA_STATEFULSET",
    "selector": "HA_POD_SELECTOR",
    "headless_service": "HA_HEADLESS_SERVICE",
    "lease": "HA_LEASE_NAME",
    "bolt_port": "MEMGRAPH_BOLT_PORT",
    "replication_port": "MEMGRAPH_REPLICATION_PORT",
    "memgraph_user": "MEMGRAPH_USER",
    "sync_mode": "HA_SYNC_MODE",
    "log_format": "HA_LOG_FORMAT",
    "log_level": "HA_LOG_LEVEL",
}


def default_identity() -> str:
    return f"standalone-{socket.gethostname()}"


def default_namespace(env: Mapping[str, str]) -> str:
    for key in ("HA_NAMESPACE", "POD_NAMESPACE"):
        if env.get(key):
            return env[key]
    try:
        return SA_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


def settings_from(env: Mapping[str, str], overrides: Mapping[str, str | None], identity: str) -> Settings:
    """Settings for a coordinator that is not in a pod (POD_NAME = the election identity).

    Raises coordinator.edge.settings.ConfigError naming every missing or invalid variable.
    """
    merged = {k: v for k, v in env.items()}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    merged["POD_NAME"] = identity
    merged.setdefault("POD_UID", "standalone")
    merged["POD_IP"] = merged.get("POD_IP") or "127.0.0.1"  # not used: nothing serves on it
    merged["POD_NAMESPACE"] = merged.get("POD_NAMESPACE") or default_namespace(merged)
    return load_settings(merged)


class Standalone:
    """One election candidate that runs the coordinator while it leads."""

    def __init__(self, settings: Settings, api: kclient.ApiClient | None = None) -> None:
        self.s = settings
        self.identity = settings.identity.pod_name
        self.api = api or api_client_for(settings, f"memgraph-ha-coordinator/{self.identity}")
        self.api.user_agent = f"memgraph-ha-coordinator/{self.identity}"
        self.pool = MemgraphPool(settings)
        self.terms: TermRunner[Coordinator] = TermRunner(self._build_term)
        self.elector, self.store = elector_for(
            settings, self.api, self.identity, self.terms.started, self.terms.stopped,
            lambda who: log_event(log, "leader changed", leader=who or "-"),
        )

    @property
    def coordinator(self) -> Coordinator | None:
        return self.terms.coordinator

    def _build_term(self) -> Term[Coordinator]:
        return start_coordinator(
            self.identity, self.s, self.api, self.pool, self.elector, component="memgraph-ha-coordinator"
        )

    def start(self) -> Standalone:
        log_event(log, "standalone coordinator joining the election", identity=self.identity,
                  lease=f"{self.s.identity.namespace}/{self.s.election.lease_name}")
        self.elector.start()
        return self

    def wait_leading(self, timeout_s: float) -> bool:
        """Wait (bounded) until this candidate leads and its coordinator is built."""
        return self.terms.leading.wait(timeout_s) and self.coordinator is not None

    def holder(self) -> str:
        return self.elector.leader_identity()

    def switchover(self, from_pod: str | None, to: str | None, budget_s: float) -> SwitchoverResult:
        coord = self.coordinator
        if coord is None or not self.elector.is_leader():
            failed = SwitchoverOutcome.FAILED
            return SwitchoverResult(failed, from_pod or "", None, 0.0, "not leading the Lease")
        return coord.switchover(from_pod, to, budget_s)

    def stop(self, release: bool = True) -> None:
        self.terms.close()
        self.elector.stop(release=release, timeout_s=5.0)
        self.pool.close()
        self.store.close()
        log_event(log, "standalone coordinator stopped", identity=self.identity,
                  lease="released" if release else "left to expire")

    def __enter__(self) -> Standalone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="memgraph-ha-coordinator",
        description="Run the memgraph-ha coordinator outside the pods, as one more candidate of the "
        "agents' Lease election. Every flag falls back to the agent's environment variable.",
    )
    ap.add_argument("--kubeconfig", help="kubeconfig file (env KUBECONFIG; default: in-cluster config)")
    ap.add_argument("--namespace", "-n", help="namespace (env HA_NAMESPACE / POD_NAMESPACE; default: own)")
    ap.add_argument("--statefulset", help="the Memgraph StatefulSet (env HA_STATEFULSET)")
    ap.add_argument("--selector", help="label selector of its pods (env HA_POD_SELECTOR)")
    ap.add_argument("--headless-service",
                    help="headless governing service for replica addresses (env HA_HEADLESS_SERVICE; "
                    "default: pod IPs)")
    ap.add_argument("--lease", help="Lease name (env HA_LEASE_NAME; default <statefulset>-ha)")
    ap.add_argument("--identity", help="election identity (env HA_IDENTITY; default standalone-<hostname>)")
    ap.add_argument("--bolt-port", help="Memgraph Bolt port at the pod IPs (env MEMGRAPH_BOLT_PORT)")
    ap.add_argument("--replication-port", help="replica port (env MEMGRAPH_REPLICATION_PORT)")
    ap.add_argument("--memgraph-user", help="Memgraph user (env MEMGRAPH_USER; password: MEMGRAPH_PASSWORD)")
    ap.add_argument("--sync-mode", help="STRICT_SYNC, SYNC or ASYNC (env HA_SYNC_MODE)")
    ap.add_argument("--log-format", help="logfmt or json (env HA_LOG_FORMAT)")
    ap.add_argument("--log-level", help="DEBUG, INFO, ... (env HA_LOG_LEVEL)")
    return ap


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environ = dict(os.environ if env is None else env)
    overrides: dict[str, str | None] = {var: getattr(args, flag) for flag, var in FLAGS.items()}
    if args.namespace:
        overrides["POD_NAMESPACE"] = args.namespace
    identity = args.identity or environ.get("HA_IDENTITY") or default_identity()
    try:
        settings = settings_from(environ, overrides, identity)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log.format, settings.log.level)
    add_secret(settings.memgraph.password)
    add_secret(settings.api.token)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    log.info("standalone coordinator starting: %r", settings)
    standalone = Standalone(settings).start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        standalone.stop(release=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
