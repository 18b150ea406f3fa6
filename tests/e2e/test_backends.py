"""Stages that reach their own backends, against a real Envoy: stage variables pick the Envoy cluster
(route `cluster_header: x-cagate-cluster`), the backend path and parameter mapping, constant and system
parameters, the per-API timeout (D504TO), mocks."""
import time

import pytest

from conftest import KEY1, SECRET1, call
from harness.backend import EchoBackend
from harness.envoy import Envoy, static_cluster
from harness.signer import sign

ORDERS = {
    "name": "getOrder", "method": "GET", "path": "/orders/[orderId]", "stages": ["RELEASE", "TEST"],
    "requestMode": "MAPPING",
    "parameters": [{"name": "fields", "location": "QUERY", "backendName": "select", "backendLocation": "QUERY"}],
    "authorizations": [{"appId": 10001}, {"appId": 10001, "stage": "TEST"}],
    "backend": {
        "type": "HTTP", "cluster": "#orders#", "path": "/v1/orders/[orderId]", "method": "GET", "timeoutMs": 3000,
        "host": "orders.internal",
        "constantParameters": [{"name": "X-Source", "value": "gateway", "location": "HEADER"}],
        "systemParameters": [{"name": "CaClientIp", "backendName": "X-Client-Ip", "location": "HEADER"},
                             {"name": "CaStage", "backendName": "X-Stage", "location": "HEADER"}],
    },
}

CONFIG = {
    "stageVariables": {"RELEASE": {"orders": "orders-prod"}, "TEST": {"orders": "orders-test"}},
    "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
    "apis": [
        ORDERS,
        {"name": "search", "method": "GET", "path": "/search", "authType": "ANONYMOUS", "requestMode": "PASSTHROUGH",
         "backend": {"type": "HTTP", "cluster": "#orders#", "path": "/v2/search"}},
        {"name": "slow", "method": "GET", "path": "/slow", "authType": "ANONYMOUS",
         "backend": {"type": "HTTP", "cluster": "orders-prod", "path": "/hang/3", "timeoutMs": 500}},
        {"name": "mock", "method": "GET", "path": "/mock", "authType": "ANONYMOUS",
         "backend": {"type": "MOCK", "mockStatusCode": 201, "mockResult": "{\"mocked\":true}",
                     "mockHeaders": [{"name": "X-Mock", "value": "yes"}]}},
        {"name": "plain", "method": "ANY", "path": "/plain/*", "authType": "ANONYMOUS"},
        {"name": "createOrder", "method": "POST", "path": "/form-orders", "authType": "ANONYMOUS", "requestMode": "MAPPING",
         "parameters": [{"name": "sku", "location": "FORM", "required": True, "backendLocation": "QUERY"},
                        {"name": "note", "location": "FORM", "backendName": "X-Note", "backendLocation": "HEADER"},
                        {"name": "page", "location": "QUERY", "defaultValue": "1"},
                        {"name": "X-Region", "location": "HEADER", "defaultValue": "cn-hangzhou"}],
         "backend": {"type": "HTTP", "cluster": "orders-prod", "path": "/v1/orders", "method": "POST"}},
    ],
}

# What envoy/envoy.yaml documents: the filter's cluster when it set one, else the default route.
ROUTES = [
    {"match": {"prefix": "/", "headers": [{"name": "x-cagate-cluster", "present_match": True}]},
     "route": {"cluster_header": "x-cagate-cluster", "timeout": "30s"}, "request_headers_to_remove": ["x-cagate-cluster"]},
    {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "30s"}},
]


@pytest.fixture(scope="module")
def stack(backend):
    with EchoBackend(name="prod") as prod, EchoBackend(name="test") as test_backend:
        clusters = [static_cluster("orders-prod", prod.port), static_cluster("orders-test", test_backend.port)]
        with Envoy(CONFIG, backend.port, extra_clusters=clusters, routes=ROUTES) as e:
            yield e, prod, test_backend


def signed(port, path, headers=None):
    return call(port, "GET", path, sign("GET", path, KEY1, SECRET1, headers=headers or {}))


def test_release_and_test_stages_reach_their_own_backends(stack):
    """X-Ca-Stage: TEST reaches the test backend, RELEASE the production one."""
    e, prod, test_backend = stack
    r = signed(e.port, "/orders/42?fields=id,total&junk=1")
    assert r.status == 200, r
    seen = r.json()
    assert seen["backend"] == "prod"
    assert seen["path"] == "/v1/orders/42?select=id,total", "mapped path, renamed parameter, undeclared one dropped"
    h = seen["headers"]
    assert h["x-source"] == ["gateway"] and h["x-client-ip"] == ["127.0.0.1"] and h["x-stage"] == ["RELEASE"]
    assert h["host"] == ["orders.internal"]
    assert "x-cagate-cluster" not in h, "the route removes its routing header"
    r = signed(e.port, "/orders/42", {"x-ca-stage": "TEST"})
    assert r.status == 200, r
    assert r.json()["backend"] == "test" and r.json()["headers"]["x-stage"] == ["TEST"]


def test_passthrough_keeps_undeclared_parameters(stack):
    """PASSTHROUGH keeps the query as sent; only the path is mapped."""
    e, _, _ = stack
    r = call(e.port, "GET", "/search?q=a+b&page=2")
    assert r.status == 200, r
    assert r.json()["path"] == "/v2/search?q=a+b&page=2"


def test_form_parameters_mapped_to_the_query_and_a_header(stack):
    """MAPPING: a FORM parameter moved to the query or a header arrives there with the form's value;
    the body goes on as sent; parameters left out arrive with their default."""
    e, _, _ = stack
    form = {"content-type": "application/x-www-form-urlencoded", "x-note": "forged"}
    r = call(e.port, "POST", "/form-orders", form, b"sku=A%201&note=gift")
    assert r.status == 200, r
    seen = r.json()
    assert seen["path"] == "/v1/orders?page=1&sku=A%201", "page: its default"
    assert seen["headers"]["x-note"] == ["gift"]
    assert seen["headers"]["x-region"] == ["cn-hangzhou"], "a header left out: its default"
    assert seen["body"] == "sku=A%201&note=gift"
    r = call(e.port, "POST", "/form-orders?page=4", dict(form, **{"x-region": "eu"}), b"sku=B")
    assert r.json()["path"] == "/v1/orders?page=4&sku=B" and r.json()["headers"]["x-region"] == ["eu"], r
    r = call(e.port, "POST", "/form-orders", form, b"note=gift")
    assert (r.status, r.code) == (400, "I400MP"), r


def test_client_cannot_choose_the_cluster(stack):
    """A client-sent x-cagate-cluster changes nothing: the gateway decides where a request goes."""
    e, _, _ = stack
    r = signed(e.port, "/orders/7", {"x-cagate-cluster": "orders-test"})
    assert r.status == 200 and r.json()["backend"] == "prod", r
    r = call(e.port, "GET", "/plain/x", {"x-cagate-cluster": "orders-test", "x-envoy-upstream-rq-timeout-ms": "1"})
    assert r.status == 200, r
    assert r.json()["backend"] == "echo" and r.json()["path"] == "/plain/x"
    assert "x-cagate-cluster" not in r.json()["headers"]


def test_api_timeout_answers_d504to(stack):
    """A slow backend with timeoutMs 500 answers D504TO in about half a second."""
    e, _, _ = stack
    start = time.time()
    r = call(e.port, "GET", "/slow")
    took = time.time() - start
    assert r.status == 504 and r.code == "D504TO", r
    assert 0.4 <= took < 2.0, took


def test_mock_answers_without_a_backend(stack):
    """A MOCK API answers its status, body and headers, with X-Ca-Request-Id."""
    e, _, _ = stack
    r = call(e.port, "GET", "/mock")
    assert r.status == 201, r
    assert r.json() == {"mocked": True}
    assert r.header("x-mock") == "yes" and r.header("x-ca-request-id")
