"""One gateway across two Envoys: trafficControl counted by a rate limit service (the test-only stand-in
with envoyproxy/ratelimit's algorithm, on Debian's Redis), X-Ca-Nonce claimed once in Debian's etcd.
Both Envoys run one configuration, --concurrency 2 each."""
import concurrent.futures
import random
import re
import time
import uuid

import pytest

from conftest import KEY1, SECRET1, call
from harness.engines import Etcd, RateLimitService, Redis, etcd_keys, etcd_lease_of, grpc_cluster
from harness.envoy import NATIVE, Envoy
from harness.signer import sign

LIMIT = 10
WIDE = 120


def config(rls_port_name="ratelimit", fail_open=False, timeout_ms=200):
    return {
        "cluster": {
            "rateLimitService": {"grpcCluster": rls_port_name, "domain": "cagate", "timeoutMs": timeout_ms,
                                 "failOpen": fail_open},
            "oneTimeKeys": {"etcdCluster": "etcd", "keyPrefix": "cagate/", "timeoutMs": timeout_ms},
        },
        "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
        "plugins": [{"name": "hourly", "type": "trafficControl",
                     "data": {"unit": "HOUR", "apiDefault": LIMIT}},
                    {"name": "wide", "type": "trafficControl", "data": {"unit": "HOUR", "apiDefault": WIDE}}],
        "apis": [
            {"name": "limited", "method": "GET", "path": "/limited", "authType": "ANONYMOUS",
             "plugins": [{"plugin": "hourly"}]},
            {"name": "wide", "method": "GET", "path": "/wide", "authType": "ANONYMOUS", "plugins": [{"plugin": "wide"}]},
            {"name": "orders", "method": "GET", "path": "/orders/[id]", "authorizations": [{"appId": 10001}]},
        ],
    }


@pytest.fixture(scope="module")
def engines():
    with Redis() as redis, Etcd() as etcd:
        with RateLimitService(redis.port) as rls:
            yield redis, etcd, rls


def envoys(backend_port, rls, etcd, n=2, **kw):
    clusters = [grpc_cluster("ratelimit", rls.port), grpc_cluster("etcd", etcd.port)]
    return [Envoy(config(**kw), backend_port, concurrency=2, extra_clusters=clusters) for _ in range(n)]


@pytest.fixture(scope="module")
def pair(backend, engines):
    _, etcd, rls = engines
    es = envoys(backend.port, rls, etcd)
    for e in es:
        e.start()
    yield es
    for e in es:
        e.stop()


def signed(port, path, headers):
    return call(port, "GET", path, headers)


def test_burst_over_two_envoys_admits_exactly_the_limit(pair):
    """30 requests spread over both Envoys: exactly LIMIT pass, the rest get T429PA with Retry-After."""
    now = time.gmtime()
    if now.tm_min == 59 and now.tm_sec > 50:
        time.sleep(61 - now.tm_sec)  # the hour's window must not roll over mid-burst
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda i: call(pair[i % 2].port, "GET", "/limited"), range(30)))
    ok = [r for r in results if r.status == 200]
    refused = [r for r in results if r.status == 429]
    assert len(ok) == LIMIT, [(r.status, r.code) for r in results]
    assert len(refused) == 30 - LIMIT
    assert all(r.code == "T429PA" and int(r.header("retry-after")) >= 1 for r in refused), refused[:2]
    assert refused[0].header("x-ca-error-message") == f"Throttled by API Flow Control: API limit {LIMIT} per HOUR"


def test_a_burst_counted_in_batches_admits_exactly_the_limit(pair):
    """300 requests at once over both Envoys: exactly WIDE pass, the rest T429PA; on the Wasm build the
    descriptors of requests that arrive while a call is in flight go to the service in one call."""
    now = time.gmtime()
    if now.tm_min == 59 and now.tm_sec > 45:
        time.sleep(61 - now.tm_sec)
    before = [cluster_stat(e, "rls", "batched") for e in pair]
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda i: call(pair[i % 2].port, "GET", "/wide"), range(300)))
    assert sum(r.status == 200 for r in results) == WIDE, sorted({(r.status, r.code) for r in results})
    assert all(r.code == "T429PA" for r in results if r.status != 200)
    time.sleep(1.2)
    batched = sum(cluster_stat(e, "rls", "batched") for e in pair) - sum(before)
    assert (batched == 0) if NATIVE else (batched > 0), batched


def test_a_nonce_is_admitted_once_across_envoys(pair, engines):
    """The same signed request sent to both Envoys in parallel: one 200, the rest S403NU, also later."""
    _, etcd, _ = engines
    h = sign("GET", "/orders/1", KEY1, SECRET1)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: signed(pair[i % 2].port, "/orders/1", h), range(16)))
    assert sorted(r.status for r in results) == [200] + [403] * 15, [(r.status, r.code) for r in results]
    assert all(r.code == "S403NU" for r in results if r.status == 403)
    time.sleep(2)
    for e in pair:
        assert signed(e.port, "/orders/1", h).code == "S403NU"
    keys = etcd_keys(etcd.port, "cagate/n/")
    assert keys, "the nonce is claimed in etcd"
    assert all(etcd_lease_of(etcd.port, k) for k in keys), "every one-time key carries a lease"


def cluster_stat(envoy, service, result):
    m = re.search(rf'^cagate_cluster{{cagate_service="{service}",cagate_result="{result}"}} (\d+)', envoy.stats(), re.M)
    return int(m.group(1)) if m else 0


def test_concurrent_claims_share_etcd_transactions_and_each_nonce_passes_once(pair, engines):
    """Many signed requests at once: each fresh nonce passes, exactly one copy of a replayed one does (the
    rest S403NU), and on the Wasm build claims that arrive while one is in flight go to etcd together
    (cagate_cluster{etcd,batched} counts the claims that went in a batch)."""
    jobs = [(f"/orders/f{i}", sign("GET", f"/orders/f{i}", KEY1, SECRET1)) for i in range(160)]
    replayed = sign("GET", "/orders/r", KEY1, SECRET1)
    jobs += [("/orders/r", replayed)] * 24
    random.Random(7).shuffle(jobs)
    before = [cluster_stat(e, "etcd", "batched") for e in pair]
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda ij: (ij[1][0], signed(pair[ij[0] % 2].port, ij[1][0], ij[1][1])), enumerate(jobs)))
    fresh = [r for path, r in results if path != "/orders/r"]
    copies = [r for path, r in results if path == "/orders/r"]
    assert all(r.status == 200 for r in fresh), [(r.status, r.code) for r in fresh if r.status != 200][:5]
    assert sorted(r.status for r in copies) == [200] + [403] * 23, [(r.status, r.code) for r in copies]
    assert all(r.code == "S403NU" for r in copies if r.status == 403)
    time.sleep(1.2)  # stats reach Envoy on the filter's periodic tick
    batched = sum(cluster_stat(e, "etcd", "batched") for e in pair) - sum(before)
    if NATIVE:
        assert batched == 0, "the native build sends each claim itself"
    else:
        assert batched > 0, "no claim went in a batch"
        assert sum(cluster_stat(e, "etcd", "batches") for e in pair) > 0


def test_requests_without_one_time_keys_never_wait_for_etcd(pair, engines):
    """A signed request without a nonce, and an AppCode-free anonymous one, make no etcd call."""
    _, etcd, _ = engines
    before = set(etcd_keys(etcd.port, "cagate/"))
    r = signed(pair[0].port, "/orders/2", sign("GET", "/orders/2", KEY1, SECRET1, nonce=False))
    assert r.status == 200, r
    assert set(etcd_keys(etcd.port, "cagate/")) == before


def test_etcd_down_refuses_nonce_requests_fast_and_recovers(pair, engines):
    """etcd stopped: a nonce request is refused (X503BZ) within the timeout, others pass; etcd back: passes."""
    _, etcd, _ = engines
    etcd.stop()
    try:
        start = time.time()
        r = signed(pair[0].port, "/orders/3", sign("GET", "/orders/3", KEY1, SECRET1))
        took = time.time() - start
        assert r.status == 503 and r.code == "X503BZ", r
        assert took < 1.5, took
        r = signed(pair[1].port, "/orders/3", sign("GET", "/orders/3", KEY1, SECRET1, nonce=False))
        assert r.status == 200, r
    finally:
        etcd.start()
    deadline = time.time() + 10
    while True:
        r = signed(pair[0].port, "/orders/4", sign("GET", "/orders/4", KEY1, SECRET1))
        if r.status == 200 or time.time() > deadline:
            break
        time.sleep(0.3)
    assert r.status == 200, r


def test_rate_limit_service_down_follows_fail_open(backend, engines):
    """RLS stopped: failOpen false refuses with X503BZ, failOpen true admits; both within the timeout."""
    redis, etcd, rls = engines
    closed = envoys(backend.port, rls, etcd, n=1, fail_open=False)[0]
    opened = envoys(backend.port, rls, etcd, n=1, fail_open=True)[0]
    with closed, opened:
        rls.stop()
        try:
            for e, status, code in [(closed, 503, "X503BZ"), (opened, 200, None)]:
                start = time.time()
                r = call(e.port, "GET", "/limited")
                assert (r.status, r.code) == (status, code), r
                assert time.time() - start < 1.5
            time.sleep(1.2)
            stats = opened.stats()
            # Tagged by service and result (envoy/observability/stats-tags.json).
            assert re.search(r'^cagate_cluster\{cagate_service="rls",cagate_result="fail_open"\} [1-9]', stats, re.M), stats[-2000:]
            assert re.search(r'^cagate_cluster\{cagate_service="rls",cagate_result="errors"\} [1-9]', stats, re.M), stats[-2000:]
        finally:
            rls.start()
        deadline = time.time() + 10
        while call(closed.port, "GET", "/limited").code == "X503BZ" and time.time() < deadline:
            time.sleep(0.3)
        assert call(closed.port, "GET", "/limited").code in (None, "T429PA"), "recovered without a restart"
