"""`python -m sim.kube`: run the Kubernetes API emulator as a process.

Role: parse the command line, start a `KubeEmulator` (API port and admin port), optionally write a
kubeconfig, print one line `READY port=<p> admin=<a>` once both ports listen, and stop cleanly on
SIGTERM or SIGINT.

Must never: bind outside 127.0.0.0/8, print the token, or keep running after SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from sim.kube.server import KubeEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sim.kube", description="Kubernetes API emulator (subset)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=0, help="API port (0 = any free port)")
    p.add_argument("--admin-port", type=int, default=0, help="admin (fault control) port (0 = any free port)")
    p.add_argument("--token", default=None, help="the admin token (system:masters); random when not given")
    p.add_argument("--kubeconfig-out", default=None, help="write a kubeconfig for the emulator here")
    p.add_argument("--history-size", type=int, default=1000, help="watch history kept (older RVs get 410)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r",
    )
    try:
        emu = KubeEmulator(
            host=args.host,
            port=args.port,
            token=args.token,
            admin_port=args.admin_port,
            history_size=args.history_size,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emu.start()
    try:
        if args.kubeconfig_out:
            emu.write_kubeconfig(args.kubeconfig_out)
        print(f"READY port={emu.port} admin={emu.admin_port}", flush=True)
        while not done.wait(1.0):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
