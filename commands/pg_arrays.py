"""One-dimensional PostgreSQL arrays in binary wire format, built in one pass (issue 15).

The log's save sends each batch as four arrays (ids, versions, topics, states). psycopg's generic
list dumper looks at the elements to choose a type, then dumps them one by one through a dumper
each; here every element is already bytes (or one struct call), so an array is one `join`. It is
built before the save's transaction starts, so none of this work happens while the log's table
lock is held. The parameter is sent with an unknown type: the statement's cast (`%b::uuid[]`)
names it, and the server checks the element type written in the array's header against it."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from uuid import UUID

from psycopg import Cursor, pq
from psycopg.adapt import Dumper

UUID_OID, INT8_OID, TEXT_OID, BYTEA_OID = 2950, 20, 25, 17

_HEADER = struct.Struct(">iiiii")  # dimensions, has nulls, element type, length, lower bound
_LENGTH = struct.Struct(">i")
_INT8 = struct.Struct(">iq")  # an int8 element: its length (8) and its value


class BinaryArray(bytes):
    """An array already in PostgreSQL's binary format."""


class _BinaryArrayDumper(Dumper):
    format = pq.Format.BINARY

    def dump(self, obj: BinaryArray) -> bytes:
        return obj


def accept_binary_arrays(cursor: Cursor[object]) -> None:
    """This cursor (its own copy of the adapters, not the connection's) sends BinaryArray as is."""
    cursor.adapters.register_dumper(BinaryArray, _BinaryArrayDumper)


def _array(element_oid: int, items: Sequence[bytes]) -> BinaryArray:
    length = _LENGTH.pack
    return BinaryArray(_HEADER.pack(1, 0, element_oid, len(items), 1) + b"".join([length(len(i)) + i for i in items]))


def uuid_array(values: Iterable[UUID]) -> BinaryArray:
    return _array(UUID_OID, [v.bytes for v in values])


def int8_array(values: Sequence[int]) -> BinaryArray:
    header = _HEADER.pack(1, 0, INT8_OID, len(values), 1)
    return BinaryArray(header + b"".join([_INT8.pack(8, v) for v in values]))


def text_array(values: Iterable[str]) -> BinaryArray:
    return _array(TEXT_OID, [v.encode() for v in values])


def bytea_array(values: Sequence[bytes]) -> BinaryArray:
    return _array(BYTEA_OID, values)
