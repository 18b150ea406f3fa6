"""trafficControl and ipControl against a real Envoy with 4 workers: one budget for all workers,
specials, independent apps, the SECOND bucket refilling, IP allow/deny through X-Forwarded-For."""
import re
import threading
import time

import pytest

from conftest import _running, call
from harness.envoy import Envoy
from test_gate import assert_refused

N = 20
CODES = {"10001": "CODE-ONE-0000000000000000000001", "10002": "CODE-TWO-0000000000000000000002",
         "10003": "CODE-THREE-00000000000000000003"}


@pytest.fixture(scope="module")
def limited(backend):
    config = {
        "apps": [{"appId": int(a), "appKey": f"key-{a}", "appSecret": f"secret-{a}", "appCodes": [c]} for a, c in CODES.items()],
        "plugins": [
            {"name": "burst", "type": "trafficControl", "data": f"unit: MINUTE\napiDefault: {N}\n"},
            {"name": "per-app", "type": "trafficControl",
             "data": {"unit": "HOUR", "apiDefault": 1000, "appDefault": 3, "rateLimitHeaders": True,
                      "specials": [{"type": "APP", "policies": [{"key": 10002, "value": 6}]}]}},
            {"name": "per-second", "type": "trafficControl", "data": {"unit": "SECOND", "apiDefault": 2}},
            {"name": "office", "type": "ipControl",
             "data": {"type": "ALLOW", "resource": "XFF:-1", "items": [{"blocks": ["203.0.113.0/24", "2001:db8::/32"]}]}},
            {"name": "blocklist", "type": "ipControl", "data": {"type": "REFUSE", "items": [{"blocks": ["127.0.0.0/8"]}]}},
        ],
        "apis": [
            {"name": "burst", "method": "GET", "path": "/burst", "authType": "ANONYMOUS", "plugins": [{"plugin": "burst"}]},
            {"name": "apps", "method": "GET", "path": "/apps", "appCodeAuth": "HEADER",
             "authorizations": [{"appId": int(a)} for a in CODES], "plugins": [{"plugin": "per-app"}]},
            {"name": "second", "method": "GET", "path": "/second", "authType": "ANONYMOUS", "plugins": [{"plugin": "per-second"}]},
            {"name": "office", "method": "GET", "path": "/office", "authType": "ANONYMOUS", "plugins": [{"plugin": "office"}]},
            {"name": "blocked", "method": "GET", "path": "/blocked", "authType": "ANONYMOUS", "plugins": [{"plugin": "blocklist"}]},
        ],
    }
    with Envoy(config, backend.port, concurrency=4) as e:
        _running.append(e)
        yield e
        _running.remove(e)


def burst(port, path, n, headers=None):
    results = []
    barrier = threading.Barrier(n)

    def shoot():
        barrier.wait()
        results.append(call(port, "GET", path, headers))

    threads = [threading.Thread(target=shoot) for _ in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return results


def test_burst_admits_exactly_n_across_workers(limited):
    # A MINUTE window is a wall-clock minute: start well inside one.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    results = burst(limited.port, "/burst", 3 * N)
    admitted = [r for r in results if r.status == 200]
    refused = [r for r in results if r.status != 200]
    assert all(r.status in (200, 429) for r in results), sorted(r.status for r in results)
    print(f"burst: {len(admitted)} admitted of {len(results)} (limit {N} per MINUTE, 4 workers)")
    assert len(admitted) == N
    for r in refused:
        assert_refused(r, 429, "T429PA")
        assert r.header("x-ca-error-message") == f"Throttled by API Flow Control: API limit {N} per MINUTE"
        assert 1 <= int(r.header("retry-after")) <= 60
    workers = set(re.findall(r"\[(\d+)\].*cagate: refused", limited.log_text()))
    assert len(workers) >= 2, workers


def appcode(app):
    return {"authorization": f"APPCODE {CODES[app]}"}


def test_specials_and_independent_apps(limited):
    p = limited.port
    r = call(p, "GET", "/apps", appcode("10001"))
    assert r.status == 200
    assert (r.header("ratelimit-limit"), r.header("ratelimit-remaining")) == ("3", "2")
    assert int(r.header("ratelimit-reset")) > 0
    for _ in range(2):
        assert call(p, "GET", "/apps", appcode("10001")).status == 200
    r = call(p, "GET", "/apps", appcode("10001"))
    assert_refused(r, 429, "T429PA", "Throttled by API Flow Control: APP limit 3 per HOUR")
    assert r.header("ratelimit-remaining") == "0" and r.header("retry-after")
    # the throttled app does not throttle the others
    assert [call(p, "GET", "/apps", appcode("10003")).status for _ in range(4)] == [200, 200, 200, 429]
    # the special app has its own number
    statuses = [call(p, "GET", "/apps", appcode("10002")) for _ in range(7)]
    assert [r.status for r in statuses] == [200] * 6 + [429]
    assert_refused(statuses[-1], 429, "T429PR", "Throttled by PLUGIN Flow Control: APP limit 6 per HOUR")


def test_second_bucket_refills(limited):
    # 2 per SECOND: a burst gets the 2 tokens of a full bucket (one token comes back every 500 ms,
    # far longer than a burst takes), and a second later the bucket is full again.
    first = burst(limited.port, "/second", 8)
    assert sorted(r.status for r in first).count(200) == 2
    assert all(r.code == "T429PA" for r in first if r.status != 200)
    time.sleep(1.1)
    again = burst(limited.port, "/second", 8)
    assert sorted(r.status for r in again).count(200) == 2


def test_ip_allow_through_x_forwarded_for(limited):
    p = limited.port
    # behind one trusted proxy the last entry is the one that proxy saw: XFF:-1
    assert call(p, "GET", "/office", {"x-forwarded-for": "198.51.100.1, 203.0.113.9"}).status == 200
    assert call(p, "GET", "/office", {"x-forwarded-for": "2001:db8::7"}).status == 200
    # a client can write anything at the front of the header: it does not count
    assert_refused(call(p, "GET", "/office", {"x-forwarded-for": "203.0.113.9, 198.51.100.1"}), 403, "A403IP",
                   "Access denied by IP Control Policy")
    assert_refused(call(p, "GET", "/office"), 403, "A403IP")
    assert_refused(call(p, "GET", "/office", {"x-forwarded-for": "garbage"}), 403, "A403IP")


def test_ip_refuse_on_the_connected_peer(limited):
    assert_refused(call(limited.port, "GET", "/blocked", {"x-forwarded-for": "203.0.113.9"}), 403, "A403IP")


def test_traffic_stats(limited):
    call(limited.port, "GET", "/apps", appcode("10001"))
    time.sleep(1.2)
    text = limited.stats()
    assert re.search(r'^cagate_traffic_throttled\{plugin="per-app",dimension="APP"\} [1-9]', text, re.M), \
        "\n".join(l for l in text.splitlines() if "traffic" in l)
    assert re.search(r'^cagate_traffic_admitted\{plugin="burst",dimension="API"\} ' + str(N) + "$", text, re.M)
