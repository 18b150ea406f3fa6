"""Just enough of the protobuf wire format to hand-encode and hand-decode the few messages the tests
need (Envoy RLS v3, etcd v3 KV/Lease), with no generated code and no protoc.

Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (3/4, groups, are refused).
Encoding follows proto3: a scalar equal to its default is left out unless `always=True` (needed for a
field inside a oneof, which has presence: etcd's `Compare.create_revision = 0` must be on the wire).
"""

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
_U64 = 1 << 64


class DecodeError(ValueError):
    pass


def varint(n):
    """Unsigned LEB128; a negative int64/int32 is written as its 64-bit two's complement (10 bytes)."""
    if n < 0:
        n += _U64
    if not 0 <= n < _U64:
        raise ValueError(f"varint out of range: {n}")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire_type):
    return varint((field << 3) | wire_type)


def uint(field, n, always=False):
    """uint32/uint64/int32/int64/enum/bool field (varint)."""
    n = int(n)
    if n == 0 and not always:
        return b""
    return key(field, VARINT) + varint(n)


def length_delimited(field, data, always=False):
    """bytes/string field, or an already-encoded embedded message. An embedded message that is set
    but empty must still be written (`always=True`), since its presence is meaningful."""
    if isinstance(data, str):
        data = data.encode()
    if not data and not always:
        return b""
    return key(field, LEN) + varint(len(data)) + bytes(data)


def message(field, encoded):
    """An embedded message that is set (written even when all its fields are defaults)."""
    return length_delimited(field, encoded, always=True)


def _read_varint(buf, i):
    shift = result = 0
    while True:
        if i >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result & (_U64 - 1), i
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def parse(buf):
    """The fields of one message as a list of (field, wire_type, value): an int for varint and
    fixed fields, bytes for length-delimited ones. Unknown fields are simply returned too."""
    buf = bytes(buf)
    out = []
    i = 0
    while i < len(buf):
        k, i = _read_varint(buf, i)
        field, wt = k >> 3, k & 7
        if field == 0:
            raise DecodeError("field number 0")
        if wt == VARINT:
            v, i = _read_varint(buf, i)
        elif wt == FIXED64:
            if i + 8 > len(buf):
                raise DecodeError("truncated fixed64")
            v, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == FIXED32:
            if i + 4 > len(buf):
                raise DecodeError("truncated fixed32")
            v, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        elif wt == LEN:
            n, i = _read_varint(buf, i)
            if i + n > len(buf):
                raise DecodeError("truncated length-delimited field")
            v, i = buf[i:i + n], i + n
        else:
            raise DecodeError(f"unsupported wire type {wt}")
        out.append((field, wt, v))
    return out


def fields(buf):
    """{field: [values in wire order]}: the last value wins for a scalar, all of them count for a
    repeated field (see `last`)."""
    d = {}
    for f, _, v in parse(buf):
        d.setdefault(f, []).append(v)
    return d


def last(d, field, default=None):
    vs = d.get(field)
    return vs[-1] if vs else default


def as_int64(n):
    """A varint read back as a signed int64 (or int32, which is sign-extended to 64 bits)."""
    return n - _U64 if n >= 1 << 63 else n


def as_uint32(n):
    return n & 0xFFFFFFFF


def as_str(b):
    return bytes(b).decode("utf-8")


def may_parse(buf):
    """Whether protobuf's parser could accept `buf` as some message: well-formed tags (field > 0, wire
    types 0/1/2/5, groups 3..4 properly nested) with enough bytes. Conservative: a length-delimited
    field's content is not looked into (the real parser may still refuse it, say as bad UTF-8)."""
    buf = bytes(buf)
    i, groups = 0, []
    try:
        while i < len(buf):
            k, i = _read_varint(buf, i)
            f, wt = k >> 3, k & 7
            if f == 0:
                return False
            if wt == VARINT:
                _, i = _read_varint(buf, i)
            elif wt == FIXED64:
                i += 8
            elif wt == FIXED32:
                i += 4
            elif wt == LEN:
                n, i = _read_varint(buf, i)
                i += n
            elif wt == 3:
                groups.append(f)
            elif wt == 4:
                if not groups or groups.pop() != f:
                    return False
            else:
                return False
            if i > len(buf):
                return False
    except DecodeError:
        return False
    return not groups
