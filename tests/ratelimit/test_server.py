"""The test rate limit service (server.py) against a real Redis, through real gRPC, with the hand-written
wire format; and that wire format against the official generated protos (PyPI xds-protos)."""
import threading
import time
from concurrent import futures

import grpc
import pytest

from harness.engines import RateLimitService
from ratelimit import rls
from ratelimit.rls import DAY, HOUR, MINUTE, OK, OVER_LIMIT, SECOND, Descriptor, RlsClient
from ratelimit.server import RateLimitServer, cache_key


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def rls_proc(redis_db):
    """The service as a subprocess (the CLI), as e2e tests run it."""
    with RateLimitService(redis_db.port) as s, s.client() as c:
        yield s, c


@pytest.fixture
def rls_clocked(redis_db):
    """In process, with a clock the test sets."""
    clock = Clock(1_800_000_030)   # 30 s into a minute, 30 s into an hour (1_800_000_000 % 3600 == 0)
    with RateLimitServer(redis_db.port, clock=clock) as s, RlsClient(s.port) as c:
        yield s, c, clock


def app(key, rpu, unit=MINUTE, **kw):
    return Descriptor([("app", key)], limit=(rpu, unit), **kw)


def test_five_per_minute_then_over_limit(rls_proc):
    _, c = rls_proc
    for i in range(5):
        r = c.should_rate_limit("cagate", [app("k1", 5)])
        assert r.overall_code == OK
        (s,) = r.statuses
        assert (s.code, s.limit_remaining) == (OK, 4 - i)
        assert s.current_limit == rls.RateLimit(5, MINUTE)
        assert 0 < s.duration_until_reset[0] <= 60 and s.duration_until_reset[1] == 0
    r = c.should_rate_limit("cagate", [app("k1", 5)])
    assert r.overall_code == OVER_LIMIT
    (s,) = r.statuses
    assert (s.code, s.limit_remaining, s.current_limit) == (OVER_LIMIT, 0, rls.RateLimit(5, MINUTE))
    assert 0 < s.duration_until_reset[0] <= 60
    # Over-limit hits are still counted (as envoyproxy/ratelimit does, without STOP_CACHE_KEY_INCREMENT…).
    assert c.should_rate_limit("cagate", [app("k1", 5)]).overall_code == OVER_LIMIT
    # Another value is another counter.
    assert c.should_rate_limit("cagate", [app("k2", 5)]).statuses[0].limit_remaining == 4


def test_two_descriptors_one_over(rls_proc, redis_db):
    _, c = rls_proc
    api, user = Descriptor([("api", "orders")], limit=(100, HOUR)), Descriptor([("app", "k"), ("api", "orders")],
                                                                               limit=(1, MINUTE))
    r = c.should_rate_limit("cagate", [api, user])
    assert r.overall_code == OK and [s.code for s in r.statuses] == [OK, OK]
    r = c.should_rate_limit("cagate", [api, user])
    assert r.overall_code == OVER_LIMIT
    assert [s.code for s in r.statuses] == [OK, OVER_LIMIT]
    assert [s.limit_remaining for s in r.statuses] == [98, 0]
    assert r.statuses[0].current_limit == rls.RateLimit(100, HOUR)
    assert 0 < r.statuses[0].duration_until_reset[0] <= 3600
    # Both counters were incremented in both calls (envoyproxy/ratelimit increments every descriptor).
    keys = sorted(redis_db.client().keys("*"))
    assert len(keys) == 2
    assert [redis_db.client().get(k) for k in keys] == ["2", "2"]


def test_no_override_is_unlimited_and_not_stored(rls_proc, redis_db):
    _, c = rls_proc
    for _ in range(3):
        r = c.should_rate_limit("cagate", [Descriptor([("app", "k")]), app("k", 1, HOUR, hits_addend=0)])
        assert r.overall_code == OK
        assert r.statuses[0] == rls.DescriptorStatus(OK, None, 0, None)   # no limit: OK, nothing else
        assert r.statuses[1].code == OK and r.statuses[1].limit_remaining == 1    # check only
    # Only the limited descriptor has a counter, and check-only calls left it at 0.
    (key,) = redis_db.client().keys("*")
    assert key.startswith("cagate_app_k_") and redis_db.client().get(key) == "0"


def test_configured_limit_applies_to_its_descriptor_without_override(redis_db):
    # What Envoy's own ratelimit filter sends: entries only, the limit in the service's configuration.
    with RateLimitService(redis_db.port, limits=["envoy:generic_key=orders:2:MINUTE"]) as s, s.client() as c:
        mine = Descriptor([("generic_key", "orders")])
        assert [c.should_rate_limit("envoy", [mine]).overall_code for _ in range(3)] == [OK, OK, OVER_LIMIT]
        assert c.should_rate_limit("envoy", [mine]).statuses[0].current_limit == rls.RateLimit(2, MINUTE)
        # Another domain, other entries: not configured, unlimited; an override still wins.
        assert c.should_rate_limit("other", [mine]).statuses[0] == rls.DescriptorStatus(OK, None, 0, None)
        assert c.should_rate_limit("envoy", [Descriptor([("generic_key", "x")])]).overall_code == OK
        assert c.should_rate_limit("envoy", [Descriptor([("generic_key", "orders")], limit=(100, MINUTE))]).overall_code == OK
    (key,) = redis_db.client().keys("envoy_*")
    assert key.startswith("envoy_generic_key_orders_") and redis_db.client().get(key) == "5"


def test_keys_windows_and_hits(rls_clocked, redis_db):
    _, c, clock = rls_clocked
    rd = redis_db.client()
    t = clock.t
    minute_start = t // 60 * 60
    # The key layout of envoyproxy/ratelimit: domain_key_value_key_value_<window start>.
    key = f"cagate_app_k_api_7_{minute_start}"
    d = Descriptor([("app", "k"), ("api", "7")], limit=(10, MINUTE))
    r = c.should_rate_limit("cagate", [d], hits_addend=3)
    assert r.statuses[0].limit_remaining == 7
    assert r.statuses[0].duration_until_reset == (60 - t % 60, 0) == (30, 0)
    assert rd.get(key) == "3" and 0 < rd.ttl(key) <= 60
    # A per-descriptor hits_addend overrides the request's; 0 only checks.
    d0 = Descriptor(d.entries, limit=d.limit, hits_addend=0)
    assert c.should_rate_limit("cagate", [d0], hits_addend=5).statuses[0].limit_remaining == 7
    assert rd.get(key) == "3"
    d7 = Descriptor(d.entries, limit=d.limit, hits_addend=7)
    r = c.should_rate_limit("cagate", [d7])
    assert (r.overall_code, r.statuses[0].limit_remaining) == (OK, 0)
    r = c.should_rate_limit("cagate", [d])           # request hits_addend 0 counts as 1
    assert r.overall_code == OVER_LIMIT and rd.get(key) == "11"
    # Later in the same minute: same key, shorter reset.
    clock.t = minute_start + 59
    r = c.should_rate_limit("cagate", [d])
    assert r.overall_code == OVER_LIMIT and r.statuses[0].duration_until_reset == (1, 0)
    # The next minute is a new key and a fresh quota; the old key stays until its TTL.
    clock.t = minute_start + 60
    r = c.should_rate_limit("cagate", [d])
    assert (r.overall_code, r.statuses[0].limit_remaining, r.statuses[0].duration_until_reset) == (OK, 9, (60, 0))
    assert rd.get(f"cagate_app_k_api_7_{minute_start + 60}") == "1" and rd.get(key) == "12"
    # Units are calendar-aligned windows: SECOND, HOUR, DAY.
    clock.t = 1_800_000_030
    for unit, size in ((SECOND, 1), (HOUR, 3600), (DAY, 86400)):
        r = c.should_rate_limit("cagate", [Descriptor([("u", str(unit))], limit=(1, unit))])
        assert r.statuses[0].duration_until_reset == (size - clock.t % size, 0)
        assert rd.get(f"cagate_u_{unit}_{clock.t // size * size}") == "1"
        assert 0 < rd.ttl(f"cagate_u_{unit}_{clock.t // size * size}") <= size


def test_concurrent_hits_are_exact(rls_proc):
    """200 parallel calls on 16 channels against limit 20: exactly 20 admitted (INCRBY decides)."""
    s, _ = rls_proc
    clients = [RlsClient(s.port) for _ in range(16)]
    try:
        with futures.ThreadPoolExecutor(32) as ex:
            codes = list(ex.map(lambda i: clients[i % 16].should_rate_limit(
                "cagate", [app("burst", 20, HOUR)], timeout=10).overall_code, range(200)))
    finally:
        for c in clients:
            c.close()
    assert codes.count(OK) == 20 and codes.count(OVER_LIMIT) == 180


def test_delay_mode_answers_late(redis_db):
    with RateLimitService(redis_db.port, delay_ms=400) as s, s.client() as c:
        with pytest.raises(grpc.RpcError) as e:
            c.should_rate_limit("cagate", [app("slow", 5)], timeout=0.1)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        t = time.monotonic()
        r = c.should_rate_limit("cagate", [app("slow", 5)], timeout=5)
        assert time.monotonic() - t >= 0.4
        # The timed-out call was counted too: the hit is made before the delay.
        assert r.overall_code == OK and r.statuses[0].limit_remaining == 3


@pytest.mark.parametrize("fail, code", [("UNAVAILABLE", grpc.StatusCode.UNAVAILABLE),
                                        ("UNKNOWN", grpc.StatusCode.UNKNOWN)])
def test_fail_mode(redis_db, fail, code):
    with RateLimitService(redis_db.port, fail=fail) as s, s.client() as c:
        with pytest.raises(grpc.RpcError) as e:
            c.should_rate_limit("cagate", [app("f", 5)])
        assert e.value.code() == code
    assert redis_db.client().keys("*") == []


def test_errors_are_unknown_like_envoyproxy_ratelimit(redis_db):
    with RateLimitServer(redis_db.port) as s, RlsClient(s.port) as c:
        for domain, descriptors in (("", [app("x", 1)]), ("cagate", [])):
            with pytest.raises(grpc.RpcError) as e:
                c.should_rate_limit(domain, descriptors)
            assert e.value.code() == grpc.StatusCode.UNKNOWN
        assert s.calls == 2


def test_redis_down_is_a_fast_unknown_then_recovers():
    from harness.engines import Redis
    with Redis() as r, RateLimitService(r.port) as s, s.client() as c:
        assert c.should_rate_limit("cagate", [app("d", 5)]).overall_code == OK
        r.stop()
        t = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            c.should_rate_limit("cagate", [app("d", 5)])
        assert e.value.code() == grpc.StatusCode.UNKNOWN and time.monotonic() - t < 0.5
        r.start()   # a new, empty Redis: counters restart
        assert c.should_rate_limit("cagate", [app("d", 5)]).statuses[0].limit_remaining == 4


def test_empty_statuses_mode_and_restart(redis_db):
    with RateLimitService(redis_db.port, empty_statuses=True) as s:
        with s.client() as c:
            r = c.should_rate_limit("cagate", [app("e", 1)])
            assert (r.overall_code, r.statuses) == (OK, [])
            assert c.should_rate_limit("cagate", [app("e", 1)]).overall_code == OVER_LIMIT
        port = s.port
        s.restart(empty_statuses=False)
        assert s.port == port
        with s.client() as c:
            assert c.should_rate_limit("cagate", [app("e", 1)]).statuses[0].code == OVER_LIMIT


def test_in_process_records_calls_and_metadata(redis_db):
    with RateLimitService(redis_db.port, in_process=True) as s, s.client() as c:
        c.should_rate_limit("cagate", [app("m", 1)], metadata=[("x-request-id", "abc")])
        assert s.server.calls == 1
        req, md = s.server.recent[-1]
        assert req.domain == "cagate" and req.descriptors[0].entries == [("app", "m")]
        assert md["x-request-id"] == "abc"
        s.server.fail = "UNAVAILABLE"   # switches are live in process
        with pytest.raises(grpc.RpcError):
            c.should_rate_limit("cagate", [app("m", 1)])


def test_grpc_health_check(rls_proc):
    s, _ = rls_proc
    with grpc.insecure_channel(f"127.0.0.1:{s.port}") as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
        assert check(b"", timeout=2) == b"\x08\x01"   # HealthCheckResponse{status: SERVING}


# ---- the hand-written wire format against the official generated code (PyPI xds-protos) ----------

def _official():
    rls_pb2 = pytest.importorskip("envoy.service.ratelimit.v3.rls_pb2")
    common = pytest.importorskip("envoy.extensions.common.ratelimit.v3.ratelimit_pb2")
    return rls_pb2, common


SAMPLE_REQUEST = rls.Request("cagate", [
    Descriptor([("api", "orders"), ("app", "k-1")], limit=(20, MINUTE)),
    Descriptor([("once", "ab" * 16)], limit=(1, DAY), hits_addend=0),     # set to 0: presence matters
    Descriptor([("app", "用户")], hits_addend=2 ** 40),
    Descriptor([("k", "")]),
], hits_addend=3)


def test_request_encoding_matches_official_protos():
    rls_pb2, _ = _official()
    ours = rls.encode_request(SAMPLE_REQUEST)
    msg = rls_pb2.RateLimitRequest.FromString(ours)
    assert msg.domain == "cagate" and msg.hits_addend == 3 and len(msg.descriptors) == 4
    d0, d1, d2, d3 = msg.descriptors
    assert [(e.key, e.value) for e in d0.entries] == [("api", "orders"), ("app", "k-1")]
    assert d0.HasField("limit") and (d0.limit.requests_per_unit, d0.limit.unit) == (20, MINUTE)
    assert not d0.HasField("hits_addend")
    assert d1.HasField("hits_addend") and d1.hits_addend.value == 0 and d1.limit.unit == DAY
    assert d2.hits_addend.value == 2 ** 40 and not d2.HasField("limit") and d2.entries[0].value == "用户"
    assert d3.entries[0].key == "k" and d3.entries[0].value == ""
    # And back: the official encoding decodes to the same request; same bytes both ways.
    assert rls.decode_request(msg.SerializeToString()) == SAMPLE_REQUEST
    assert msg.SerializeToString() == ours


def test_response_encoding_matches_official_protos():
    rls_pb2, _ = _official()
    R = rls_pb2.RateLimitResponse
    official = R(overall_code=R.OVER_LIMIT, statuses=[
        R.DescriptorStatus(code=R.OK, current_limit=R.RateLimit(requests_per_unit=20, unit=R.RateLimit.MINUTE),
                           limit_remaining=7, duration_until_reset={"seconds": 42}),
        R.DescriptorStatus(code=R.OVER_LIMIT, current_limit=R.RateLimit(requests_per_unit=1, unit=R.RateLimit.WEEK,
                                                                         name="n"),
                           duration_until_reset={"seconds": 0, "nanos": -5}),
        R.DescriptorStatus(code=R.OK),
    ], response_headers_to_add=[{"key": "x-ratelimit-limit", "value": "20"}],
        request_headers_to_add=[{"key": "x-a", "raw_value": b"b"}], raw_body=b"body",
        dynamic_metadata={"fields": {"a": {"string_value": "b"}}})    # not decoded by us: skipped
    ours = rls.decode_response(official.SerializeToString())
    assert ours.overall_code == OVER_LIMIT
    assert ours.statuses == [
        rls.DescriptorStatus(OK, rls.RateLimit(20, MINUTE), 7, (42, 0)),
        rls.DescriptorStatus(OVER_LIMIT, rls.RateLimit(1, rls.WEEK, "n"), 0, (0, -5)),
        rls.DescriptorStatus(OK, None, 0, None)]
    assert ours.response_headers_to_add == [("x-ratelimit-limit", "20")]
    assert ours.request_headers_to_add == [("x-a", "b")]
    assert ours.raw_body == b"body"
    # Our encoder, read by the official code.
    back = R.FromString(rls.encode_response(ours))
    official.ClearField("dynamic_metadata")
    # HeaderValue raw_value comes back as value (we keep one string per header).
    official.request_headers_to_add[0].ClearField("raw_value")
    official.request_headers_to_add[0].value = "b"
    assert back == official


def test_official_request_bytes_through_the_server(rls_proc):
    rls_pb2, _ = _official()
    _, c = rls_proc
    raw = rls.encode_request(rls.Request("cagate", [app("official", 2)]))
    req = rls_pb2.RateLimitRequest.FromString(raw).SerializeToString()
    out = rls_pb2.RateLimitResponse.FromString(c.raw(req))
    assert out.overall_code == rls_pb2.RateLimitResponse.OK
    assert out.statuses[0].limit_remaining == 1 and out.statuses[0].current_limit.requests_per_unit == 2
    assert 0 < out.statuses[0].duration_until_reset.seconds <= 60
