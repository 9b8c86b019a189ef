"""PackStream v1 codec and Bolt chunked framing for the Memgraph emulator.

Role: turn Python values into PackStream bytes and back (reference bolt-and-kube 1.3: null, bool, int of
every width, float64, bytes, UTF-8 string, list, map, structure) and split/join Bolt messages into chunks
(reference 1.2: `u16 size` + bytes, `00 00` end marker, a bare `00 00` is a NOOP).

Must never: accept malformed input silently -- every decoding problem raises PackStreamError, which the
Bolt session turns into a closed connection -- or do any I/O beyond the socket helpers at the bottom.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Any

MAX_CHUNK = 65535


class PackStreamError(ValueError):
    """Malformed PackStream data or a value that cannot be encoded."""


@dataclass
class Structure:
    """A PackStream structure: a tag byte and its fields (Bolt messages are structures)."""

    tag: int
    fields: list[Any] = field(default_factory=list)


def _size_header(n: int, tiny: int, m8: int | None, m16: int, m32: int) -> bytes:
    if n < 16:
        return bytes([tiny + n])
    if m8 is not None and n < 0x100:
        return bytes([m8, n])
    if n < 0x10000:
        return bytes([m16]) + struct.pack(">H", n)
    if n < 0x100000000:
        return bytes([m32]) + struct.pack(">I", n)
    raise PackStreamError("collection too large")


def _pack_int(v: int) -> bytes:
    if -16 <= v < 128:
        return struct.pack(">b", v)
    if -128 <= v < 128:
        return b"\xc8" + struct.pack(">b", v)
    if -32768 <= v < 32768:
        return b"\xc9" + struct.pack(">h", v)
    if -(2**31) <= v < 2**31:
        return b"\xca" + struct.pack(">i", v)
    if -(2**63) <= v < 2**63:
        return b"\xcb" + struct.pack(">q", v)
    raise PackStreamError(f"integer out of range: {v}")


def pack(value: Any) -> bytes:
    """Encode one value (recursively)."""
    out = bytearray()
    _pack_into(out, value)
    return bytes(out)


def _pack_into(out: bytearray, v: Any) -> None:
    if v is None:
        out += b"\xc0"
    elif v is True:
        out += b"\xc3"
    elif v is False:
        out += b"\xc2"
    elif isinstance(v, int):
        out += _pack_int(v)
    elif isinstance(v, float):
        out += b"\xc1" + struct.pack(">d", v)
    elif isinstance(v, str):
        data = v.encode("utf-8")
        out += _size_header(len(data), 0x80, 0xD0, 0xD1, 0xD2) + data
    elif isinstance(v, bytes | bytearray):
        n = len(v)
        out += (bytes([0xCC, n]) if n < 0x100 else _size_header(n, 0, None, 0xCD, 0xCE)) + bytes(v)
    elif isinstance(v, list | tuple):
        out += _size_header(len(v), 0x90, 0xD4, 0xD5, 0xD6)
        for item in v:
            _pack_into(out, item)
    elif isinstance(v, dict):
        out += _size_header(len(v), 0xA0, 0xD8, 0xD9, 0xDA)
        for k, item in v.items():
            if not isinstance(k, str):
                raise PackStreamError("map keys must be strings")
            _pack_into(out, k)
            _pack_into(out, item)
    elif isinstance(v, Structure):
        if len(v.fields) > 15:
            raise PackStreamError("structure with more than 15 fields")
        out += bytes([0xB0 + len(v.fields), v.tag])
        for item in v.fields:
            _pack_into(out, item)
    else:
        raise PackStreamError(f"cannot pack {type(v).__name__}")


class Unpacker:
    """Decode values from a byte buffer, front to back."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PackStreamError("truncated PackStream data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _u(self, fmt: str, n: int) -> int:
        return int(struct.unpack(fmt, self._take(n))[0])

    def unpack(self, depth: int = 0) -> Any:
        if depth > 64:
            raise PackStreamError("nesting too deep")
        m = self._take(1)[0]
        if m < 0x80:
            return m
        if m >= 0xF0:
            return m - 0x100
        hi, lo = m & 0xF0, m & 0x0F
        if hi == 0x80:
            return self._str(lo)
        if hi == 0x90:
            return [self.unpack(depth + 1) for _ in range(lo)]
        if hi == 0xA0:
            return self._map(lo, depth)
        if hi == 0xB0:
            tag = self._take(1)[0]
            return Structure(tag, [self.unpack(depth + 1) for _ in range(lo)])
        return self._marker(m, depth)

    def _str(self, n: int) -> str:
        try:
            return self._take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PackStreamError("invalid UTF-8 string") from exc

    def _map(self, n: int, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _ in range(n):
            k = self.unpack(depth + 1)
            if not isinstance(k, str):
                raise PackStreamError("map key is not a string")
            out[k] = self.unpack(depth + 1)
        return out

    def _marker(self, m: int, depth: int) -> Any:
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if m in simple:
            return simple[m]
        ints = {0xC8: (">b", 1), 0xC9: (">h", 2), 0xCA: (">i", 4), 0xCB: (">q", 8)}
        if m in ints:
            return self._u(*ints[m])
        if m == 0xC1:
            return float(struct.unpack(">d", self._take(8))[0])
        sizes = {0: (">B", 1), 1: (">H", 2), 2: (">I", 4)}
        if 0xCC <= m <= 0xCE:
            return self._take(self._u(*sizes[m - 0xCC]))
        if 0xD0 <= m <= 0xD2:
            return self._str(self._u(*sizes[m - 0xD0]))
        if 0xD4 <= m <= 0xD6:
            return [self.unpack(depth + 1) for _ in range(self._u(*sizes[m - 0xD4]))]
        if 0xD8 <= m <= 0xDA:
            return self._map(self._u(*sizes[m - 0xD8]), depth)
        raise PackStreamError(f"unknown marker 0x{m:02X}")


def unpack_message(data: bytes) -> Structure:
    """Decode one whole Bolt message; it must be exactly one structure."""
    u = Unpacker(data)
    msg = u.unpack()
    if not isinstance(msg, Structure) or u.pos != len(data):
        raise PackStreamError("a Bolt message must be exactly one structure")
    return msg


def chunk_message(payload: bytes) -> bytes:
    """Frame one message as chunks plus the `00 00` end marker (reference 1.2)."""
    out = bytearray()
    for i in range(0, len(payload), MAX_CHUNK):
        part = payload[i : i + MAX_CHUNK]
        out += struct.pack(">H", len(part)) + part
    out += b"\x00\x00"
    return bytes(out)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly n bytes; raise ConnectionError when the peer closes first."""
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("peer closed the connection")
        buf += part
    return bytes(buf)


def read_message(sock: socket.socket, max_size: int = 64 * 1024 * 1024) -> bytes:
    """Read one chunked message, skipping NOOP chunks (a bare `00 00`)."""
    buf = bytearray()
    while True:
        size = struct.unpack(">H", recv_exact(sock, 2))[0]
        if size == 0:
            if buf:
                return bytes(buf)
            continue  # NOOP keep-alive
        buf += recv_exact(sock, size)
        if len(buf) > max_size:
            raise PackStreamError("message too large")
