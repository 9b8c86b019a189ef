"""coordinator.edge.memgraph.MemgraphClient over the real neo4j driver: against the Memgraph emulator
(always) and against a real Memgraph when MEMGRAPH_TEST_URI is set (comma-separated bolt:// URIs, one per
instance; MEMGRAPH_TEST_USER / MEMGRAPH_TEST_PASSWORD optional; MEMGRAPH_TEST_REPLICATION_ADDRESSES optional,
comma-separated `host:port` the first instance can reach each instance's replication server on).

Also: the pure SHOW REPLICAS / storage / role parsers (reference memgraph-replication 2.1-2.3,
Appendix), error mapping (1.3, 6) and the timeout bounds, which need no Memgraph at all.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import neo4j
import pytest
from neo4j import exceptions as nx

from coordinator.core.model import ReplicaInfo, ReplicaMode, ReplicaStatus, Role, StorageInfo
from coordinator.edge.memgraph import (
    AlreadyMainError,
    AlreadyReplicaError,
    DropFailed,
    MemgraphAuthError,
    MemgraphClient,
    MemgraphError,
    MemgraphUnavailable,
    NotMainError,
    RegisterFailed,
    ReplicaDiverged,
    ReplicaEndpointExists,
    ReplicaNameExists,
    ReplicaUnreachable,
    UnexpectedReply,
    map_error,
    parse_replica_row,
    parse_role,
    parse_storage_rows,
    quote_address,
    quote_name,
)
from sim.proc import free_port

EMULATOR_PRESENT = (Path(__file__).resolve().parents[2] / "sim" / "memgraph" / "control.py").exists()

# ---- pure parsing -------------------------------------------------------------------------------


def test_new_format_row_reads_memgraph_data_info() -> None:
    row = {
        "name": "memgraph_1",
        "socket_address": "172.17.0.3:10000",
        "sync_mode": "strict_sync",
        "system_info": None,
        "data_info": {"memgraph": {"behind": -3, "status": "recovery", "ts": 2}},
    }
    assert parse_replica_row(row) == ReplicaInfo(
        "memgraph_1", "172.17.0.3:10000", ReplicaMode.STRICT_SYNC, ReplicaStatus.RECOVERY, ts=2, behind=-3
    )


def test_new_format_row_with_license_system_info_and_other_databases() -> None:
    row = {
        "name": "replica_1",
        "socket_address": "127.0.0.1:10001",
        "sync_mode": "sync",
        "system_info": {"ts": 2, "behind": None, "status": "ready"},
        "data_info": {
            "A": {"ts": 1, "behind": 0, "status": "invalid"},
            "memgraph": {"ts": 5, "behind": 0, "status": "ready"},
        },
    }
    info = parse_replica_row(row)
    assert (info.status, info.ts, info.behind, info.healthy) == (ReplicaStatus.READY, 5, 0, True)


@pytest.mark.parametrize("data_info", [{}, None, {"other_db": {"ts": 1, "behind": 0, "status": "ready"}}])
def test_empty_or_foreign_data_info_means_unknown_status(data_info: Any) -> None:
    row = {
        "name": "r",
        "socket_address": "h:10000",
        "sync_mode": "async",
        "system_info": None,
        "data_info": data_info,
    }
    assert parse_replica_row(row) == ReplicaInfo(
        "r", "h:10000", ReplicaMode.ASYNC, ReplicaStatus.UNKNOWN, 0, 0
    )


def test_diverged_status_is_parsed() -> None:
    row = {"name": "r", "socket_address": "h:1", "sync_mode": "sync", "system_info": None,
           "data_info": {"memgraph": {"ts": 0, "behind": 0, "status": "diverged"}}}  # fmt: skip
    assert parse_replica_row(row).status is ReplicaStatus.DIVERGED


@pytest.mark.parametrize(
    ("values", "expected"),
    [  # rows from mg:tests/e2e/replication/show.py@v2.14.0 (reference 2.3)
        (("replica_1", "127.0.0.1:10001", "sync", 0, 0, "ready"), (ReplicaStatus.READY, 0, 0)),
        (("replica_1", "127.0.0.1:10001", "sync", 4, 0, "ready"), (ReplicaStatus.READY, 4, 0)),
        (("sync_replica1", "127.0.0.1:10001", "sync", 0, 0, "invalid"), (ReplicaStatus.INVALID, 0, 0)),
        (("r", "h:10000", "async", 7, -2, "replicating"), (ReplicaStatus.REPLICATING, 7, -2)),
    ],
)
def test_legacy_v2_14_row_layout(values: tuple[Any, ...], expected: tuple[ReplicaStatus, int, int]) -> None:
    keys = ("name", "socket_address", "sync_mode", "current_timestamp_of_replica",
            "number_of_timestamp_behind_master", "state")  # fmt: skip
    info = parse_replica_row(dict(zip(keys, values, strict=True)))
    assert (info.name, info.socket_address) == values[:2]
    assert info.mode is ReplicaMode(values[2])
    assert (info.status, info.ts, info.behind) == expected


def test_v2_3_timeout_layout_gives_unknown_status() -> None:
    row = {"name": "r", "socket_address": "h:10000", "sync_mode": "sync", "timeout": 1.0}
    assert parse_replica_row(row).status is ReplicaStatus.UNKNOWN


@pytest.mark.parametrize(
    "row",
    [
        {
            "name": "r",
            "socket_address": "h:1",
            "sync_mode": "semi_sync",
            "system_info": None,
            "data_info": {},
        },
        {"socket_address": "h:1", "sync_mode": "sync", "system_info": None, "data_info": {}},
    ],
)
def test_unreadable_replica_row_raises_unexpected_reply(row: dict[str, Any]) -> None:
    with pytest.raises(UnexpectedReply):
        parse_replica_row(row)


def test_role_parser_reads_the_replication_role_column() -> None:
    assert parse_role([{"replication role": "replica"}]) is Role.REPLICA
    assert parse_role([{"replication role": "main"}]) is Role.MAIN
    with pytest.raises(UnexpectedReply):
        parse_role([])


def test_storage_rows_give_vertex_and_edge_counts() -> None:
    pairs = [("name", "memgraph"), ("vertex_count", 12), ("edge_count", 3), ("average_degree", 0.5)]
    rows: list[dict[str, Any]] = [{"storage info": k, "value": v} for k, v in pairs]
    assert parse_storage_rows(rows) == StorageInfo(vertex_count=12, edge_count=3)
    with pytest.raises(UnexpectedReply):  # 3.11+ unscoped form: instance-level metrics only
        parse_storage_rows([{"storage info": "memory_res", "value": "1MiB"}])


# ---- quoting ------------------------------------------------------------------------------------


def test_names_are_backticked_identifiers_and_injection_is_refused() -> None:
    assert quote_name("memgraph_1") == "`memgraph_1`"
    for bad in ("memgraph-1", "a`b", "x SYNC TO 'h'", "", "1abc"):
        with pytest.raises(ValueError):
            quote_name(bad)


def test_addresses_are_string_literals_and_malformed_ones_are_refused() -> None:
    assert quote_address("memgraph-1.memgraph-headless:10000") == '"memgraph-1.memgraph-headless:10000"'
    assert quote_address("10.0.0.1") == '"10.0.0.1"'
    for bad in ('h:1" OR "x', "h:1:2", "h:70000", "h:", "", "a b:1"):
        with pytest.raises(ValueError):
            quote_address(bad)


# ---- error mapping (driver exceptions as the driver builds them from a FAILURE) ------------------


def failure(message: str, code: str = "Memgraph.ClientError.MemgraphError.MemgraphError") -> nx.Neo4jError:
    return nx.Neo4jError._hydrate_neo4j(code=code, message=message)


@pytest.mark.parametrize(
    ("message", "cls", "number"),
    [
        ("Couldn't register replica r. Error: 1", ReplicaNameExists, 1),
        ("Couldn't register replica r. Error: 2", ReplicaEndpointExists, 2),
        ("Couldn't register replica r. Error: 3", ReplicaDiverged, 3),
        ("Couldn't register replica r. Error: 5", ReplicaUnreachable, 5),
        ("Couldn't register replica r. Error: 4", RegisterFailed, 4),
        ("Couldn't register replica r.", RegisterFailed, None),  # v2.21 - v3.4
        ("Couldn't register replica 'r'!", RegisterFailed, None),  # <= v2.20
    ],
)
def test_register_errors_map_to_typed_exceptions_by_code(message: str, cls: type, number: int | None) -> None:
    error = map_error(failure(message), "register", "r")
    assert type(error) is cls and isinstance(error, RegisterFailed)
    assert (error.register_code, error.replica, error.message) == (number, "r", message)


@pytest.mark.parametrize(
    ("op", "message", "cls"),
    [
        ("register", "Replica can't register another replica!", NotMainError),
        ("replicas", "Show replicas query should only be run on the main instance.", NotMainError),
        ("replicas", "Replica can't show registered replicas (it shouldn't have any)!", NotMainError),
        ("drop", "Replica can't unregister a replica! Please rerun the query on main ...", NotMainError),
        ("drop", "Failed to unregister the replica r.", DropFailed),
        ("drop", "Couldn't unregister the replica 'r'", DropFailed),
        ("promote", "Couldn't set replication role to main!", AlreadyMainError),
        ("promote", "Couldn't set role to main!", AlreadyMainError),
        ("demote", "Couldn't set role to replica!", AlreadyReplicaError),
        ("role", "Multiple concurrent system queries are not supported.", MemgraphError),
    ],
)
def test_memgraph_error_texts_map_to_typed_exceptions(op: str, message: str, cls: type) -> None:
    error = map_error(failure(message), op)
    assert type(error) is cls and error.message == message


def test_unauthenticated_code_maps_to_auth_error() -> None:
    error = map_error(
        failure("Authentication failure", "Memgraph.ClientError.Security.Unauthenticated"), "role"
    )
    assert isinstance(error, MemgraphAuthError)


def test_connection_errors_map_to_unavailable() -> None:
    assert isinstance(map_error(nx.ServiceUnavailable("refused"), "role"), MemgraphUnavailable)
    assert isinstance(map_error(ConnectionResetError("reset"), "role"), MemgraphUnavailable)


# ---- bounds without any server ------------------------------------------------------------------


def test_closed_port_is_unavailable_after_three_logged_attempts(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port("127.0.0.1")
    caplog.set_level(logging.WARNING, logger="coordinator.edge.memgraph")
    client = MemgraphClient("127.0.0.1", port, connect_timeout=0.5, query_timeout=2.0)
    try:
        start = time.monotonic()
        with pytest.raises(MemgraphUnavailable):
            client.role()
        assert time.monotonic() - start < 2.5
    finally:
        client.close()
    retries = [r for r in caplog.records if r.getMessage() == "memgraph call failed, retrying"]
    assert [r.fields["attempt"] for r in retries] == [1, 2]  # type: ignore[attr-defined]
    assert not client.ping()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP listener that accepts connections and never answers (a hung Memgraph)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@pytest.mark.parametrize("call", ["role", "replicas", "promote", "ping"])
def test_hung_server_call_ends_within_query_timeout(silent_server: int, call: str) -> None:
    client = MemgraphClient("127.0.0.1", silent_server, connect_timeout=0.3, query_timeout=0.8)
    try:
        start = time.monotonic()
        if call == "ping":
            assert client.ping() is False
        else:
            with pytest.raises(MemgraphUnavailable):
                getattr(client, call)()
        assert time.monotonic() - start < 0.8 + 0.4
    finally:
        client.close()


def test_repr_never_shows_the_password() -> None:
    client = MemgraphClient("127.0.0.1", 7687, user="ha", password="pw-s3cr3t")
    assert "pw-s3cr3t" not in repr(client) and "ha" in repr(client)


# ---- against a Memgraph (emulator always, real one when MEMGRAPH_TEST_URI is set) -------------------


@dataclass
class Instance:
    host: str
    port: int
    replication_address: str  # where the MAIN reaches this instance's replication server
    replication_port: int
    user: str = ""
    password: str = ""

    def client(self, **overrides: Any) -> MemgraphClient:
        kwargs: dict[str, Any] = {"user": self.user, "password": self.password, "query_timeout": 3.0}
        kwargs.update(overrides)
        return MemgraphClient(self.host, self.port, **kwargs)

    def write(self, query: str) -> None:
        auth = (self.user, self.password) if self.user else None
        with (
            neo4j.GraphDatabase.driver(
                f"bolt://{self.host}:{self.port}", auth=auth, connection_timeout=2
            ) as d,
            d.session() as s,
        ):
            s.run(query).consume()


Factory = Callable[..., list[Instance]]


def _emulator_factory(tmp_path: Path, started: list[Any]) -> Factory:
    from sim.memgraph.control import MemgraphProcess  # written by another helper

    def make(n: int, user: str | None = None, password: str | None = None) -> list[Instance]:
        out = []
        for i in range(n):
            host = f"127.0.0.{11 + len(started)}"
            proc = MemgraphProcess(
                tmp_path / f"mg{len(started)}", host, bolt_port=0, user=user, password=password
            )
            started.append(proc)
            proc.start()
            repl = proc.replication_port
            out.append(Instance(host, proc.bolt_port, f"{host}:{repl}", repl, user or "", password or ""))
            assert i == len(out) - 1
        return out

    return make


def _reset_real(inst: Instance) -> None:
    with inst.client() as c:
        if c.role() is Role.REPLICA:
            c.promote()
        for r in c.replicas():
            c.drop(r.name)


def _real_factory(used: list[Instance]) -> Factory:
    uris = [u.strip() for u in os.environ["MEMGRAPH_TEST_URI"].split(",") if u.strip()]
    addresses = [
        a.strip() for a in os.environ.get("MEMGRAPH_TEST_REPLICATION_ADDRESSES", "").split(",") if a.strip()
    ]
    user, password = os.environ.get("MEMGRAPH_TEST_USER", ""), os.environ.get("MEMGRAPH_TEST_PASSWORD", "")

    def make(n: int, user_: str | None = None, password_: str | None = None) -> list[Instance]:
        if n > len(uris):
            pytest.skip(f"needs {n} real Memgraph instances, MEMGRAPH_TEST_URI has {len(uris)}")
        if user_ is not None and user_ != user:
            pytest.skip("credential test needs MEMGRAPH_TEST_USER/PASSWORD to match")
        out = []
        for i, uri in enumerate(uris[:n]):
            parsed = urlparse(uri)
            address = addresses[i] if i < len(addresses) else f"{parsed.hostname}:10000"
            repl_port = int(address.rsplit(":", 1)[1])
            inst = Instance(parsed.hostname or "", parsed.port or 7687, address, repl_port, user, password)
            _reset_real(inst)
            used.append(inst)
            out.append(inst)
        return out

    return make


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_memgraph)])
def memgraphs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """`memgraphs(n)` -> n fresh MAIN instances; every process is stopped (or real state reset) after."""
    if request.param == "real":
        if not os.environ.get("MEMGRAPH_TEST_URI"):
            pytest.skip("MEMGRAPH_TEST_URI not set")
        used: list[Instance] = []
        try:
            yield _real_factory(used)
        finally:
            for inst in used:
                _reset_real(inst)
        return
    if not EMULATOR_PRESENT:
        pytest.skip("sim/memgraph/control.py not written yet")
    started: list[Any] = []
    try:
        yield _emulator_factory(tmp_path, started)
    finally:
        for proc in started:
            try:
                proc.stop()
            except Exception as exc:
                logging.getLogger(__name__).warning("stop failed, killing: %r", exc)
                proc.kill()


def test_fresh_instance_is_main_and_promote_raises_already_main(memgraphs: Factory) -> None:
    [a] = memgraphs(1)
    with a.client() as c:
        assert c.role() is Role.MAIN
        assert c.ping() is True
        with pytest.raises(AlreadyMainError):
            c.promote()


def test_demote_then_replica_refuses_main_only_commands(memgraphs: Factory) -> None:
    [a] = memgraphs(1)
    with a.client() as c:
        c.demote(a.replication_port)
        assert c.role() is Role.REPLICA
        with pytest.raises(AlreadyReplicaError):
            c.demote(a.replication_port)
        with pytest.raises(NotMainError):
            c.replicas()
        with pytest.raises(NotMainError):
            c.register("x", ReplicaMode.ASYNC, "127.0.0.1:10000")
        with pytest.raises(NotMainError):
            c.drop("x")
        c.promote()
        assert c.role() is Role.MAIN
        assert c.replicas() == []


def test_register_ready_replica_then_name_and_endpoint_conflicts(memgraphs: Factory) -> None:
    a, b = memgraphs(2)
    with a.client() as main, b.client() as replica:
        replica.demote(b.replication_port)
        main.register("memgraph_1", ReplicaMode.SYNC, b.replication_address)
        [info] = main.replicas()
        assert (info.name, info.socket_address, info.mode) == (
            "memgraph_1",
            b.replication_address,
            ReplicaMode.SYNC,
        )
        assert (info.status, info.behind) == (ReplicaStatus.READY, 0)
        with pytest.raises(ReplicaNameExists) as named:
            main.register("memgraph_1", ReplicaMode.ASYNC, "127.0.0.1:1")
        assert named.value.register_code in (1, None)
        with pytest.raises(ReplicaEndpointExists):
            main.register("other", ReplicaMode.ASYNC, b.replication_address)
        main.drop("memgraph_1")
        assert main.replicas() == []


def test_register_unreachable_replica_raises_and_entry_stays_until_dropped(memgraphs: Factory) -> None:
    [a] = memgraphs(1)
    nobody = f"{a.host}:{free_port(a.host)}"
    with a.client() as main:
        with pytest.raises(ReplicaUnreachable) as info:
            main.register("ghost", ReplicaMode.ASYNC, nobody)
        assert info.value.register_code == 5
        [row] = main.replicas()  # reference 1.4 step 3: not rolled back, data_info {}
        assert (row.name, row.socket_address, row.status) == ("ghost", nobody, ReplicaStatus.UNKNOWN)
        with pytest.raises(ReplicaNameExists):
            main.register("ghost", ReplicaMode.ASYNC, nobody)
        main.drop("ghost")
        assert main.replicas() == []
        with pytest.raises(DropFailed):
            main.drop("ghost")


def test_three_instances_strict_sync_and_async_replicas_follow_writes(memgraphs: Factory) -> None:
    a, b, c = memgraphs(3)
    with a.client() as main, b.client() as rb, c.client() as rc:
        rb.demote(b.replication_port)
        rc.demote(c.replication_port)
        main.register("memgraph_1", ReplicaMode.STRICT_SYNC, b.replication_address)
        main.register("memgraph_2", ReplicaMode.ASYNC, c.replication_address)
        before = main.storage_info()
        a.write("CREATE (:Item {k: 1}), (:Item {k: 2}), (:Item {k: 3})")
        after = main.storage_info()
        assert after == StorageInfo(before.vertex_count + 3, before.edge_count)
        assert rb.storage_info() == after  # STRICT_SYNC: on the replica before the write was acknowledged
        deadline = time.monotonic() + 5
        rows = main.replicas()
        while time.monotonic() < deadline and not all(
            r.status is ReplicaStatus.READY and r.behind == 0 for r in rows
        ):
            time.sleep(0.05)
            rows = main.replicas()
        assert [(r.name, r.mode, r.status, r.behind) for r in rows] == [
            ("memgraph_1", ReplicaMode.STRICT_SYNC, ReplicaStatus.READY, 0),
            ("memgraph_2", ReplicaMode.ASYNC, ReplicaStatus.READY, 0),
        ]
        assert rows[0].ts == rows[1].ts > 0
        assert rc.storage_info() == after


def test_version_is_a_string_or_none(memgraphs: Factory) -> None:
    [a] = memgraphs(1)
    with a.client() as c:
        v = c.version()
        assert v is None or (isinstance(v, str) and v)


def test_wrong_password_raises_auth_error_and_right_one_works(memgraphs: Factory) -> None:
    [a] = memgraphs(1, user="ha", password="right-pw")
    with a.client(password="wrong-pw") as bad:
        with pytest.raises(MemgraphAuthError):
            bad.role()
        assert bad.ping() is False
    with a.client() as good:
        assert good.role() is Role.MAIN


def test_killed_instance_is_unavailable_within_timeout_and_client_recovers(tmp_path: Path) -> None:
    if not EMULATOR_PRESENT:
        pytest.skip("sim/memgraph/control.py not written yet")
    from sim.memgraph.control import MemgraphProcess

    port = free_port("127.0.0.21")
    proc = MemgraphProcess(tmp_path / "mg", "127.0.0.21", bolt_port=port)
    client = MemgraphClient("127.0.0.21", port, connect_timeout=0.5, query_timeout=1.5)
    try:
        proc.start()
        assert client.role() is Role.MAIN
        proc.kill()
        start = time.monotonic()
        with pytest.raises(MemgraphUnavailable):
            client.role()
        assert time.monotonic() - start < 1.5 + 0.5
        proc.start()
        assert client.role() is Role.MAIN  # same client, same driver: stale connections are replaced
    finally:
        client.close()
        try:
            proc.stop()
        except Exception as exc:
            logging.getLogger(__name__).warning("stop failed, killing: %r", exc)
            proc.kill()


def test_frozen_instance_is_unavailable_within_timeout_and_client_recovers_after(tmp_path: Path) -> None:
    """SIGSTOP: the pooled connection is open but nothing answers (the driver has no read timeout)."""
    if not EMULATOR_PRESENT:
        pytest.skip("sim/memgraph/control.py not written yet")
    from sim.memgraph.control import MemgraphProcess

    proc = MemgraphProcess(tmp_path / "mg", "127.0.0.22")
    client = MemgraphClient("127.0.0.22", 1, connect_timeout=0.3, query_timeout=1.0)
    frozen = False
    try:
        proc.start()
        client = MemgraphClient("127.0.0.22", proc.bolt_port, connect_timeout=0.3, query_timeout=1.0)
        assert client.role() is Role.MAIN
        frozen = True
        proc.pause()  # returns once every thread stopped: kill(2) alone only queues the group stop
        for call in (client.role, client.promote):
            start = time.monotonic()
            with pytest.raises(MemgraphUnavailable) as info:
                call()
            assert time.monotonic() - start < 1.0 + 0.4
        assert info.value.outcome_unknown is False  # promote never got past the connection check
        proc.resume()
        frozen = False
        assert client.role() is Role.MAIN
    finally:
        if frozen:
            proc.resume()
        client.close()
        proc.stop()
