"""Bolt contract of the emulator, driven by the real neo4j driver and by raw sockets.

Pins reference bolt-and-kube 1.1-1.8 and memgraph-replication 6: handshake, HELLO/LOGON, auth failure,
error classes, FAILURE/IGNORED/RESET, explicit transactions, paging, ROUTE refusal, summaries.
"""

from __future__ import annotations

import socket
import struct

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable, TransientError

from sim.memgraph.bolt import ROUTE_REFUSED, SERVER_NAME
from sim.memgraph.packstream import Structure, chunk_message, pack, read_message, unpack_message

from .helpers import Cluster, run

DRIVER_HANDSHAKE = bytes.fromhex("6060b017" "000001ff" "00080805" "00020404" "00000003")


def raw_connect(port: int, slots: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=3.0)
    s.sendall(b"\x60\x60\xb0\x17" + slots)
    return s


def send(s: socket.socket, tag: int, *fields: object) -> None:
    s.sendall(chunk_message(pack(Structure(tag, list(fields)))))


def recv(s: socket.socket) -> Structure:
    return unpack_message(read_message(s))


def closed(s: socket.socket) -> bool:
    """True when the server closed the connection (EOF or reset)."""
    try:
        return s.recv(64) == b""
    except ConnectionResetError:
        return True


def slot(major: int, minor: int, rng: int = 0) -> bytes:
    return bytes([0, rng, minor, major])


def test_driver_negotiates_bolt_5_2_and_sees_memgraph_server_agent(cluster: Cluster) -> None:
    p = cluster.start("a")
    info = cluster.driver(p).get_server_info()
    assert info.protocol_version == (5, 2)
    assert info.agent == SERVER_NAME


def test_hello_success_metadata_is_exactly_memgraphs(cluster: Cluster) -> None:
    p = cluster.start("a")
    with socket.create_connection(("127.0.0.1", p.bolt_port), timeout=3.0) as s:
        s.sendall(DRIVER_HANDSHAKE)
        assert s.recv(4) == b"\x00\x00\x02\x05"
        send(s, 0x01, {"user_agent": "test"})
        send(s, 0x6A, {"scheme": "none"})
        hello, logon = recv(s), recv(s)
    expected = {"connection_id": "bolt-1", "server": SERVER_NAME}
    assert (hello.tag, hello.fields) == (0x70, [expected])
    assert (logon.tag, logon.fields) == (0x70, [expected])


def test_bolt_4_4_hello_carries_credentials_and_bad_ones_close_the_connection(cluster: Cluster) -> None:
    p = cluster.start("a", user="admin", password="secret")
    with raw_connect(p.bolt_port, slot(4, 4) + bytes(12)) as s:
        assert s.recv(4) == b"\x00\x00\x04\x04"
        send(s, 0x01, {"user_agent": "t", "scheme": "basic", "principal": "admin", "credentials": "nope"})
        failure = recv(s)
        assert failure.tag == 0x7F
        assert failure.fields[0] == {"code": "Memgraph.ClientError.Security.Unauthenticated",
                                     "message": "Authentication failure"}
        assert closed(s)
    with raw_connect(p.bolt_port, slot(4, 4) + bytes(12)) as s:
        assert s.recv(4) == b"\x00\x00\x04\x04"
        send(s, 0x01, {"user_agent": "t", "scheme": "basic", "principal": "admin", "credentials": "secret"})
        assert recv(s).tag == 0x70


def test_handshake_without_a_supported_version_is_closed_without_reply(cluster: Cluster) -> None:
    p = cluster.start("a")
    with raw_connect(p.bolt_port, slot(5, 8, 5) + slot(4, 2) + slot(3, 0) + bytes(4)) as s:
        assert closed(s)
    with raw_connect(p.bolt_port, slot(5, 8, 5) + slot(4, 3, 1) + bytes(8)) as s:
        assert s.recv(4) == b"\x00\x00\x03\x04"  # range scan: 4.3..4.2 -> 4.3


def test_garbage_bytes_close_the_connection_and_the_server_keeps_serving(cluster: Cluster) -> None:
    p = cluster.start("a")
    with socket.create_connection(("127.0.0.1", p.bolt_port), timeout=3.0) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert closed(s)
    with socket.create_connection(("127.0.0.1", p.bolt_port), timeout=3.0) as s:
        s.sendall(DRIVER_HANDSHAKE)
        assert s.recv(4) == b"\x00\x00\x02\x05"
        s.sendall(struct.pack(">H", 3) + b"\xb1\x01\xdf" + b"\x00\x00")  # HELLO with marker 0xDF
        assert closed(s)
    assert run(cluster, p, "RETURN 1") == [[1]]


def test_bad_credentials_raise_client_error_unauthenticated_not_auth_error(cluster: Cluster) -> None:
    """The brief expected AuthError; the reference (1.7, verified with the 6.4.1 driver) says plain
    ClientError, because the driver maps only Neo.ClientError.Security.Unauthorized to AuthError."""
    p = cluster.start("a", user="admin", password="secret")
    with GraphDatabase.driver(p.bolt_uri, auth=("admin", "wrong")) as drv, pytest.raises(ClientError) as err:
        drv.verify_connectivity()
    assert err.value.code == "Memgraph.ClientError.Security.Unauthenticated"
    assert not isinstance(err.value, AuthError)
    with GraphDatabase.driver(p.bolt_uri, auth=("admin", "secret")) as drv:
        assert drv.execute_query("RETURN 1").records[0][0] == 1


def test_without_configured_user_any_credentials_are_accepted(cluster: Cluster) -> None:
    p = cluster.start("a")
    with GraphDatabase.driver(p.bolt_uri, auth=("whoever", "whatever")) as drv:
        drv.verify_connectivity()


def test_query_error_is_non_retryable_client_error_and_session_recovers_after_reset(cluster: Cluster) -> None:
    p = cluster.start("a")
    with cluster.driver(p).session() as s:
        with pytest.raises(ClientError) as err:
            s.run("FOO BAR").consume()
        assert err.value.code == "Memgraph.ClientError.MemgraphError.MemgraphError"
        assert err.value.message.startswith("line 1:0 mismatched input 'FOO'")
        assert not isinstance(err.value, TransientError) and not err.value.is_retryable()
        assert s.run("RETURN 42 AS x").single(strict=True)["x"] == 42


def test_failure_makes_pipelined_messages_ignored_until_reset(cluster: Cluster) -> None:
    p = cluster.start("a")
    with socket.create_connection(("127.0.0.1", p.bolt_port), timeout=3.0) as s:
        s.sendall(DRIVER_HANDSHAKE)
        s.recv(4)
        send(s, 0x01, {"user_agent": "t"})
        send(s, 0x6A, {"scheme": "none"})
        send(s, 0x10, "BAD", {}, {})
        send(s, 0x3F, {"n": 1000})
        send(s, 0x0F)
        send(s, 0x10, "RETURN 1", {}, {})
        send(s, 0x3F, {"n": 1000})
        tags = [recv(s).tag for _ in range(7)]
    assert tags == [0x70, 0x70, 0x7F, 0x7E, 0x70, 0x70, 0x71]


def test_explicit_transaction_rollback_leaves_nothing_and_commit_applies(cluster: Cluster) -> None:
    p = cluster.start("a")
    drv = cluster.driver(p)
    with drv.session() as s:
        tx = s.begin_transaction()
        tx.run("CREATE (:T {v: 1}), (:T {v: 2})").consume()
        assert tx.run("MATCH (n:T) RETURN count(n)").single(strict=True)[0] == 2
        tx.rollback()
        assert s.run("MATCH (n:T) RETURN count(n)").single(strict=True)[0] == 0
        ldt_after_rollback = p.state()["ldt"]
        tx = s.begin_transaction()
        tx.run("CREATE (:T {v: 1})").consume()
        tx.run("CREATE (:T {v: 2})").consume()
        tx.commit()
    assert run(cluster, p, "MATCH (n:T) RETURN n.v") == [[1], [2]]
    assert ldt_after_rollback == 0 and p.state()["ldt"] > 0


def test_large_result_is_paged_with_has_more(cluster: Cluster) -> None:
    p = cluster.start("a")
    n = 5000
    query = "CREATE " + ", ".join(f"(:Big {{i: {i}}})" for i in range(n))
    run(cluster, p, query)
    with cluster.driver(p).session(fetch_size=1000) as s:
        values = [r[0] for r in s.run("MATCH (n:Big) RETURN n.i")]
    assert values == list(range(n))
    with socket.create_connection(("127.0.0.1", p.bolt_port), timeout=3.0) as s:
        s.sendall(DRIVER_HANDSHAKE)
        s.recv(4)
        send(s, 0x01, {"user_agent": "t"})
        send(s, 0x6A, {"scheme": "none"})
        send(s, 0x10, "MATCH (n:Big) RETURN n.i", {}, {})
        send(s, 0x3F, {"n": 1000})
        msgs = [recv(s) for _ in range(3 + 1000 + 1)]
        assert msgs[2].fields[0] == {"fields": ["n.i"]}
        assert msgs[-1].fields[0] == {"has_more": True}
        send(s, 0x2F, {"n": -1})
        summary = recv(s)
    assert summary.tag == 0x70 and summary.fields[0]["has_more"] is False


def test_neo4j_scheme_fails_because_route_is_refused(cluster: Cluster) -> None:
    p = cluster.start("a")
    with GraphDatabase.driver(f"neo4j://127.0.0.1:{p.bolt_port}", connection_timeout=2.0) as drv, \
            pytest.raises(ServiceUnavailable):
        drv.verify_connectivity()
    with socket.create_connection(("127.0.0.1", p.bolt_port), timeout=3.0) as s:
        s.sendall(DRIVER_HANDSHAKE)
        s.recv(4)
        send(s, 0x01, {"user_agent": "t"})
        send(s, 0x6A, {"scheme": "none"})
        send(s, 0x66, {"address": "x"}, [], {})
        route = [recv(s) for _ in range(3)][-1]
    assert route.tag == 0x7F and route.fields[0]["message"] == ROUTE_REFUSED


def test_summary_reports_type_stats_and_replication_notifications(cluster: Cluster) -> None:
    p = cluster.start("a")
    with cluster.driver(p).session() as s:
        w = s.run("CREATE (:S {a: 1, b: 'x'})").consume()
        r = s.run("RETURN 1").consume()
        sr = s.run("SHOW REPLICATION ROLE").consume()
    assert (w.query_type, w.counters.nodes_created, w.counters.properties_set) == ("w", 1, 2)
    assert r.query_type == "r" and sr.query_type == "rw"
    with socket.create_connection(("127.0.0.1", p.bolt_port), timeout=3.0) as s:
        s.sendall(DRIVER_HANDSHAKE)
        s.recv(4)
        send(s, 0x01, {"user_agent": "t"})
        send(s, 0x6A, {"scheme": "none"})
        send(s, 0x10, f"SET REPLICATION ROLE TO REPLICA WITH PORT {p.replication_port}", {}, {})
        send(s, 0x3F, {"n": -1})
        summary = [recv(s) for _ in range(4)][-1].fields[0]
    assert {"parsing_time", "planning_time", "plan_execution_time", "cost_estimate", "db"} <= set(summary)
    assert "t_first" not in summary and "bookmark" not in summary
    assert summary["notifications"] == [{"severity": "INFO", "code": "SetReplica",
                                         "title": "Replica role set to REPLICA.", "description": ""}]
    assert summary["type"] == "rw"


def test_packstream_values_round_trip_through_parameters(cluster: Cluster) -> None:
    p = cluster.start("a")
    values = {"v1": None, "v2": True, "v3": -17, "v4": 200, "v5": -40000, "v6": 2**40, "v7": 1.5,
              "v8": "zürich" * 10, "v9": [1, [2, "x"]], "v10": {"k": {"l": [None]}}, "v11": b"\x00\xff" * 300}
    row = run(cluster, p, "RETURN " + ", ".join(f"${k}" for k in values), **values)[0]
    assert row == list(values.values())


def test_explicit_transaction_refuses_replication_queries_with_multicommand_text(cluster: Cluster) -> None:
    p = cluster.start("a")
    with pytest.raises(ClientError) as err:
        cluster.driver(p).execute_query("SHOW REPLICATION ROLE")
    assert err.value.message.startswith("Managing replication is not allowed in multicommand transactions.")


def test_show_version_and_storage_info_have_memgraph_columns(cluster: Cluster) -> None:
    p = cluster.start("a")
    run(cluster, p, "CREATE (:A), (:B)")
    with cluster.driver(p).session() as s:
        version = s.run("SHOW VERSION")
        assert version.keys() == ["version"] and version.single(strict=True)[0] == "3.12.0"
        scoped = s.run("SHOW STORAGE INFO ON CURRENT DATABASE")
        assert scoped.keys() == ["storage info", "value"]
        info = {r[0]: r[1] for r in scoped}
        instance = {r[0]: r[1] for r in s.run("SHOW STORAGE INFO")}
    assert info["vertex_count"] == 2 and info["edge_count"] == 0
    assert "vertex_count" not in instance and "memory_res" in instance
