"""Binary envelope shared by every sketch's ``to_bytes`` / ``from_bytes``.

Layout: 4-byte magic, u32 header length, an orjson header (the sketch type
name plus JSON-safe configuration), then length-prefixed blobs (numpy array
bytes or native DataSketches serializations). Float scalars go in a float64
blob rather than the header because JSON cannot carry NaN or infinity.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import orjson

_MAGIC = b"DLS1"
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def pack(kind: str, header: dict[str, Any], blobs: Sequence[bytes]) -> bytes:
    head = orjson.dumps({"kind": kind, **header})
    parts = [_MAGIC, _U32.pack(len(head)), head]
    for blob in blobs:
        parts.append(_U64.pack(len(blob)))
        parts.append(bytes(blob))
    return b"".join(parts)


def kind_of(data: bytes) -> str:
    """The type name in an envelope's header."""
    return _header(memoryview(data))[0]["kind"]


def _header(view: memoryview) -> tuple[dict[str, Any], int]:
    """The envelope's header and the offset of its first blob."""
    if bytes(view[:4]) != _MAGIC:
        raise ValueError("not a driftline sketch serialization")
    (head_len,) = _U32.unpack_from(view, 4)
    return orjson.loads(view[8 : 8 + head_len]), 8 + head_len


def unpack(kind: str, data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    view = memoryview(data)
    header, offset = _header(view)
    if header.pop("kind") != kind:
        raise ValueError(f"serialization is not a {kind}")
    blobs = []
    while offset < len(view):
        (size,) = _U64.unpack_from(view, offset)
        offset += 8
        blobs.append(bytes(view[offset : offset + size]))
        offset += size
    return header, blobs
