"""circuitBreaker's downgradeBackend against a real Envoy: once backend failures open the breaker,
requests go to the downgrade (another Envoy cluster through `x-cagate-cluster`, with X-Ca-Downgrade)
or get its MOCK answer instead of D503CB; and the configuration's group QPS limit (T429GR)."""
import pytest

from conftest import call
from harness.backend import EchoBackend
from harness.envoy import Envoy, static_cluster


def breaker(name, downgrade):
    return {"name": name, "type": "circuitBreaker",
            "data": {"timeoutThreshold": 3, "windowInSeconds": 30, "openTimeoutSeconds": 30,
                     "downgradeBackend": downgrade}}


CONFIG = {
    "plugins": [
        breaker("to-fallback", {"type": "HTTP", "cluster": "fallback", "path": "/static"}),
        breaker("to-mock", {"type": "MOCK", "statusCode": 200, "body": "cached answer",
                            "mockHeaders": [{"name": "X-Degraded", "value": "yes"}]}),
    ],
    "apis": [
        {"name": "http", "method": "GET", "path": "/status/*", "authType": "ANONYMOUS",
         "plugins": [{"plugin": "to-fallback"}]},
        {"name": "echo", "method": "GET", "path": "/echo", "authType": "ANONYMOUS",
         "plugins": [{"plugin": "to-fallback"}]},
        {"name": "toggle", "method": "GET", "path": "/toggle", "authType": "ANONYMOUS"},
        {"name": "mock", "method": "GET", "path": "/flaky", "authType": "ANONYMOUS",
         "plugins": [{"plugin": "to-mock"}]},
    ],
}

ROUTES = [
    {"match": {"prefix": "/", "headers": [{"name": "x-cagate-cluster", "present_match": True}]},
     "route": {"cluster_header": "x-cagate-cluster", "timeout": "30s"}, "request_headers_to_remove": ["x-cagate-cluster"]},
    {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "30s"}},
]


@pytest.fixture(scope="module")
def stack(backend):
    with EchoBackend(name="fallback") as fallback:
        with Envoy(CONFIG, backend.port, extra_clusters=[static_cluster("fallback", fallback.port)], routes=ROUTES) as e:
            yield e


def test_an_open_breaker_sends_requests_to_the_http_downgrade(stack):
    r = call(stack.port, "GET", "/echo", {"x-ca-downgrade": "forged"})
    assert r.status == 200 and r.json()["backend"] != "fallback", r
    assert "x-ca-downgrade" not in r.json()["headers"], "a client's copy never reaches a backend"
    for _ in range(3):
        assert call(stack.port, "GET", "/status/503").status == 503
    for _ in range(3):
        r = call(stack.port, "GET", "/status/503")
        assert r.status == 200, r
        seen = r.json()
        assert seen["backend"] == "fallback"
        assert seen["path"] == "/static"
        assert seen["headers"]["x-ca-downgrade"] == ["to-fallback"]
        assert r.code is None


def test_an_open_breaker_answers_with_the_mock_downgrade(stack):
    assert call(stack.port, "GET", "/toggle?fail=1").status == 200
    try:
        for _ in range(3):
            assert call(stack.port, "GET", "/flaky").status == 500
        r = call(stack.port, "GET", "/flaky")
        assert (r.status, r.body, r.header("x-degraded")) == (200, b"cached answer", "yes"), r
    finally:
        call(stack.port, "GET", "/toggle?fail=0")


def test_the_group_qps_limit_is_t429gr(backend):
    """3 QPS for the group: a burst of 10 gets some 429 T429GR (the bucket holds 3, refills 3 a second)."""
    cfg = {"groupQpsLimit": 3, "apis": [{"name": "any", "method": "ANY", "path": "/*", "authType": "ANONYMOUS"}]}
    with Envoy(cfg, backend.port, concurrency=2) as e:
        results = [call(e.port, "GET", "/x") for _ in range(10)]
        throttled = [r for r in results if r.status == 429]
        assert throttled, [r.status for r in results]
        assert all(r.code == "T429GR" for r in throttled), [(r.status, r.code) for r in results]
        assert throttled[0].header("retry-after") == "1"
        assert sum(r.status == 200 for r in results) >= 3


def test_the_instance_qps_limit_is_t429in(backend):
    cfg = {"instanceQpsLimit": 2, "apis": [{"name": "any", "method": "ANY", "path": "/*", "authType": "ANONYMOUS"}]}
    with Envoy(cfg, backend.port, concurrency=2) as e:
        results = [call(e.port, "GET", "/x") for _ in range(10)]
        assert {(r.status, r.code) for r in results if r.status != 200} == {(429, "T429IN")}, [(r.status, r.code) for r in results]
