"""The caching plugin against a real Envoy (one worker: the cache is per worker): a miss reaches the
backend and is stored, the next request is answered by the gateway with `X-Ca-Caching: true` and its
own request id, the backend called once; varyByApp keeps apps apart; a request the gateway refuses
never gets the cached body; `Cache-Control: only-if-cached` with nothing cached is I404CH; a backend's
`no-store` is obeyed; an entry expires after `duration`.

The backend here counts its calls per path and answers with the count, so a test tells a cached
answer (same count, no new call) from a fresh one."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import KEY1, KEY2, SECRET1, SECRET2, call
from harness.envoy import Envoy
from harness.signer import sign

CACHE = {"name": "cache", "type": "caching",
         "data": {"varyByApp": True, "varyByParameters": ["page"], "clientCacheControl": {"mode": "all"},
                  "cacheableHeaders": ["X-Kept"], "duration": 60}}
SHORT = {"name": "short", "type": "caching", "data": "duration: 1\n"}

CONFIG = {
    "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1},
             {"appId": 10002, "appKey": KEY2, "appSecret": SECRET2}],
    "plugins": [CACHE, SHORT],
    "apis": [
        {"name": "items", "method": "GET", "path": "/items/[id]",
         "authorizations": [{"appId": 10001}, {"appId": 10002}], "plugins": [{"plugin": "cache"}]},
        {"name": "brief", "method": "GET", "path": "/brief/[id]", "authType": "ANONYMOUS",
         "plugins": [{"plugin": "short"}]},
    ],
}


class _Counting(BaseHTTPRequestHandler):
    """200 with `{"path", "n"}` (n: this path's calls so far); `?cc=V` answers `Cache-Control: V`."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        u = urlsplit(self.path)
        with self.server.lock:
            self.server.calls[u.path] = self.server.calls.get(u.path, 0) + 1
            n = self.server.calls[u.path]
        out = json.dumps({"path": u.path, "n": n}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-kept", f"kept-{n}")
        self.send_header("x-dropped", "dropped")
        cc = parse_qs(u.query).get("cc")
        if cc:
            self.send_header("cache-control", cc[0])
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


class CountingBackend:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
        self.server.daemon_threads = True
        self.server.calls = {}
        self.server.lock = threading.Lock()
        self.port = self.server.server_address[1]

    def calls(self, path):
        with self.server.lock:
            return self.server.calls.get(path, 0)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def counting():
    with CountingBackend() as b:
        yield b


@pytest.fixture(scope="module")
def stack(counting):
    with Envoy(CONFIG, counting.port, concurrency=1) as e:
        yield e


def signed(port, path, key=KEY1, secret=SECRET1, headers=None):
    return call(port, "GET", path, sign("GET", path, key, secret, headers=headers or {}))


def test_a_miss_then_a_hit_from_the_cache(stack, counting):
    first = signed(stack.port, "/items/1")
    assert first.status == 200, first
    assert first.json()["n"] == 1
    assert first.header("x-ca-caching") is None
    second = signed(stack.port, "/items/1")
    assert second.status == 200, second
    assert second.json() == first.json(), "the cached body"
    assert second.header("x-ca-caching") == "true"
    assert second.header("content-type") == "application/json"
    assert second.header("x-kept") == "kept-1", "listed in cacheableHeaders"
    assert second.header("x-dropped") is None, "not listed: not kept"
    assert second.header("x-ca-request-id") and second.header("x-ca-request-id") != first.header("x-ca-request-id")
    assert second.code is None
    assert counting.calls("/items/1") == 1, "the backend was called once"


def test_vary_by_app_keeps_apps_apart(stack, counting):
    assert signed(stack.port, "/items/2").json()["n"] == 1
    other = signed(stack.port, "/items/2", KEY2, SECRET2)
    assert other.status == 200, other
    assert other.json()["n"] == 2 and other.header("x-ca-caching") is None, "another app: its own entry"
    again = signed(stack.port, "/items/2")
    assert again.json()["n"] == 1 and again.header("x-ca-caching") == "true"
    assert counting.calls("/items/2") == 2


def test_vary_by_parameters(stack, counting):
    assert signed(stack.port, "/items/6?page=1").json()["n"] == 1
    assert signed(stack.port, "/items/6?page=2").json()["n"] == 2
    hit = signed(stack.port, "/items/6?page=1")
    assert hit.json()["n"] == 1 and hit.header("x-ca-caching") == "true"


def test_a_refused_request_never_gets_the_cached_body(stack, counting):
    assert signed(stack.port, "/items/3").status == 200
    assert signed(stack.port, "/items/3").header("x-ca-caching") == "true"
    forged = signed(stack.port, "/items/3", KEY1, "not-the-secret")
    assert forged.status == 403, forged
    assert forged.code == "A403IS"
    assert b'"n"' not in forged.body and forged.header("x-ca-caching") is None
    unsigned = call(stack.port, "GET", "/items/3")
    assert unsigned.status >= 400 and unsigned.code and b'"n"' not in unsigned.body, unsigned
    assert counting.calls("/items/3") == 1


def test_only_if_cached_with_nothing_cached_is_i404ch(stack, counting):
    r = signed(stack.port, "/items/4", headers={"cache-control": "only-if-cached"})
    assert r.status == 404, r
    assert r.code == "I404CH"
    assert counting.calls("/items/4") == 0, "never the backend"
    assert signed(stack.port, "/items/4").status == 200
    r = signed(stack.port, "/items/4", headers={"cache-control": "only-if-cached"})
    assert r.status == 200 and r.header("x-ca-caching") == "true", r


def test_the_backends_no_store_is_obeyed(stack, counting):
    # `cc` is not a varyByParameters name: both requests have one key.
    assert signed(stack.port, "/items/5?cc=no-store").json()["n"] == 1
    again = signed(stack.port, "/items/5?cc=no-store")
    assert again.json()["n"] == 2 and again.header("x-ca-caching") is None
    assert counting.calls("/items/5") == 2


def test_an_entry_expires_after_duration(stack, counting):
    assert call(stack.port, "GET", "/brief/1").json()["n"] == 1
    hit = call(stack.port, "GET", "/brief/1")
    assert hit.json()["n"] == 1 and hit.header("x-ca-caching") == "true"
    time.sleep(2.2)  # past the plugin's 1 s duration
    fresh = call(stack.port, "GET", "/brief/1")
    assert fresh.json()["n"] == 2 and fresh.header("x-ca-caching") is None
    assert counting.calls("/brief/1") == 2
