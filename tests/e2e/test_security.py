"""Security holes against a real Envoy: a future timestamp outliving its nonce, unsigned nonce and
timestamp, underscore spellings of the gateway's own headers, dot segments in the path, very large
header maps, nonce memory across a reload that resizes the store, and ipControl's per-app items."""
import copy
import http.client
import math
import time
import uuid
from urllib.parse import urlsplit

import pytest

from conftest import GATE_CONFIG, KEY1, KEY2, SECRET1, SECRET2, _running, call
from harness.envoy import Envoy, static_cluster
from harness.signer import sign
from harness.wsgi_backend import WsgiBackend
from test_gate import UUID, assert_refused

def as_hyphens(name):
    """How a WSGI/CGI server (and many frameworks) read a header name: '_' and '-' are the same."""
    return name.lower().replace("_", "-")


def copies(headers, name):
    """The headers the echo backend received that read as `name` (any case, '_' for '-')."""
    return {n: v for n, v in headers.items() if as_hyphens(n) == name}


def signed_get(port, path, key=KEY1, secret=SECRET1, **kw):
    extra = kw.pop("headers", {})
    return call(port, "GET", path, sign("GET", path, key, secret, headers=extra, **kw))


@pytest.fixture(scope="module", autouse=True)
def big_header_maps():
    """The echo backend (in this process) and call()'s response parsing use http.client, which
    refuses more than 100 header lines and lines over 64 KiB: lift both for this module."""
    saved = http.client._MAXHEADERS, http.client._MAXLINE
    http.client._MAXHEADERS, http.client._MAXLINE = 100_000, 16 * 1024 * 1024
    yield
    http.client._MAXHEADERS, http.client._MAXLINE = saved


@pytest.fixture(scope="module")
def wsgi():
    with WsgiBackend() as w:
        yield w


# GATE_CONFIG plus loop detection (so x-ca-hops is the gateway's), a second app allowed on the
# ipControl APIs, and two ipControl ALLOW lists with an item for app 10001.
SECURE_CONFIG = copy.deepcopy(GATE_CONFIG)
SECURE_CONFIG["maxHops"] = 5
# The nonce and the timestamp must be signed (Aliyun admits them unsigned: test_gate.py).
SECURE_CONFIG["signature"] = dict(SECURE_CONFIG["signature"], strict=True)
SECURE_CONFIG["plugins"] = [
    {"name": "office-only-for-10001", "type": "ipControl",
     "data": {"type": "ALLOW", "items": [{"blocks": ["127.0.0.1/32"]}, {"appId": 10001, "blocks": ["10.0.0.0/8"]}]}},
    {"name": "office-or-local-for-10001", "type": "ipControl",
     "data": {"type": "ALLOW", "items": [{"blocks": ["127.0.0.1/32"]},
                                         {"appId": 10001, "blocks": ["10.0.0.0/8", "127.0.0.1/32"]}]}},
]
SECURE_CONFIG["apis"] += [
    {"name": "ip-app-item", "method": "GET", "path": "/ip/app-item",
     "authorizations": [{"appId": 10001}, {"appId": "10002"}], "plugins": [{"plugin": "office-only-for-10001"}]},
    {"name": "ip-app-item-local", "method": "GET", "path": "/ip/app-item-local",
     "authorizations": [{"appId": 10001}, {"appId": "10002"}], "plugins": [{"plugin": "office-or-local-for-10001"}]},
    # A protected path beside an anonymous parameter: spellings of the first must not reach it as the second.
    {"name": "shop-admin", "method": "GET", "path": "/shop/admin", "authorizations": [{"appId": 10001}]},
    {"name": "shop-item", "method": "ANY", "path": "/shop/[item]", "authType": "ANONYMOUS"},
]
# Large header maps (hole 5): Envoy's defaults are 100 headers and 60 KiB.
BIG_HEADERS = {"common_http_protocol_options": {"max_headers_count": 5000}, "max_request_headers_kb": 8192}


@pytest.fixture(scope="module")
def gw(backend, wsgi):
    """The gateway in front of the echo backend, and of the WSGI backend for requests carrying
    `x-backend: wsgi`. Envoy keeps its default headers_with_underscores_action (ALLOW): headers with
    '_' reach the filter, so what is tested here is the filter's own defence."""
    routes = [
        {"match": {"prefix": "/", "headers": [{"name": "x-backend", "string_match": {"exact": "wsgi"}}]},
         "route": {"cluster": "wsgi", "timeout": "30s"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "30s"}},
    ]
    with Envoy(SECURE_CONFIG, backend.port, concurrency=2, hcm_options=BIG_HEADERS, routes=routes,
               extra_clusters=[static_cluster("wsgi", wsgi.port)]) as e:
        assert "headers_with_underscores_action" not in e.hcm_options
        _running.append(e)
        yield e
        _running.remove(e)


# 1. A nonce is remembered as long as its timestamp is acceptable

def test_future_timestamp_nonce_is_remembered_while_the_timestamp_is_valid(backend):
    """A request stamped 8 s ahead, replayed about 11 s later (its timestamp still valid), gets 403 S403NU."""
    config = copy.deepcopy(GATE_CONFIG)
    config["signature"] = {"timestampToleranceSeconds": 10, "nonceTtlSeconds": 10}
    with Envoy(config, backend.port, concurrency=2) as e:
        _running.append(e)
        try:
            before = time.time()
            h = sign("GET", "/orders/1", KEY1, SECRET1, timestamp=int((before + 8) * 1000))
            r = call(e.port, "GET", "/orders/1", h)
            assert r.status == 200, r
            after = time.time()
            # Past nonceTtlSeconds after the gateway saw the nonce, even though it keeps expiries in
            # whole seconds (rounded up) and reads a clock refreshed every 0.5 s, while X-Ca-Timestamp
            # (before + 8 s) is still within the 10 s tolerance: a replay at 10.5 to 11.8 s.
            replay_at = max(before + 10.5, math.ceil(after + 10) + 0.75)
            time.sleep(max(0.0, replay_at - time.time()))
            r = call(e.port, "GET", "/orders/1", h)
            assert time.time() < before + 8 + 10 - 1, "too slow: the timestamp itself expired"
            assert_refused(r, 403, "S403NU", "Nonce Used")
        finally:
            _running.remove(e)


# 2. X-Ca-Nonce and X-Ca-Timestamp, when present, must be signed (signature.strict)

NOT_NONCE = ("x-ca-key", "x-ca-timestamp", "x-ca-signature-method")
NOT_TIMESTAMP = ("x-ca-key", "x-ca-nonce", "x-ca-signature-method")


def test_nonce_and_timestamp_must_be_signed(gw):
    """A signature that does not cover X-Ca-Nonce or X-Ca-Timestamp is refused with 400 I400HD naming the header."""
    p = gw.port
    # still passes: both signed (in any case), or neither sent on an API that does not force a nonce
    assert signed_get(p, "/orders/1").status == 200
    assert signed_get(p, "/orders/1", signed=("X-Ca-Key", "X-Ca-Nonce", "X-Ca-Timestamp")).status == 200
    assert signed_get(p, "/orders/1", nonce=False, timestamp=False).status == 200
    r = signed_get(p, "/orders/1", signed=NOT_NONCE)
    assert_refused(r, 400, "I400HD")
    assert "X-Ca-Nonce" in r.header("x-ca-error-message"), r
    r = signed_get(p, "/orders/1", signed=NOT_TIMESTAMP)
    assert_refused(r, 400, "I400HD")
    assert "X-Ca-Timestamp" in r.header("x-ca-error-message"), r
    r = signed_get(p, "/strict", signed=NOT_NONCE)  # forceNonceCheck does not make an unsigned nonce good
    assert_refused(r, 400, "I400HD")


def test_captured_request_with_a_new_nonce_is_not_replayable(gw):
    """Replaying a captured request with only X-Ca-Nonce (or X-Ca-Timestamp) changed never gets a 200."""
    p = gw.port
    captured = sign("GET", "/orders/2", KEY1, SECRET1, signed=NOT_NONCE)
    first = call(p, "GET", "/orders/2", captured)
    replayed = call(p, "GET", "/orders/2", dict(captured, **{"x-ca-nonce": str(uuid.uuid4())}))
    assert replayed.status != 200, replayed
    assert_refused(replayed, 400, "I400HD")
    assert_refused(first, 400, "I400HD")
    captured = sign("GET", "/orders/2", KEY1, SECRET1, signed=NOT_TIMESTAMP)
    later = dict(captured, **{"x-ca-timestamp": str(int(time.time() * 1000) + 1)})
    r = call(p, "GET", "/orders/2", later)
    assert r.status != 200, r
    assert_refused(r, 400, "I400HD")


# 3. Underscore spellings of the gateway's own headers

FORGED = {"X_Ca_App_Id": "99999", "x_ca_api_name": "admin", "X_CA_REQUEST_ID": "forged", "x-ca_app-id": "77",
          "X_Ca_Hops": "4", "X_Ca_Proxy_Signature": "forged"}


def assert_only_the_gateways_copies(r, app_id, api_name):
    assert r.status == 200, r
    h = r.json()["headers"]
    assert copies(h, "x-ca-app-id") == ({"x-ca-app-id": [app_id]} if app_id else {}), h
    assert copies(h, "x-ca-api-name") == {"x-ca-api-name": [api_name]}, h
    assert copies(h, "x-ca-request-id") == {"x-ca-request-id": [r.header("x-ca-request-id")]}, h
    assert copies(h, "x-ca-hops") == {"x-ca-hops": ["1"]}, h
    assert not [n for n in h if as_hyphens(n).startswith("x-ca-proxy-")], h


def test_underscore_spellings_of_gateway_headers_do_not_reach_the_backend(gw):
    """A client's X_Ca_App_Id (or x_ca_api_name, X_CA_REQUEST_ID, x-ca_app-id, ...) never reaches the backend."""
    r = call(gw.port, "GET", "/public/x", FORGED)
    assert_only_the_gateways_copies(r, None, "public")
    r = signed_get(gw.port, "/orders/7", headers={"X_Ca_App_Id": "99999"})
    assert r.status == 200, r
    assert copies(r.json()["headers"], "x-ca-app-id") == {"x-ca-app-id": ["10001"]}, r
    r = signed_get(gw.port, "/orders/7", headers=FORGED)
    assert_only_the_gateways_copies(r, "10001", "orders")


def test_wsgi_backend_sees_only_the_gateways_identity(gw):
    """A WSGI application reading HTTP_X_CA_APP_ID sees nothing for an anonymous call and exactly 10001 for app 10001."""
    wsgi = {"x-backend": "wsgi"}
    r = call(gw.port, "GET", "/public/x", dict(FORGED, **wsgi))
    assert r.status == 200, r
    env = r.json()
    assert env["PATH_INFO"] == "/public/x"
    assert "HTTP_X_CA_APP_ID" not in env, env
    assert env.get("HTTP_X_CA_API_NAME") == "public", env
    assert env.get("HTTP_X_CA_REQUEST_ID") == r.header("x-ca-request-id"), env
    assert env.get("HTTP_X_CA_HOPS") == "1", env
    assert not [k for k in env if k.startswith("HTTP_X_CA_PROXY_")], env
    r = signed_get(gw.port, "/orders/7", headers=dict(FORGED, **wsgi))
    assert r.status == 200, r
    env = r.json()
    assert env.get("HTTP_X_CA_APP_ID") == "10001", env
    assert env.get("HTTP_X_CA_API_NAME") == "orders", env
    assert env.get("HTTP_X_CA_REQUEST_ID") == r.header("x-ca-request-id"), env


# 4. Dot segments

DOT_PATHS = ["/public/../orders/1", "/public/%2e%2e/orders/1", "/public/%2E%2E%2Forders%2F1", "/public/./../orders/1",
             "/public/..%2forders/1", "/public/%2e%2e%5corders/1"]
NOT_DOT_SEGMENTS = ["/public/file.txt", "/public/..hidden", "/public/a.b/c"]


def test_dot_segments_do_not_bypass_authentication(gw):
    """GET /public/../orders/1 (in any encoding) without credentials gets 400 I400PA, never the signed API's data."""
    for path in NOT_DOT_SEGMENTS:  # still passes: dots inside a segment are no dot segment
        r = call(gw.port, "GET", path)
        assert r.status == 200 and r.json()["path"] == path, (path, r)
    for path in DOT_PATHS:
        r = call(gw.port, "GET", path)
        assert r.status != 200, (path, r)
        assert_refused(r, 400, "I400PA")


def test_a_spelling_of_a_protected_path_is_not_served_as_an_anonymous_api(gw):
    """/shop/admin;x, /shop/ADMIN and HEAD /shop/admin would be routed to the anonymous
    /shop/[item] while Tomcat, Express or Spring serve /shop/admin: 400 I400PA, nothing forwarded."""
    r = call(gw.port, "GET", "/shop/item-1")
    assert r.status == 200 and r.json()["headers"]["x-ca-api-name"] == ["shop-item"], r
    assert call(gw.port, "GET", "/shop/Item-1").status == 200, "case inside a parameter is the parameter's"
    upstream = gw.counter("cluster.backend.upstream_rq_total")
    for method, path in [("GET", "/shop/admin;jsessionid=1"), ("GET", "/shop/admin%3Bx"), ("GET", "/shop/ADMIN"),
                         ("HEAD", "/shop/admin")]:
        r = call(gw.port, method, path)
        assert r.status == 400 and r.header("x-ca-error-code") == "I400PA", (method, path, r)
    assert gw.counter("cluster.backend.upstream_rq_total") == upstream
    r = signed_get(gw.port, "/shop/admin")
    assert r.status == 200 and r.json()["headers"]["x-ca-api-name"] == ["shop-admin"], r


@pytest.fixture(scope="module")
def normalizing(backend):
    """The gateway as the sample configurations run it: Envoy normalizes the path first."""
    opts = {"normalize_path": True, "merge_slashes": True, "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT"}
    with Envoy(GATE_CONFIG, backend.port, concurrency=2, hcm_options=opts) as e:
        _running.append(e)
        yield e
        _running.remove(e)


def test_dot_segments_with_envoy_normalization_never_reach_a_signed_api(normalizing):
    """Behind Envoy's path normalization, /public/../orders/1 (in any encoding) is refused or redirected, never served."""
    p = normalizing.port
    for path in NOT_DOT_SEGMENTS:
        r = call(p, "GET", path)
        assert r.status == 200 and r.json()["path"] == path, (path, r)
    upstream = normalizing.counter("cluster.backend.upstream_rq_total")
    for path in DOT_PATHS:
        r = call(p, "GET", path)
        assert r.status != 200, (path, r)
        if r.status in (301, 302, 303, 307, 308):  # UNESCAPE_AND_REDIRECT: follow it, still without credentials
            target = urlsplit(r.header("location"))
            r = call(p, "GET", target.path + ("?" + target.query if target.query else ""))
            assert r.status != 200, (path, r)
        assert r.status == 400 and r.code in ("I400PA", "A400MA"), (path, r)
    assert normalizing.counter("cluster.backend.upstream_rq_total") == upstream


# 5. Large header maps

def test_1200_headers_keep_path_and_identity(gw):
    """A signed call with 1,200 extra headers reaches GET /orders/1 as app 10001."""
    extra = {f"x-h-{i:04d}": f"v{i}" for i in range(1200)}
    r = signed_get(gw.port, "/orders/1", headers=extra)
    assert r.status == 200, r
    seen = r.json()
    assert seen["path"] == "/orders/1"
    assert seen["headers"]["x-ca-app-id"] == ["10001"]
    assert seen["headers"]["x-ca-api-name"] == ["orders"]
    assert all(seen["headers"].get(n) == [v] for n, v in extra.items())


def test_one_megabyte_header_keeps_path(gw):
    """A signed call with a 1 MB (unsigned) header reaches GET /orders/1 as app 10001, header intact."""
    big = "b" * (1 << 20)
    r = signed_get(gw.port, "/orders/1", headers={"x-big": big})
    assert r.status == 200, r
    seen = r.json()
    assert seen["path"] == "/orders/1"
    assert seen["headers"]["x-ca-app-id"] == ["10001"]
    assert seen["headers"]["x-big"] == [big]


def test_anonymous_call_with_2000_headers_keeps_path(gw):
    """An anonymous call with 2,000 extra headers reaches /public/x with its path."""
    r = call(gw.port, "GET", "/public/x", {f"x-h-{i:04d}": "v" for i in range(2000)})
    assert r.status == 200, r
    seen = r.json()
    assert seen["path"] == "/public/x"
    assert seen["headers"]["x-ca-api-name"] == ["public"]
    assert "x-ca-app-id" not in seen["headers"]


def test_refusal_with_a_huge_signed_header_keeps_the_error_contract(gw):
    """A wrong signature over a 1 MB signed header gets 403 A403IS with the error headers and JSON body."""
    h = sign("GET", "/orders/1", KEY1, "not-the-secret", headers={"x-big": "b" * (1 << 20)},
             signed=("x-ca-key", "x-ca-nonce", "x-ca-timestamp", "x-big"))
    r = call(gw.port, "GET", "/orders/1", h)
    assert r.status == 403, r
    assert r.code == "A403IS", r
    rid = r.header("x-ca-request-id")
    assert rid and UUID.match(rid), r
    assert (r.header("x-ca-error-message") or "").startswith("Invalid Signature"), r
    assert r.header("content-type").startswith("application/json"), r
    body = r.json()
    assert body["code"] == "A403IS" and body["requestId"] == rid
    assert body["message"].startswith("Invalid Signature")


# 6. Nonces survive a reload that resizes the nonce store

def test_nonce_capacity_change_on_reload_keeps_live_nonces(backend):
    """After a reload changing nonceCapacity (1024 to 4096 and back), a replayed request still gets 403 S403NU."""
    def config(capacity):
        c = copy.deepcopy(GATE_CONFIG)
        c["signature"] = dict(c["signature"], nonceCapacity=capacity)
        return c

    def reload(e, capacity):
        modified = e.counter("listener_manager.listener_modified") + e.counter("listener_manager.listener_in_place_updated")
        e.publish(config(capacity))
        e.wait_listener_update()
        assert (e.counter("listener_manager.listener_modified")
                + e.counter("listener_manager.listener_in_place_updated")) > modified
        deadline = time.time() + 10  # the new listener serves
        while signed_get(e.port, "/orders/1").status != 200:
            assert time.time() < deadline, e.log_text()[-3000:]
            time.sleep(0.05)

    def fresh(e, n=8):
        # Several nonces: each lands in some shard of the store, whatever its size.
        requests = [sign("GET", f"/orders/{i}", KEY1, SECRET1) for i in range(n)]
        for i, h in enumerate(requests):
            r = call(e.port, "GET", f"/orders/{i}", h)
            assert r.status == 200, r
        return requests

    def assert_all_replays_refused(e, requests):
        for i, h in enumerate(requests):
            assert_refused(call(e.port, "GET", f"/orders/{i}", h), 403, "S403NU")

    with Envoy(config(1024), backend.port, concurrency=2, lds=True) as e:
        _running.append(e)
        try:
            first = fresh(e)
            assert_all_replays_refused(e, first)  # still passes: the same configuration remembers them
            reload(e, 4096)
            assert_all_replays_refused(e, first)
            second = fresh(e)
            reload(e, 1024)
            assert_all_replays_refused(e, second)
            assert_all_replays_refused(e, first)
        finally:
            _running.remove(e)


# 7. ipControl ALLOW: an item with appId restricts that app, whatever the general items say

def test_ip_control_app_item_restricts_that_app(gw):
    """From 127.0.0.1, app 10001 (allowed only 10.0.0.0/8) gets 403 A403IP; other callers and a matching app item pass."""
    p = gw.port
    assert signed_get(p, "/ip/app-item", key=KEY2, secret=SECRET2).status == 200  # the general item admits others
    assert signed_get(p, "/ip/app-item-local").status == 200  # app 10001's own item lists 127.0.0.1/32
    assert signed_get(p, "/ip/app-item-local", key=KEY2, secret=SECRET2).status == 200
    assert_refused(signed_get(p, "/ip/app-item"), 403, "A403IP", "Access denied by IP Control Policy")
