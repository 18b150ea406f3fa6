"""Envoy RLS v3 messages, encoded and decoded by hand (tests/harness/protowire.py), plus a tiny client.

Field numbers, checked against envoyproxy/data-plane-api@84e84367 (2026-01-29), the same files as
envoyproxy/envoy api/…:

  envoy/service/ratelimit/v3/rls.proto
    service RateLimitService { rpc ShouldRateLimit(RateLimitRequest) returns (RateLimitResponse) }
      -> gRPC path /envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit
    RateLimitRequest  { string domain = 1;
                        repeated extensions.common.ratelimit.v3.RateLimitDescriptor descriptors = 2;
                        uint32 hits_addend = 3; }                 // 0 (unset) means 1
    RateLimitResponse { Code overall_code = 1;                     // enum Code {UNKNOWN=0; OK=1; OVER_LIMIT=2}
                        repeated DescriptorStatus statuses = 2;
                        repeated config.core.v3.HeaderValue response_headers_to_add = 3;
                        repeated config.core.v3.HeaderValue request_headers_to_add = 4;
                        bytes raw_body = 5;
                        google.protobuf.Struct dynamic_metadata = 6;
                        Quota quota = 7; }
      RateLimit        { string name = 3; uint32 requests_per_unit = 1; Unit unit = 2; }
                         // enum Unit {UNKNOWN=0; SECOND=1; MINUTE=2; HOUR=3; DAY=4; WEEK=7; MONTH=5; YEAR=6}
      DescriptorStatus { Code code = 1; RateLimit current_limit = 2; uint32 limit_remaining = 3;
                         google.protobuf.Duration duration_until_reset = 4; Quota quota = 5; }
      Quota            { uint32 requests = 1; oneof {Timestamp valid_until = 2;} string id = 3; }  (not used)

  envoy/extensions/common/ratelimit/v3/ratelimit.proto
    RateLimitDescriptor { repeated Entry entries = 1; RateLimitOverride limit = 2;
                          google.protobuf.UInt64Value hits_addend = 3; }  // set (even to 0) overrides the request's
      Entry             { string key = 1; string value = 2; }
      RateLimitOverride { uint32 requests_per_unit = 1; type.v3.RateLimitUnit unit = 2; }
                          // envoy/type/v3/ratelimit_unit.proto: UNKNOWN=0 SECOND=1 MINUTE=2 HOUR=3 DAY=4 MONTH=5 YEAR=6
                          // (no WEEK there; the server casts the number into RateLimit.Unit)

  envoy/config/core/v3/base.proto   HeaderValue { string key = 1; string value = 2; bytes raw_value = 3; }
  google/protobuf/duration.proto    Duration    { int64 seconds = 1; int32 nanos = 2; }
  google/protobuf/wrappers.proto    UInt64Value { uint64 value = 1; }
"""
import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import protowire as pw  # noqa: E402

SERVICE = "envoy.service.ratelimit.v3.RateLimitService"
METHOD = "ShouldRateLimit"
PATH = f"/{SERVICE}/{METHOD}"

UNKNOWN, OK, OVER_LIMIT = 0, 1, 2
CODE_NAMES = {UNKNOWN: "UNKNOWN", OK: "OK", OVER_LIMIT: "OVER_LIMIT"}

SECOND, MINUTE, HOUR, DAY, MONTH, YEAR, WEEK = 1, 2, 3, 4, 5, 6, 7
UNIT_NAMES = {SECOND: "SECOND", MINUTE: "MINUTE", HOUR: "HOUR", DAY: "DAY", WEEK: "WEEK", MONTH: "MONTH",
              YEAR: "YEAR"}
# envoyproxy/ratelimit src/utils/utilities.go UnitToDivider (MONTH is 30 days, YEAR 365).
UNIT_SECONDS = {SECOND: 1, MINUTE: 60, HOUR: 3600, DAY: 86400, WEEK: 7 * 86400, MONTH: 30 * 86400,
                YEAR: 365 * 86400}


# ---- request --------------------------------------------------------------------------------------

@dataclass
class Descriptor:
    entries: List[Tuple[str, str]]
    limit: Optional[Tuple[int, int]] = None    # (requests_per_unit, unit) override
    hits_addend: Optional[int] = None          # per-descriptor UInt64Value; None = not set


@dataclass
class Request:
    domain: str
    descriptors: List[Descriptor]
    hits_addend: int = 0


def encode_descriptor(d):
    out = b"".join(pw.message(1, pw.length_delimited(1, k) + pw.length_delimited(2, v)) for k, v in d.entries)
    if d.limit is not None:
        rpu, unit = d.limit
        out += pw.message(2, pw.uint(1, rpu) + pw.uint(2, unit))
    if d.hits_addend is not None:
        out += pw.message(3, pw.uint(1, d.hits_addend))
    return out


def encode_request(req):
    return (pw.length_delimited(1, req.domain)
            + b"".join(pw.message(2, encode_descriptor(d)) for d in req.descriptors)
            + pw.uint(3, req.hits_addend))


def decode_descriptor(buf):
    f = pw.fields(buf)
    entries = []
    for e in f.get(1, []):
        ef = pw.fields(e)
        entries.append((pw.as_str(pw.last(ef, 1, b"")), pw.as_str(pw.last(ef, 2, b""))))
    limit = None
    if 2 in f:
        lf = pw.fields(pw.last(f, 2))
        limit = (pw.as_uint32(pw.last(lf, 1, 0)), pw.as_int64(pw.last(lf, 2, 0)))
    hits = None
    if 3 in f:
        hits = pw.last(pw.fields(pw.last(f, 3)), 1, 0)
    return Descriptor(entries, limit, hits)


def decode_request(buf):
    f = pw.fields(buf)
    return Request(domain=pw.as_str(pw.last(f, 1, b"")),
                   descriptors=[decode_descriptor(d) for d in f.get(2, [])],
                   hits_addend=pw.as_uint32(pw.last(f, 3, 0)))


# ---- response -------------------------------------------------------------------------------------

@dataclass
class RateLimit:
    requests_per_unit: int
    unit: int
    name: str = ""


@dataclass
class DescriptorStatus:
    code: int
    current_limit: Optional[RateLimit] = None
    limit_remaining: int = 0
    duration_until_reset: Optional[Tuple[int, int]] = None   # (seconds, nanos)


@dataclass
class Response:
    overall_code: int
    statuses: List[DescriptorStatus] = field(default_factory=list)
    response_headers_to_add: List[Tuple[str, str]] = field(default_factory=list)
    request_headers_to_add: List[Tuple[str, str]] = field(default_factory=list)
    raw_body: bytes = b""


def _encode_headers(fieldno, headers):
    return b"".join(pw.message(fieldno, pw.length_delimited(1, k) + pw.length_delimited(2, v)) for k, v in headers)


def encode_status(s):
    out = pw.uint(1, s.code)
    if s.current_limit is not None:
        cl = s.current_limit
        out += pw.message(2, pw.uint(1, cl.requests_per_unit) + pw.uint(2, cl.unit) + pw.length_delimited(3, cl.name))
    out += pw.uint(3, s.limit_remaining)
    if s.duration_until_reset is not None:
        sec, nanos = s.duration_until_reset
        out += pw.message(4, pw.uint(1, sec) + pw.uint(2, nanos))
    return out


def encode_response(r):
    return (pw.uint(1, r.overall_code)
            + b"".join(pw.message(2, encode_status(s)) for s in r.statuses)
            + _encode_headers(3, r.response_headers_to_add)
            + _encode_headers(4, r.request_headers_to_add)
            + pw.length_delimited(5, r.raw_body))


def _decode_headers(values):
    out = []
    for h in values:
        hf = pw.fields(h)
        value = pw.last(hf, 2)
        if value is None:
            value = pw.last(hf, 3, b"")   # raw_value
        out.append((pw.as_str(pw.last(hf, 1, b"")), pw.as_str(value)))
    return out


def decode_status(buf):
    f = pw.fields(buf)
    cl = None
    if 2 in f:
        cf = pw.fields(pw.last(f, 2))
        cl = RateLimit(pw.as_uint32(pw.last(cf, 1, 0)), pw.as_int64(pw.last(cf, 2, 0)), pw.as_str(pw.last(cf, 3, b"")))
    dur = None
    if 4 in f:
        df = pw.fields(pw.last(f, 4))
        dur = (pw.as_int64(pw.last(df, 1, 0)), pw.as_int64(pw.last(df, 2, 0)))
    return DescriptorStatus(pw.as_int64(pw.last(f, 1, 0)), cl, pw.as_uint32(pw.last(f, 3, 0)), dur)


def decode_response(buf):
    f = pw.fields(buf)
    return Response(overall_code=pw.as_int64(pw.last(f, 1, 0)),
                    statuses=[decode_status(s) for s in f.get(2, [])],
                    response_headers_to_add=_decode_headers(f.get(3, [])),
                    request_headers_to_add=_decode_headers(f.get(4, [])),
                    raw_body=bytes(pw.last(f, 5, b"")))


# ---- client ---------------------------------------------------------------------------------------

class RlsClient:
    """`RlsClient(port).should_rate_limit("cagate", [Descriptor([("app", "k")], limit=(5, MINUTE))])`."""

    def __init__(self, port, host="127.0.0.1"):
        import grpc
        self.channel = grpc.insecure_channel(f"{host}:{port}")
        self._call = self.channel.unary_unary(PATH, request_serializer=encode_request,
                                              response_deserializer=decode_response)

    def should_rate_limit(self, domain, descriptors, hits_addend=0, timeout=2.0, metadata=None):
        """Raises grpc.RpcError on a non-OK gRPC status (`e.code()`)."""
        return self._call(Request(domain, list(descriptors), hits_addend), timeout=timeout, metadata=metadata)

    def raw(self, request_bytes, timeout=2.0):
        """Sends pre-encoded bytes (say, produced by the official generated code)."""
        call = self.channel.unary_unary(PATH, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return call(request_bytes, timeout=timeout)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
