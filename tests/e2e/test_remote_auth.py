"""The remoteAuth plugin against a real Envoy and a small authentication service (a Python server
reached through an Envoy cluster): an allowed request reaches the backend with the header the
service's answer passes on (never a gateway header), a denied one gets A403RA with the plugin's
status and message, a service that fails (5xx), is too slow (timeout) or is down gets X503RA
(fail-closed), a success is cached, a failure is not, and an unknown field refuses the configuration."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import call
from harness.backend import EchoBackend
from harness.envoy import Envoy, free_port, static_cluster


class AuthService:
    """Answers by the `x-token` header it receives: `good*` → 200 with `X-User-Id` (and a forged
    gateway header), `boom` → 500, `slow` → 200 after 2 s, anything else → 401 with a challenge.
    Records every call (path, headers)."""

    def __init__(self):
        self.calls = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                token = self.headers.get("x-token", "")
                outer.calls.append({"method": self.command, "path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()}})
                extra = {}
                if token.startswith("good"):
                    status, extra = 200, {"X-User-Id": "user-of-" + token, "X-Ca-App-Id": "forged", "X-Secret": "no"}
                elif token == "boom":
                    status = 500
                elif token == "slow":
                    time.sleep(2)
                    status = 200
                else:
                    status, extra = 401, {"WWW-Authenticate": 'Bearer realm="orders"'}
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def seen(self, token):
        return [c for c in self.calls if c["headers"].get("x-token") == token]


def remote_auth(name, cluster, method="POST", **extra):
    data = {
        "cluster": cluster,
        "authUriType": "HTTP",
        "authUri": {"address": "http://auth.internal:8080", "path": "/check", "timeout": 500, "method": method},
        "trimAuthorizationHeaderPrefix": True,
        "passThroughPath": True,
        "authParameters": [
            {"targetParameterName": "x-token", "sourceParameterName": "Authorization",
             "targetLocation": "header", "sourceLocation": "header"},
            {"targetParameterName": "uid", "sourceParameterName": "userId",
             "targetLocation": "query", "sourceLocation": "query"},
        ],
        "successCondition": "${statusCode} = 200",
        "successPassThroughHeaderList": ["X-User-Id"],
        "errorPassThroughHeaderList": "WWW-Authenticate",
        "errorStatusCode": 401,
        "errorMessage": "token rejected",
        "cachedTimeBySecond": 60,
    }
    data.update(extra)
    return {"name": name, "type": "remoteAuth", "data": data}


CONFIG = {
    "plugins": [remote_auth("ext", "auth_service"), remote_auth("ext-down", "auth_down", method="GET")],
    "apis": [
        {"name": "orders", "method": "GET", "path": "/orders", "authType": "ANONYMOUS",
         "plugins": [{"plugin": "ext"}]},
        {"name": "down", "method": "GET", "path": "/down", "authType": "ANONYMOUS",
         "plugins": [{"plugin": "ext-down"}]},
        {"name": "open", "method": "GET", "path": "/open", "authType": "ANONYMOUS"},
    ],
}


@pytest.fixture(scope="module")
def stack(backend):
    with AuthService() as auth:
        # auth_down: a port nothing listens on.
        clusters = [static_cluster("auth_service", auth.port), static_cluster("auth_down", free_port())]
        # One worker: the cache of successes is per worker, and the test counts the service's calls.
        with Envoy(CONFIG, backend.port, concurrency=1, extra_clusters=clusters) as e:
            e.auth = auth
            yield e


def get(port, path, token=None, headers=None):
    h = dict(headers or {})
    if token:
        h["authorization"] = "Bearer " + token
    return call(port, "GET", path, h)


def test_an_allowed_request_reaches_the_backend_with_the_answers_header(stack):
    r = get(stack.port, "/orders?userId=u7", "good-1", {"x-user-id": "forged-by-client"})
    assert r.status == 200, r
    seen = r.json()["headers"]
    assert seen["x-user-id"] == ["user-of-good-1"], "the answer's value, never the client's"
    assert "forged" not in seen.get("x-ca-app-id", []), "a gateway header never comes from the answer"
    assert "x-secret" not in seen, "only the listed headers pass"
    [c] = stack.auth.seen("good-1")
    assert (c["method"], c["path"]) == ("POST", "/check?uid=u7")
    assert c["headers"]["host"] == "auth.internal:8080"
    assert c["headers"]["x-ca-remote-auth-raw-path"] == "/orders"


def test_a_denied_request_gets_the_plugins_refusal(stack):
    r = get(stack.port, "/orders", "bad")
    assert (r.status, r.code, r.header("x-ca-error-message")) == (401, "A403RA", "token rejected"), r
    assert r.header("www-authenticate") == 'Bearer realm="orders"'
    assert r.header("x-ca-request-id")


def test_a_failing_slow_or_unreachable_service_refuses(stack):
    r = get(stack.port, "/orders", "boom")
    assert (r.status, r.code) == (503, "X503RA"), r
    r = get(stack.port, "/orders", "slow")
    assert (r.status, r.code) == (503, "X503RA"), r
    r = get(stack.port, "/down", "good-down")
    assert (r.status, r.code) == (503, "X503RA"), r
    # Fail-closed only for the plugin's APIs.
    assert get(stack.port, "/open").status == 200


def test_successes_are_cached_and_failures_are_not(stack):
    for _ in range(3):
        r = get(stack.port, "/orders", "good-cached")
        assert r.status == 200, r
        assert r.json()["headers"]["x-user-id"] == ["user-of-good-cached"]
    assert len(stack.auth.seen("good-cached")) == 1, "asked once, then remembered"
    for _ in range(2):
        assert get(stack.port, "/orders", "denied-not-cached").code == "A403RA"
    assert len(stack.auth.seen("denied-not-cached")) == 2, "a refusal is asked again"


def test_an_unknown_field_refuses_the_configuration(backend):
    bad = {"plugins": [remote_auth("ext", "auth_service", remoteUrl="http://auth/")],
           "apis": CONFIG["apis"][:1]}
    e = Envoy(bad, backend.port, concurrency=1, extra_clusters=[static_cluster("auth_service", free_port())]).start(wait=False)
    try:
        code = e.wait_exit(30)
        log = e.log_text()
        assert code is not None and code != 0, log[-3000:]
        assert "plugins[0].data (plugin ext).remoteUrl: unknown field" in log
    finally:
        e.stop()


def test_a_request_held_for_the_service_goes_to_its_apis_backend_whatever_the_client_sent(backend):
    """Held for remoteAuth's answer, the request is admitted later, outside its header event: it
    still reaches the backend the gateway chose (routed on the gateway's edits, not on the route
    Envoy picked when the headers arrived), and a client's routing header chooses nothing."""
    routes = [
        {"match": {"prefix": "/", "headers": [{"name": "x-cagate-cluster", "present_match": True}]},
         "route": {"cluster_header": "x-cagate-cluster", "timeout": "30s"}, "request_headers_to_remove": ["x-cagate-cluster"]},
        {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "30s"}},
    ]
    config = {"plugins": [remote_auth("ext", "auth_service")],
              "apis": [{"name": "orders", "method": "GET", "path": "/orders", "authType": "ANONYMOUS",
                        "backend": {"type": "HTTP", "cluster": "orders-prod", "path": "/v1/orders"},
                        "plugins": [{"plugin": "ext"}]}]}
    with AuthService() as auth, EchoBackend(name="prod") as prod, EchoBackend(name="other") as other:
        clusters = [static_cluster("auth_service", auth.port), static_cluster("orders-prod", prod.port),
                    static_cluster("other", other.port)]
        with Envoy(config, backend.port, concurrency=1, extra_clusters=clusters, routes=routes) as e:
            for forged in (None, "other", "auth_service"):
                r = get(e.port, "/orders", "good-routed", {"x-cagate-cluster": forged} if forged else {})
                assert r.status == 200, (forged, r)
                seen = r.json()
                assert (seen["backend"], seen["path"]) == ("prod", "/v1/orders"), (forged, seen)
                assert "x-cagate-cluster" not in seen["headers"], "the route that applied removed its header"
