"""etcd v3 gRPC, hand-encoded (harness/protowire.py): the one-time-key claim cagate makes, so tests can
make the same claim the filter makes (say, pre-claim a nonce) and measure it.

Field numbers, checked against etcd-io/etcd@c34dc7ee api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto
(unchanged since 3.4, which Debian ships):
  package etcdserverpb; service KV { rpc Range; rpc Put; rpc Txn; ... }  service Lease { rpc LeaseGrant; ... }
    -> /etcdserverpb.KV/Txn  /etcdserverpb.KV/Range  /etcdserverpb.Lease/LeaseGrant
  TxnRequest        { repeated Compare compare = 1; repeated RequestOp success = 2; repeated RequestOp failure = 3; }
  Compare           { CompareResult result = 1; CompareTarget target = 2; bytes key = 3;
                      oneof target_union { int64 version = 4; int64 create_revision = 5; int64 mod_revision = 6;
                                           bytes value = 7; int64 lease = 8; }  bytes range_end = 64; }
                      // CompareResult EQUAL=0 GREATER=1 LESS=2 NOT_EQUAL=3; CompareTarget VERSION=0 CREATE=1 MOD=2 VALUE=3 LEASE=4
  RequestOp         { oneof request { RangeRequest request_range = 1; PutRequest request_put = 2;
                                      DeleteRangeRequest request_delete_range = 3; TxnRequest request_txn = 4; } }
  PutRequest        { bytes key = 1; bytes value = 2; int64 lease = 3; bool prev_kv = 4; ... }
  TxnResponse       { ResponseHeader header = 1; bool succeeded = 2; repeated ResponseOp responses = 3; }
  ResponseHeader    { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
  LeaseGrantRequest { int64 TTL = 1; int64 ID = 2; }            // ID 0: the server picks one
  LeaseGrantResponse{ ResponseHeader header = 1; int64 ID = 2; int64 TTL = 3; string error = 4; }
  RangeRequest      { bytes key = 1; bytes range_end = 2; ... }
  RangeResponse     { ResponseHeader header = 1; repeated mvccpb.KeyValue kvs = 2; bool more = 3; int64 count = 4; }
  mvccpb.KeyValue   { bytes key = 1; int64 create_revision = 2; int64 mod_revision = 3; int64 version = 4;
                      bytes value = 5; int64 lease = 6; }
"""
from dataclasses import dataclass

from . import protowire as pw

TXN, RANGE, LEASE_GRANT = "/etcdserverpb.KV/Txn", "/etcdserverpb.KV/Range", "/etcdserverpb.Lease/LeaseGrant"
EQUAL, CREATE = 0, 1


def encode_claim(key, value, lease):
    """Txn: if create_revision(key) == 0 (absent) then put(key, value, lease). `create_revision = 0` is in a
    oneof, so it is written explicitly (bytes 28 00); result EQUAL (0) is a plain enum and left out."""
    compare = pw.uint(1, EQUAL) + pw.uint(2, CREATE) + pw.length_delimited(3, key) + pw.uint(5, 0, always=True)
    put = pw.length_delimited(1, key) + pw.length_delimited(2, value) + pw.uint(3, lease)
    return pw.message(1, compare) + pw.message(2, pw.message(2, put))


def decode_txn(buf):
    """-> (succeeded, revision)"""
    f = pw.fields(buf)
    rev = 0
    if 1 in f:
        rev = pw.as_int64(pw.last(pw.fields(pw.last(f, 1)), 3, 0))
    return bool(pw.last(f, 2, 0)), rev


def encode_lease_grant(ttl, lease_id=0):
    return pw.uint(1, ttl) + pw.uint(2, lease_id)


def decode_lease_grant(buf):
    """-> (id, ttl); raises on an `error` field."""
    f = pw.fields(buf)
    err = pw.last(f, 4)
    if err:
        raise RuntimeError(f"LeaseGrant error: {pw.as_str(err)}")
    return pw.as_int64(pw.last(f, 2, 0)), pw.as_int64(pw.last(f, 3, 0))


@dataclass
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


def encode_range(key, range_end=b""):
    return pw.length_delimited(1, key) + pw.length_delimited(2, range_end)


def decode_range(buf):
    out = []
    for kv in pw.fields(buf).get(2, []):
        k = pw.fields(kv)
        out.append(KeyValue(bytes(pw.last(k, 1, b"")), bytes(pw.last(k, 5, b"")), pw.as_int64(pw.last(k, 2, 0)),
                            pw.as_int64(pw.last(k, 3, 0)), pw.as_int64(pw.last(k, 4, 0)),
                            pw.as_int64(pw.last(k, 6, 0))))
    return out


def _b(x):
    return x.encode() if isinstance(x, str) else bytes(x)


class EtcdClient:
    """`EtcdClient(port).claim("cagate/n/abc", lease=EtcdClient(port).lease_grant(60)[0])` -> True once."""

    def __init__(self, port, host="127.0.0.1"):
        import grpc
        self.channel = grpc.insecure_channel(f"{host}:{port}")
        ident = lambda b: b  # noqa: E731
        self._txn = self.channel.unary_unary(TXN, request_serializer=ident, response_deserializer=decode_txn)
        self._grant = self.channel.unary_unary(LEASE_GRANT, request_serializer=ident,
                                               response_deserializer=decode_lease_grant)
        self._range = self.channel.unary_unary(RANGE, request_serializer=ident, response_deserializer=decode_range)

    def lease_grant(self, ttl, timeout=5.0):
        """-> (lease id, granted ttl)"""
        return self._grant(encode_lease_grant(ttl), timeout=timeout)

    def claim(self, key, value=b"1", lease=0, timeout=5.0):
        """True when this call created the key (it was absent), False when it already existed."""
        return self._txn(encode_claim(_b(key), _b(value), lease), timeout=timeout)[0]

    def get(self, key, timeout=5.0):
        kvs = self._range(encode_range(_b(key)), timeout=timeout)
        return kvs[0] if kvs else None

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
