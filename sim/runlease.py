"""The identity of one run of the emulated cluster, and the lock files that prove its owner is alive.

Role: give every run (one `SimCluster`, its processes and its network objects) a short random id that
every name the run makes carries (`mgh<id>...`, namespaces `mgh-<id>-...`), and hold two kinds of
`flock` for the run's whole life, in `RUN_DIR` (tmpfs, gone at reboot with the namespaces themselves):

- `run-<id>.lock`: the run is alive while this lock is held. The reaper (`sim.reaper`) inherits the
  descriptor, so the lock outlives a run killed by SIGKILL until the reaper has cleaned up after it.
  Another run may sweep the objects of `<id>` only when it can take this lock itself (or the file is
  gone): that is the test "owning process gone", immune to PID reuse.
- `subnet-<k>.lock` (network namespaces only): the run owns the k-th /24 of 198.18.0.0/15 (the range
  reserved for network benchmarks, RFC 2544) for its bridge, pods and Service addresses. A random start
  plus the lock, never a random pick alone, so two runs at once never share a subnet.

Must never: hand out a subnet outside 198.18.0.0/15, or report a run dead while its lock is held.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import random
import string
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "mgh"  # every name the bed makes starts with this, then the run id
RUN_DIR = Path("/run/mgha-sim")
BENCH_RANGE = ipaddress.ip_network("198.18.0.0/15")
SUBNETS = 512  # /24s in 198.18.0.0/15
ID_LEN = 5
_ALPHABET = string.ascii_lowercase + string.digits


class SubnetsExhausted(RuntimeError):
    """Every /24 of 198.18.0.0/15 is held by a live run."""


def subnet(index: int) -> ipaddress.IPv4Network:
    """The `index`-th /24 of 198.18.0.0/15."""
    if not 0 <= index < SUBNETS:
        raise ValueError(f"subnet index {index} outside 0..{SUBNETS - 1}")
    base = int(BENCH_RANGE.network_address) + index * 256
    return ipaddress.IPv4Network((base, 24))


def in_bench_range(host: str) -> bool:
    try:
        return ipaddress.ip_address(host) in BENCH_RANGE
    except ValueError:
        return False


def _try_lock(path: Path) -> int | None:
    """Open `path` (created if missing) and take an exclusive flock without waiting; None if held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


@dataclass
class RunLease:
    """A live run: its id, its lock descriptors and (with namespaces) its subnet."""

    run_id: str
    run_fd: int
    subnet_index: int | None = None
    subnet_fd: int | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def fds(self) -> tuple[int, ...]:
        """The descriptors a helper process must inherit to keep the run's locks held."""
        return tuple(fd for fd in (self.run_fd, self.subnet_fd) if fd is not None)

    @property
    def network(self) -> ipaddress.IPv4Network:
        if self.subnet_index is None:
            raise RuntimeError("this run holds no subnet (loopback mode)")
        return subnet(self.subnet_index)

    def take_subnet(self, in_use: set[ipaddress.IPv4Network], rng: random.Random | None = None) -> None:
        """Lock a free /24: random start, then in order; skip subnets with an address already on this
        host (`in_use`, e.g. an unswept bridge). Raises SubnetsExhausted."""
        rng = rng or random.Random()
        start = rng.randrange(SUBNETS)
        for step in range(SUBNETS):
            index = (start + step) % SUBNETS
            if any(subnet(index).overlaps(net) for net in in_use):
                continue
            fd = _try_lock(RUN_DIR / f"subnet-{index}.lock")
            if fd is None:
                continue
            self.subnet_index, self.subnet_fd = index, fd
            log.info("event=subnet_taken run=%s subnet=%s", self.run_id, subnet(index))
            return
        raise SubnetsExhausted("all 512 /24 subnets of 198.18.0.0/15 are held by live runs")

    def close(self) -> None:
        """Release the locks (after every object of the run is gone); the run file is removed first."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            run_lock_path(self.run_id).unlink()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def run_lock_path(run_id: str) -> Path:
    return RUN_DIR / f"run-{run_id}.lock"


def new_run(rng: random.Random | None = None) -> RunLease:
    """A fresh run id with its run lock held (ids are drawn until one is unused)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    rng = rng or random.SystemRandom()
    for _ in range(100):
        run_id = "".join(rng.choice(_ALPHABET) for _ in range(ID_LEN))
        path = run_lock_path(run_id)
        if path.exists():
            continue
        fd = _try_lock(path)
        if fd is None:
            continue
        os.write(fd, f"{os.getpid()}\n".encode())
        return RunLease(run_id, fd)
    raise RuntimeError("could not draw an unused run id in 100 tries")


def run_alive(run_id: str) -> bool:
    """True while some process holds `run-<id>.lock`. A missing file means the run is over."""
    path = run_lock_path(run_id)
    if not path.exists():
        return False
    try:
        fd = _try_lock(path)
    except OSError as exc:
        log.warning("event=run_lock_unreadable run=%s error=%s", run_id, exc)
        return True  # cannot tell: never sweep what may be alive
    if fd is None:
        return True
    os.close(fd)
    return False


def known_runs() -> list[str]:
    """Run ids that have a lock file (alive or not)."""
    if not RUN_DIR.is_dir():
        return []
    return sorted(p.name[4:-5] for p in RUN_DIR.glob("run-*.lock"))


def run_id_of(name: str) -> str | None:
    """The run id inside a name the bed made (`mgh<id>...` or `mgh-<id>-...`); None for other names."""
    if not name.startswith(PREFIX):
        return None
    rest = name[len(PREFIX):].lstrip("-")
    candidate = rest[:ID_LEN]
    if len(candidate) == ID_LEN and all(c in _ALPHABET for c in candidate):
        return candidate
    return None
