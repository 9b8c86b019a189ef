"""Command line of the Memgraph emulator: `python -m sim.memgraph --host H --bolt-port P ...`.

Role: parse flags (bad flags -> argparse error, exit 2), start one Instance and its admin server, print
`READY bolt=<port> admin=<port>` on stdout once both listen, and shut down cleanly on SIGTERM/SIGINT
(durable state stays in --data-directory). Flags mirror Memgraph's where they exist, with the defaults of the
Docker image's packaged config (`config/flags.yaml`; reference memgraph-replication 4.4):
`--replication-restore-state-on-startup` true, `--data-recovery-on-startup` true,
`--replication-replica-check-frequency-sec` 1, `--bolt-num-workers` the number of cores,
`--storage-snapshot-interval-sec` 300, `--storage-snapshot-on-exit` true,
`--storage-snapshot-retention-count` 3, `--storage-wal-file-flush-every-n-tx` 100000. Flags named
`--sim-...` are the emulator's own (Memgraph's compile-time timeouts, `timings.py`; the replication
server's bind address, which Memgraph fixes at 0.0.0.0).

Must never: print anything else on stdout before READY (parents parse that line), or log a password.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sim.memgraph.admin import AdminServer
from sim.memgraph.instance import Instance, Settings
from sim.memgraph.timings import MemgraphTimings


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
    # Memgraph's flag is --data-directory; --data-dir is the emulator's older name, kept as an alias
    p.add_argument("--data-directory", "--data-dir", dest="data_dir", type=Path, required=True)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--hosts-file", type=Path)
    p.add_argument("--admin-port", type=_port, default=0)
    p.add_argument("--replication-restore-state-on-startup", type=_bool, default=True)
    p.add_argument("--data-recovery-on-startup", type=_bool, default=True)
    p.add_argument("--bolt-num-workers", type=_positive_int, default=os.cpu_count() or 1)
    p.add_argument("--storage-snapshot-interval-sec", type=float, default=300.0)
    p.add_argument("--storage-snapshot-on-exit", type=_bool, default=True)
    p.add_argument("--storage-snapshot-retention-count", type=_positive_int, default=3)
    p.add_argument("--storage-wal-file-flush-every-n-tx", type=_positive_int, default=100000)
    p.add_argument("--sim-replication-bind-address", default="0.0.0.0",
                   help="address the replication server binds (Memgraph: always 0.0.0.0)")
    p.add_argument("--sim-audit-file", type=Path,
                   help="append one JSON line per replication command run (sim.memgraph.audit)")
    MemgraphTimings.add_flags(p)
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
                        recover_data=args.data_recovery_on_startup,
                        replication_bind=args.sim_replication_bind_address,
                        bolt_workers=args.bolt_num_workers,
                        snapshot_interval_s=args.storage_snapshot_interval_sec,
                        snapshot_on_exit=args.storage_snapshot_on_exit,
                        snapshot_retention=args.storage_snapshot_retention_count,
                        wal_flush_every_n=args.storage_wal_file_flush_every_n_tx,
                        timings=MemgraphTimings.from_flags(args), audit_file=args.sim_audit_file)
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
