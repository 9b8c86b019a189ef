"""Parser of the small Cypher subset the Memgraph emulator understands.

Role: turn query text into a typed query object. Replication queries follow Memgraph's grammar and
semantic checks exactly (reference memgraph-replication 1.1: `SET REPLICATION ROLE TO (MAIN|REPLICA)
(WITH PORT literal)?`, `REGISTER REPLICA name (SYNC|ASYNC|STRICT_SYNC) TO "host[:port]"`, `DROP REPLICA
name`, `SHOW REPLICATION ROLE`, `SHOW REPLICAS`; keywords case-insensitive, names may be backticked,
socket addresses are never resolved and kept exactly as given). The data subset is `CREATE (:L {k: v})`
(several comma-separated patterns allowed), `MATCH (n[:L]) RETURN count(n)`, `MATCH (n:L) RETURN n.k`,
`RETURN <literal or $param>[, ...]`, `CREATE INDEX ON :L(p)`, `SHOW STORAGE INFO [ON CURRENT DATABASE]`,
`SHOW VERSION`, `CREATE SNAPSHOT` (grammar `MemgraphCypher.g4:729`) and the emulator's test-only procedure
`CALL sim.sleep(<seconds>)` (a read query that takes that long, as a long analytical query would; a real
Memgraph answers "There is no procedure named 'sim.sleep'.").

Anything else raises QueryError with a Memgraph-style ANTLR message ("line 1:0 mismatched input 'X'
expecting ..."); the expected-token list is shortened, not Memgraph's exact list.

Must never: execute anything, touch state, or accept a query it only half understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_REPLICATION_PORT = 10000  # kDefaultReplicationPort (reference 1.1)

INVALID_SOCKET = (
    "Invalid socket address. The socket address must be a string defining the address and port, "
    "delimited by a single colon. The address must be valid and the port must be an integer."
)


class QueryError(Exception):
    """A query-level error; reported as Memgraph.ClientError.MemgraphError.MemgraphError (reference 6)."""


@dataclass(frozen=True)
class Param:
    """A `$name` parameter reference."""

    name: str


@dataclass(frozen=True)
class ShowRole:
    pass


@dataclass(frozen=True)
class ShowReplicas:
    pass


@dataclass(frozen=True)
class SetRole:
    to_main: bool
    port: int | None


@dataclass(frozen=True)
class RegisterReplica:
    name: str
    mode: str  # "sync" | "async" | "strict_sync"
    address: str  # "host:port" exactly as given (port defaulted to 10000)
    host: str
    port: int


@dataclass(frozen=True)
class DropReplica:
    name: str


@dataclass(frozen=True)
class ShowStorageInfo:
    scoped: bool


@dataclass(frozen=True)
class ShowVersion:
    pass


@dataclass(frozen=True)
class CreateSnapshot:
    pass


@dataclass(frozen=True)
class SleepCall:
    seconds: float


@dataclass(frozen=True)
class NodePattern:
    labels: tuple[str, ...]
    props: tuple[tuple[str, Any], ...]  # values are literals or Param


@dataclass(frozen=True)
class CreateNodes:
    nodes: tuple[NodePattern, ...]


@dataclass(frozen=True)
class CreateIndex:
    label: str
    prop: str


@dataclass(frozen=True)
class MatchCount:
    label: str | None
    column: str


@dataclass(frozen=True)
class MatchProp:
    label: str | None
    key: str
    column: str


@dataclass(frozen=True)
class ReturnValues:
    items: tuple[tuple[Any, str], ...] = field(default=())  # (literal or Param, column name)


Query = (
    ShowRole | ShowReplicas | SetRole | RegisterReplica | DropReplica | ShowStorageInfo | ShowVersion
    | CreateNodes | CreateIndex | MatchCount | MatchProp | ReturnValues | CreateSnapshot | SleepCall
)
REPLICATION_QUERIES = (ShowRole, ShowReplicas, SetRole, RegisterReplica, DropReplica)
# Queries a Bolt worker runs at HIGH priority (SessionHL.cpp:231-262: ReplicationInfoQuery,
# VersionQuery, ...); every other query of the subset is LOW (Cypher, index, info, replication, snapshot).
HIGH_PRIORITY_QUERIES = (ShowRole, ShowReplicas, ShowVersion)
WRITE_QUERIES = (CreateNodes, CreateIndex)

_TOKEN = re.compile(
    r"""\s+|(?P<bt>`(?:[^`]|``)*`)|(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
    r"""|(?P<num>\d+\.\d+(?:[eE][-+]?\d+)?|\d+)|(?P<param>\$\w+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"""
    r"""|(?P<p>[(){}\[\]:,.;*=<>+-])""",
    re.S,
)
_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class Tok:
    kind: str  # bt, str, num, param, id, p, eof
    value: Any
    text: str
    pos: int


def tokenize(text: str) -> list[Tok]:
    """Split query text into tokens; an unknown character is a syntax error."""
    toks: list[Tok] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise QueryError(f"line 1:{i} token recognition error at: '{text[i]}'")
        kind = m.lastgroup
        raw = m.group(0)
        if kind is not None:
            toks.append(Tok(kind, _token_value(kind, raw), raw, i))
        i = m.end()
    toks.append(Tok("eof", None, "<EOF>", len(text)))
    return toks


def _token_value(kind: str, raw: str) -> Any:
    if kind == "bt":
        return raw[1:-1].replace("``", "`")
    if kind == "str":
        return re.sub(r"\\(.)", lambda m: _ESC.get(m.group(1), m.group(1)), raw[1:-1])
    if kind == "num":
        return float(raw) if "." in raw else int(raw)
    if kind == "param":
        return raw[1:]
    return raw


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def fail(self, expecting: str) -> QueryError:
        t = self.tok
        return QueryError(f"line 1:{t.pos} mismatched input '{t.text}' expecting {expecting}")

    def is_kw(self, *words: str) -> bool:
        t = self.tok
        return t.kind == "id" and t.value.upper() in words

    def kw(self, *words: str) -> str:
        if not self.is_kw(*words):
            raise self.fail(" or ".join(words))
        word = str(self.tok.value).upper()
        self.i += 1
        return word

    def punct(self, ch: str) -> None:
        if not (self.tok.kind == "p" and self.tok.value == ch):
            raise self.fail(f"'{ch}'")
        self.i += 1

    def at_punct(self, ch: str) -> bool:
        return self.tok.kind == "p" and self.tok.value == ch

    def name(self) -> str:
        """symbolicName: identifier, backticked name or keyword (reference 1.1)."""
        if self.tok.kind not in ("id", "bt"):
            raise self.fail("a symbolic name")
        value = str(self.tok.value)
        self.i += 1
        return value

    def end(self) -> None:
        if self.at_punct(";"):
            self.i += 1
        if self.tok.kind != "eof":
            raise self.fail("<EOF>")

    def literal(self) -> Any:
        """Literal (int, float, string, bool, null, optionally negated number) or $param."""
        t = self.tok
        if t.kind == "p" and t.value == "-" and self.toks[self.i + 1].kind == "num":
            self.i += 2
            return -self.toks[self.i - 1].value
        if t.kind in ("num", "str"):
            self.i += 1
            return t.value
        if t.kind == "param":
            self.i += 1
            return Param(t.value)
        if t.kind == "id" and t.value.upper() in ("TRUE", "FALSE", "NULL"):
            self.i += 1
            return {"TRUE": True, "FALSE": False, "NULL": None}[t.value.upper()]
        raise self.fail("a literal")

    def source(self, start: int) -> str:
        """Original text from token `start` to the current token (a RETURN column name)."""
        a = self.toks[start].pos
        b = self.toks[self.i - 1].pos + len(self.toks[self.i - 1].text)
        return self.text[a:b]


def parse(text: str) -> Query:
    """Parse one query; raise QueryError with a Memgraph-style message when it is not in the subset."""
    p = _Parser(text)
    if p.is_kw("SHOW"):
        q: Query = _parse_show(p)
    elif p.is_kw("SET"):
        q = _parse_set_role(p)
    elif p.is_kw("REGISTER"):
        q = _parse_register(p)
    elif p.is_kw("DROP"):
        p.kw("DROP")
        p.kw("REPLICA")
        q = DropReplica(p.name())
    elif p.is_kw("CREATE"):
        q = _parse_create(p)
    elif p.is_kw("MATCH"):
        q = _parse_match(p)
    elif p.is_kw("RETURN"):
        q = _parse_return(p)
    elif p.is_kw("CALL"):
        q = _parse_call(p)
    else:
        raise p.fail("{CALL, CREATE, MATCH, RETURN, SHOW, SET, REGISTER, DROP}")
    p.end()
    return q


def _parse_show(p: _Parser) -> Query:
    p.kw("SHOW")
    word = p.kw("REPLICATION", "REPLICAS", "STORAGE", "VERSION")
    if word == "REPLICATION":
        p.kw("ROLE")
        return ShowRole()
    if word == "REPLICAS":
        return ShowReplicas()
    if word == "VERSION":
        return ShowVersion()
    p.kw("INFO")
    if p.is_kw("ON"):
        p.kw("ON")
        p.kw("CURRENT")
        p.kw("DATABASE")
        return ShowStorageInfo(scoped=True)
    return ShowStorageInfo(scoped=False)


def _parse_set_role(p: _Parser) -> SetRole:
    """Reference 1.1: semantic checks of visitSetReplicationRole."""
    p.kw("SET")
    p.kw("REPLICATION")
    p.kw("ROLE")
    p.kw("TO")
    to_main = p.kw("MAIN", "REPLICA") == "MAIN"
    port: int | None = None
    if p.is_kw("WITH"):
        p.kw("WITH")
        p.kw("PORT")
        value = p.literal()
        if not isinstance(value, int) or isinstance(value, bool):
            raise QueryError("Port must be an integer literal!")
        port = value
    if to_main and port is not None:
        raise QueryError("Main can't set a port!")
    if not to_main and port is None:
        raise QueryError("Replica must set a port!")
    if port is not None and not 0 <= port <= 65535:
        raise QueryError("Port number invalid!")
    return SetRole(to_main, port)


def _parse_register(p: _Parser) -> RegisterReplica:
    p.kw("REGISTER")
    p.kw("REPLICA")
    name = p.name()
    mode = p.kw("SYNC", "ASYNC", "STRICT_SYNC").lower()
    p.kw("TO")
    value = p.literal()
    if not isinstance(value, str):
        raise QueryError("Socket address should be a string literal!")
    host, port = parse_socket_address(value)
    return RegisterReplica(name, mode, f"{host}:{port}", host, port)


def parse_socket_address(text: str) -> tuple[str, int]:
    """`host:port` or `host` (port 10000); never resolved (reference 1.1, Endpoint::ParseAndCreate...)."""
    parts = text.split(":")
    if len(parts) > 2 or not parts[0] or any(c.isspace() for c in parts[0]):
        raise QueryError(INVALID_SOCKET)
    if len(parts) == 1:
        return parts[0], DEFAULT_REPLICATION_PORT
    if not parts[1].isdigit() or not 0 <= int(parts[1]) <= 65535:
        raise QueryError(INVALID_SOCKET)
    return parts[0], int(parts[1])


MAX_SLEEP_S = 3600.0


def _parse_call(p: _Parser) -> SleepCall:
    """`CALL sim.sleep(<seconds>)`: the only procedure the emulator has (a test control)."""
    p.kw("CALL")
    namespace = p.name()
    p.punct(".")
    proc = p.name()
    if (namespace, proc) != ("sim", "sleep"):
        raise QueryError(f"There is no procedure named '{namespace}.{proc}'.")
    p.punct("(")
    seconds = p.literal()
    p.punct(")")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SLEEP_S:
        raise QueryError(f"sim.sleep takes a number of seconds between 0 and {MAX_SLEEP_S:g}.")
    return SleepCall(float(seconds))


def _parse_create(p: _Parser) -> Query:
    p.kw("CREATE")
    if p.is_kw("SNAPSHOT"):
        p.kw("SNAPSHOT")
        return CreateSnapshot()
    if p.is_kw("INDEX"):
        p.kw("INDEX")
        p.kw("ON")
        p.punct(":")
        label = p.name()
        p.punct("(")
        prop = p.name()
        p.punct(")")
        return CreateIndex(label, prop)
    nodes = [_parse_node_pattern(p)]
    while p.at_punct(","):
        p.i += 1
        nodes.append(_parse_node_pattern(p))
    return CreateNodes(tuple(nodes))


def _parse_node_pattern(p: _Parser) -> NodePattern:
    p.punct("(")
    if p.tok.kind in ("id", "bt"):
        p.name()  # a variable name; unused by the subset
    labels: list[str] = []
    while p.at_punct(":"):
        p.i += 1
        labels.append(p.name())
    props: list[tuple[str, Any]] = []
    if p.at_punct("{"):
        p.i += 1
        while not p.at_punct("}"):
            if props:
                p.punct(",")
            key = p.name()
            p.punct(":")
            props.append((key, p.literal()))
        p.punct("}")
    p.punct(")")
    return NodePattern(tuple(labels), tuple(props))


def _parse_match(p: _Parser) -> Query:
    p.kw("MATCH")
    p.punct("(")
    var = p.name()
    label = None
    if p.at_punct(":"):
        p.i += 1
        label = p.name()
    p.punct(")")
    p.kw("RETURN")
    start = p.i
    if p.is_kw("COUNT"):
        p.kw("COUNT")
        p.punct("(")
        if p.name() != var:
            raise p.fail(f"'{var}'")
        p.punct(")")
        column = p.source(start)
        return MatchCount(label, _alias(p, column))
    if p.name() != var:
        raise QueryError(f"Unbound variable: {p.toks[p.i - 1].text}.")
    p.punct(".")
    key = p.name()
    return MatchProp(label, key, _alias(p, p.source(start)))


def _alias(p: _Parser, column: str) -> str:
    if p.is_kw("AS"):
        p.kw("AS")
        return p.name()
    return column


def _parse_return(p: _Parser) -> ReturnValues:
    p.kw("RETURN")
    items: list[tuple[Any, str]] = []
    while True:
        start = p.i
        value = p.literal()
        items.append((value, _alias(p, p.source(start))))
        if not p.at_punct(","):
            return ReturnValues(tuple(items))
        p.i += 1
