"""Command line of the Memgraph emulator: `python -m sim.memgraph --host H --bolt-port P ...`.

Role: parse flags (bad flags -> argparse error, exit 2), start one Instance and its admin server, print
`READY bolt=<port> admin=<port>` on stdout once both listen, and shut down cleanly on SIGTERM/SIGINT
(durable state stays in --data-dir). Flags mirror Memgraph's where they exist
(`--replication-restore-state-on-startup`, default true since v2.17; `--replica-check-frequency-sec`,
default 1 s; reference memgraph-replication 4.4).

Must never: print anything else on stdout before READY (parents parse that line), or log a password.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sim.memgraph.admin import AdminServer
from sim.memgraph.instance import Instance, Settings


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.memgraph", description="Memgraph 3.12 emulator")
    p.add_argument("--host", required=True)
    p.add_argument("--bolt-port", type=_port, required=True)
    p.add_argument("--replication-port", type=_port, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--hosts-file", type=Path)
    p.add_argument("--admin-port", type=_port, default=0)
    p.add_argument("--replication-restore-state-on-startup", type=_bool, default=True)
    p.add_argument("--replica-check-frequency-sec", type=float, default=1.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.password and not args.user:
        build_parser().error("--password needs --user")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings(host=args.host, bolt_port=args.bolt_port, replication_port=args.replication_port,
                        data_dir=args.data_dir, user=args.user, password=args.password,
                        hosts_file=args.hosts_file, admin_port=args.admin_port,
                        restore=args.replication_restore_state_on_startup,
                        check_s=args.replica_check_frequency_sec)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    instance = Instance(settings)
    instance.start()
    admin = AdminServer(args.host, args.admin_port, instance)
    admin.start()
    print(f"READY bolt={instance.bolt_port} admin={admin.port}", flush=True)
    while not stop.wait(0.5):
        pass
    admin.stop()
    instance.stop()
    logging.getLogger(__name__).info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
