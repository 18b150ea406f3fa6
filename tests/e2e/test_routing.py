"""The routing plugin against a real Envoy: the first matching route sends an admitted request to
another Envoy cluster (route `cluster_header: x-cagate-cluster`) with X-Ca-Routing-Name and its
constant parameters; no match keeps the API's backend; a MOCK route answers; an incomplete overlay is
I504RB; a refused request is never routed; a client's X-Ca-Routing-Name never reaches a backend."""
import pytest

from conftest import KEY1, SECRET1, call
from harness.backend import EchoBackend
from harness.envoy import Envoy, static_cluster
from harness.signer import sign

ROUTING = {
    "name": "canary", "type": "routing",
    "data": {
        "parameters": {"tier": "Header:X-Tier"},
        "routes": [
            {"name": "Vip", "condition": "$CaAppId = 10001 and $tier = 'vip'",
             "backend": {"type": "HTTP-VPC", "vpcAccessName": "orders-vip"},
             "constant-parameters": [{"name": "x-route", "location": "header", "value": "vip"}]},
            {"name": "Beta", "condition": "$tier = 'beta' or $tier = 'vip'",
             "backend": {"type": "HTTP", "cluster": "orders-beta", "path": "/v2/orders"}},
            {"name": "Old", "condition": "$ClientVersion < '2.0.5'",
             "backend": {"type": "MOCK", "statusCode": 400, "body": "This version is not supported"}},
            {"name": "Broken", "condition": "$tier = 'broken'", "backend": {"type": "HTTP-VPC"}},
        ],
    },
}

CONFIG = {
    "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
    "plugins": [ROUTING],
    "apis": [
        {"name": "orders", "method": "GET", "path": "/orders/[orderId]", "authorizations": [{"appId": 10001}],
         "parameters": [{"name": "ClientVersion", "location": "HEADER"}],
         "backend": {"type": "HTTP", "cluster": "orders-prod", "path": "/v1/orders/[orderId]"},
         "plugins": [{"plugin": "canary"}]},
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
    with EchoBackend(name="prod") as prod, EchoBackend(name="beta") as beta, EchoBackend(name="vip") as vip:
        clusters = [static_cluster("orders-prod", prod.port), static_cluster("orders-beta", beta.port),
                    static_cluster("orders-vip", vip.port)]
        with Envoy(CONFIG, backend.port, extra_clusters=clusters, routes=ROUTES) as e:
            yield e


def signed(port, path, headers=None):
    return call(port, "GET", path, sign("GET", path, KEY1, SECRET1, headers=headers or {}))


def test_the_first_matching_route_sends_to_its_cluster(stack):
    """`vip` matches Vip and Beta: Vip, first, wins, with its constant header and X-Ca-Routing-Name."""
    r = signed(stack.port, "/orders/7", {"x-tier": "vip"})
    assert r.status == 200, r
    seen = r.json()
    assert seen["backend"] == "vip"
    assert seen["path"] == "/v1/orders/7", "the API's backend path"
    assert seen["headers"]["x-ca-routing-name"] == ["Vip"]
    assert seen["headers"]["x-route"] == ["vip"]
    r = signed(stack.port, "/orders/7", {"x-tier": "beta"})
    assert r.status == 200, r
    assert r.json()["backend"] == "beta" and r.json()["path"] == "/v2/orders"
    assert r.json()["headers"]["x-ca-routing-name"] == ["Beta"]


def test_no_match_keeps_the_apis_backend_and_drops_a_clients_routing_name(stack):
    r = signed(stack.port, "/orders/7", {"x-ca-routing-name": "Vip", "x-tier": "none"})
    assert r.status == 200, r
    seen = r.json()
    assert seen["backend"] == "prod"
    assert "x-ca-routing-name" not in seen["headers"], "anything the backend trusts is the gateway's"


def test_a_clients_routing_name_is_replaced(stack):
    r = signed(stack.port, "/orders/7", {"x-ca-routing-name": "Vip", "x-tier": "beta"})
    assert r.status == 200, r
    assert r.json()["headers"]["x-ca-routing-name"] == ["Beta"]


def test_a_mock_route_answers(stack):
    r = signed(stack.port, "/orders/7", {"clientversion": "1.0"})
    assert r.status == 400, r
    assert r.body == b"This version is not supported"
    assert r.header("x-ca-error-code") is None and r.header("x-ca-request-id")


def test_an_incomplete_overlay_is_refused(stack):
    r = signed(stack.port, "/orders/7", {"x-tier": "broken"})
    assert r.status == 504, r
    assert r.header("x-ca-error-code") == "I504RB", r


def test_a_refused_request_is_not_routed(stack):
    """A bad signature: refused by the gateway, never sent to the route's cluster."""
    headers = sign("GET", "/orders/7", KEY1, "wrong-secret-0123456789abcdef", headers={"x-tier": "beta"})
    r = call(stack.port, "GET", "/orders/7", headers)
    assert r.status == 403 and r.header("x-ca-error-code") == "A403IS", r
