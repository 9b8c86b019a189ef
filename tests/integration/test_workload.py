"""The writer (sim.workload) with the real neo4j driver against the Memgraph emulator (sim.memgraph).

Each test starts its own emulator process(es) on a loopback address with an ephemeral port and kills
them on teardown, also on failure.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import GraphDatabase

from sim.check import Bounds, Sampler, check
from sim.timeline import ERROR, UNKNOWN, FailoverMark, FinalData, PodRole, Timeline, write_pauses
from sim.workload import Writer, collect_final_ids, read_ids
from tests.support.wait import poll

control = pytest.importorskip("sim.memgraph.control", reason="Memgraph emulator missing")

HOST_A = "127.0.0.1"
HOST_B = "127.0.0.2"


class Instance:
    """An emulator process and the loopback address it was started on."""

    def __init__(self, host: str, proc: Any) -> None:
        self.host, self.proc = host, proc

    @property
    def bolt_port(self) -> int:
        return int(self.proc.bolt_port)

    def kill(self) -> None:
        self.proc.kill()

    def restart(self) -> None:
        self.proc.restart()


class Route:
    """What the client Service routes to right now (kube-proxy), switched by the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: Any = None

    def set(self, mg: Any) -> None:
        with self._lock:
            self._target = mg

    def __call__(self) -> tuple[str, int] | None:
        with self._lock:
            mg = self._target
        return None if mg is None else (mg.host, mg.bolt_port)


@pytest.fixture
def memgraphs(tmp_path: Path) -> Iterator[Any]:
    started: list[Any] = []

    def start(host: str) -> Instance:
        mg = control.MemgraphProcess(tmp_path / f"data-{len(started)}", host, bolt_port=0)
        started.append(mg)
        mg.start()
        return Instance(host, mg)

    try:
        yield start
    finally:
        for mg in started:
            try:
                mg.kill()
            except Exception as exc:  # teardown goes on for the others
                print(f"teardown: kill failed: {exc!r}")


@pytest.fixture
def writers() -> Iterator[list[Writer]]:
    made: list[Writer] = []
    try:
        yield made
    finally:
        for w in made:
            w.stop(5.0)


def writing_to(memgraphs: Any, writers: list[Writer], acks: int, **kw: Any) -> tuple[Instance, Writer]:
    """One instance behind the route and a started writer that got `acks` acknowledgements."""
    mg = memgraphs(HOST_A)
    route = Route()
    route.set(mg)
    w = Writer(route, label="W", **{"rate_hz": 50.0, **kw})
    writers.append(w)
    w.start()
    assert w.wait_acks(acks, timeout_s=20.0), w.attempts[-3:]
    return mg, w


def test_every_acked_write_is_readable_and_nothing_unattempted_appears(memgraphs, writers):
    mg, w = writing_to(memgraphs, writers, 60, rate_hz=100.0)
    w.stop()
    acked = w.acked_ids()
    on_instance = read_ids(mg.host, mg.bolt_port, "W")
    assert acked <= on_instance
    assert on_instance <= {a.id for a in w.attempts}
    assert all(a.address == f"{mg.host}:{mg.bolt_port}" for a in w.attempts)
    assert not w.write_pauses(threshold_s=1.0)


def test_switching_the_service_to_a_second_instance_measures_one_write_pause(memgraphs, writers):
    old, new = memgraphs(HOST_A), memgraphs(HOST_B)
    route = Route()
    route.set(old)
    w = Writer(route, label="W", rate_hz=50.0)
    writers.append(w)
    w.start()
    assert w.wait_acks(20, timeout_s=20.0)
    route.set(None)  # the role label is removed from the old MAIN: the Service has no endpoint
    time.sleep(0.6)
    route.set(new)
    n = len(w.acked_ids())
    assert w.wait_acks(n + 20, timeout_s=20.0)
    w.stop()
    (pause,) = w.write_pauses(threshold_s=0.4)
    assert pause.before == f"{old.host}:{old.bolt_port}" and pause.after == f"{new.host}:{new.bolt_port}"
    assert 0.6 <= pause.duration < 5.0
    assert any(a.error_class == "NoEndpoint" for a in w.attempts)
    both = {"old": (old.host, old.bolt_port), "new": (new.host, new.bolt_port)}
    final = collect_final_ids(both, set(), "W")
    acked_on = {a.id: a.address.startswith(old.host + ":") for a in w.attempts if a.acked}
    assert {i for i, on_old in acked_on.items() if on_old} <= final["old"]
    assert {i for i, on_old in acked_on.items() if not on_old} <= final["new"]
    assert write_pauses(w.attempts, 0.4) == [pause]


def test_killed_instance_gives_an_error_window_and_the_writer_keeps_going(memgraphs, writers):
    mg, w = writing_to(memgraphs, writers, 20, connect_timeout=0.5)
    mg.kill()
    assert poll(lambda: sum(not a.acked for a in w.attempts) >= 5, 10.0)
    mg.restart()
    n = len(w.acked_ids())
    assert w.wait_acks(n + 10, timeout_s=20.0), w.attempts[-3:]
    w.stop()
    windows = w.error_windows()
    assert len(windows) == 1 and windows[0].end is not None and windows[0].errors >= 5
    assert windows[0].addresses == (f"{mg.host}:{mg.bolt_port}",)
    failed = [a for a in w.attempts if not a.acked]
    # the pooled connection died with the server: the write on it may have gone out (unknown); the
    # connects refused afterwards are definite failures
    assert {a.outcome for a in failed} <= {ERROR, UNKNOWN} and ERROR in {a.outcome for a in failed}
    (pause,) = w.write_pauses(threshold_s=0.1)  # 5+ failed attempts at 50 Hz take >= 0.1 s
    assert pause.start <= windows[0].start and pause.end == windows[0].end


def test_a_hung_server_is_waited_for_and_its_late_acknowledgement_recorded(memgraphs, writers):
    mg, w = writing_to(memgraphs, writers, 10)
    try:
        mg.proc.pause()  # a hung server: TCP still accepts, nothing answers
        time.sleep(1.5)
        frozen_at = len(w.attempts)
    finally:
        mg.proc.resume()
    n = len(w.acked_ids())
    assert w.wait_acks(n + 10, timeout_s=20.0), w.attempts[-3:]
    w.stop()
    assert all(a.acked for a in w.attempts), {a.error_class for a in w.attempts if not a.acked}
    slow = [a for a in w.attempts[frozen_at - 1: frozen_at + 1] if a.t_end - a.t_start >= 1.0]
    assert slow, "the write in flight during the freeze was acknowledged late, not given up"
    assert w.acked_ids() <= read_ids(mg.host, mg.bolt_port, "W")


def test_a_hung_call_does_not_stop_the_writing_new_writes_take_a_new_connection(memgraphs, writers):
    old, new = memgraphs(HOST_A), memgraphs(HOST_B)
    route = Route()
    route.set(old)
    w = Writer(route, label="W", rate_hz=50.0, hung_after_s=0.3)
    writers.append(w)
    w.start()
    assert w.wait_acks(10, timeout_s=20.0)
    try:
        old.proc.pause()  # the pooled connection goes silent, as to a frozen node
        time.sleep(1.0)  # writes go out on it (and on new connections to it) and hang
        route.set(new)  # kube-proxy now sends NEW connections to the other instance
        n = len(w.acked_ids())
        assert w.wait_acks(n + 20, timeout_s=20.0), w.attempts[-3:]
        in_flight_on_old = [ln for ln in w.lanes_now() if ln.inflight is not None
                            and ln.inflight[3].startswith(HOST_A + ":")]
        assert in_flight_on_old, "the call on the silent connection is still waited for"
    finally:
        old.proc.resume()
    assert poll(lambda: not any(ln.inflight is not None and ln.inflight[3].startswith(HOST_A + ":")
                                for ln in w.lanes_now()), 10.0)
    w.stop()
    new_addr = f"{new.host}:{new.bolt_port}"
    assert sum(a.acked and a.address == new_addr for a in w.attempts) >= 20
    ids = [a.id for a in w.attempts]
    assert len(ids) == len(set(ids)), "every attempt recorded once, the late answers included"
    late = [a for a in w.attempts if a.address.startswith(HOST_A + ":") and a.t_end - a.t_start >= 0.3]
    assert late, "the hung call's own outcome was recorded when the instance answered again"


class Forwarder:
    """A stable Service address on loopback: each NEW connection goes to the route's target of the
    moment and stays there (conntrack), as kube-proxy does. Threads end when either side closes."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.listener = socket.create_server(("127.0.0.3", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def __call__(self) -> tuple[str, int]:
        return ("127.0.0.3", self.port)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            target = self.route()
            if target is None:
                client.close()
                continue
            backend = socket.create_connection(target, timeout=2.0)
            backend.settimeout(None)
            self.socks += [client, backend]
            for a, b in ((client, backend), (backend, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()


@pytest.mark.parametrize("reconnect", [False, True])
def test_connections_pinned_to_a_demoted_main_fail_until_the_client_reconnects(memgraphs, writers, reconnect):
    old, new = memgraphs(HOST_A), memgraphs(HOST_B)
    route = Route()
    route.set(old)
    service = Forwarder(route)
    try:
        w = Writer(service, label="W", rate_hz=50.0, reconnect_on_read_only=reconnect)
        writers.append(w)
        w.start()
        assert w.wait_acks(10, timeout_s=20.0)
        route.set(new)  # NEW connections go to the other instance; the pooled one stays where it is
        run_query(old, "SET REPLICATION ROLE TO REPLICA WITH PORT 10000;")
        t = time.monotonic()

        def acked_after() -> int:
            return sum(a.acked and a.t_start >= t for a in w.attempts)

        def refused_after() -> int:
            return sum(a.t_start >= t and "forbidden on the replica" in a.message for a in w.attempts)

        if reconnect:
            assert poll(lambda: acked_after() >= 10, 10.0), w.attempts[-3:]
        else:
            assert poll(lambda: refused_after() >= 20, 10.0), w.attempts[-3:]
            assert acked_after() == 0, "the pooled connection stays pinned to the demoted MAIN"
        w.stop()
        acked = {a.id for a in w.attempts if a.acked and a.t_start >= t}
        assert acked <= read_ids(new.host, new.bolt_port, "W")
    finally:
        service.close()


def test_a_write_still_in_flight_when_the_writer_stops_is_unknown(memgraphs, writers):
    mg, w = writing_to(memgraphs, writers, 5)
    try:
        mg.proc.pause()
        time.sleep(0.3)
        w.stop(timeout_s=0.5)
    finally:
        mg.proc.resume()
    last = w.attempts[-1]
    assert (last.outcome, last.error_class) == (UNKNOWN, "InFlightAtStop")
    time.sleep(0.5)  # the late answer arrives now: it is not recorded a second time
    assert [a.id for a in w.attempts].count(last.id) == 1


def run_query(inst: Instance, query: str) -> list[Any]:
    uri = f"bolt://{inst.host}:{inst.bolt_port}"
    with GraphDatabase.driver(uri, auth=None, connection_timeout=1.0) as drv, drv.session() as session:
        return [r.values() for r in session.run(query)]


def test_manual_switchover_under_load_is_judged_clean_by_the_checker(memgraphs, writers):
    pods = {"mg-0": memgraphs(HOST_A), "mg-1": memgraphs(HOST_B)}
    old, new = pods["mg-0"], pods["mg-1"]
    run_query(new, f"SET REPLICATION ROLE TO REPLICA WITH PORT {new.proc.replication_port}")
    run_query(old, f'REGISTER REPLICA mg_1 STRICT_SYNC TO "{new.host}:{new.proc.replication_port}"')
    labels: dict[str, str | None] = {"mg-0": "main", "mg-1": None}

    def role(inst: Instance) -> str | None:
        try:
            return str(run_query(inst, "SHOW REPLICATION ROLE")[0][0])
        except Exception:
            return None

    def roles() -> dict[str, PodRole]:
        return {pod: PodRole(role(inst), labels[pod], inst.proc.alive) for pod, inst in pods.items()}

    def route() -> tuple[str, int] | None:
        main = [p for p, v in labels.items() if v == "main"]
        return (pods[main[0]].host, pods[main[0]].bolt_port) if main else None

    tl = Timeline(pods=list(pods))
    sampler = Sampler(tl, roles, period_s=0.05, max_duration_s=60.0).start()
    w = Writer(route, label="W", rate_hz=50.0)
    writers.append(w)
    try:
        w.start()
        assert w.wait_acks(30, timeout_s=20.0)
        labels["mg-0"] = None  # switchover, DESIGN order: unlabel, demote, promote, register, label
        run_query(old, f"SET REPLICATION ROLE TO REPLICA WITH PORT {old.proc.replication_port}")
        run_query(new, "SET REPLICATION ROLE TO MAIN")
        run_query(new, f'REGISTER REPLICA mg_0 STRICT_SYNC TO "{old.host}:{old.proc.replication_port}"')
        labels["mg-1"] = "main"
        tl.failovers.append(FailoverMark(time.monotonic(), "mg-0", "mg-1", planned=True))
        tl.fault_stop_t = time.monotonic()
        n = len(w.acked_ids())
        assert w.wait_acks(n + 30, timeout_s=20.0)
        w.stop()
        time.sleep(0.3)  # a few more sampling rounds of the converged cluster
    finally:
        sampler.stop()
    tl.attempts = w.attempts
    addresses = {p: (i.host, i.bolt_port) for p, i in pods.items()}
    ids = collect_final_ids(addresses, w.acked_ids(), "W", catch_up_s=5.0)
    tl.final = FinalData({p: tuple(sorted(v)) for p, v in ids.items()}, "mg-1", ("mg-0",))
    report = check(tl, Bounds(convergence_s=5.0))
    assert report.ok, report.to_json()
    (pause,) = [p for p in w.write_pauses(threshold_s=0.0) if p.before != p.after]
    assert (pause.before, pause.after) == (f"{old.host}:{old.bolt_port}", f"{new.host}:{new.bolt_port}")
    print(f"switchover write pause (last ack on old MAIN -> first ack on new): {pause.duration:.3f}s")
