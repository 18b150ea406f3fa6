"""The reference codes the gateway can detect, through a real Envoy: the group's domains (I404DO), the
API's protocol (I403PT), methods Aliyun does not serve (I405UM), malformed X-Ca-* values (I400HD), paths
and URIs that cannot be decoded (I400PA, I400RU), a backend that cannot be reached."""
import http.client

import pytest

from conftest import KEY1, SECRET1, call
from harness.envoy import Envoy
from harness.signer import sign

CONFIG = {
    "domains": ["api.example.org", "*.example.com", "127.0.0.1"],
    "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
    "apis": [
        {"name": "open", "method": "ANY", "path": "/open/*", "authType": "ANONYMOUS"},
        {"name": "tls-only", "method": "GET", "path": "/tls", "authType": "ANONYMOUS", "protocol": "HTTPS"},
        {"name": "orders", "method": "GET", "path": "/orders/[id]", "authorizations": [{"appId": 10001}]},
        {"name": "nowhere", "method": "GET", "path": "/nowhere", "authType": "ANONYMOUS",
         "backend": {"type": "HTTP", "cluster": "unresolvable", "host": "orders.invalid"}},
    ],
}

ROUTES = [
    {"match": {"prefix": "/", "headers": [{"name": "x-cagate-cluster", "present_match": True}]},
     "route": {"cluster_header": "x-cagate-cluster", "timeout": "5s"}},
    {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "5s"}},
]

UNRESOLVABLE = {
    "name": "unresolvable", "connect_timeout": "1s", "type": "STRICT_DNS", "dns_lookup_family": "V4_ONLY",
    "load_assignment": {"cluster_name": "unresolvable", "endpoints": [{"lb_endpoints": [{"endpoint": {
        "address": {"socket_address": {"address": "orders.invalid", "port_value": 80}}}}]}]},
}


@pytest.fixture(scope="module")
def gw(backend):
    with Envoy(CONFIG, backend.port, routes=ROUTES, extra_clusters=[UNRESOLVABLE]) as e:
        yield e


def with_host(port, host):
    """GET /open/x with this Host (http.client would add its own)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/open/x", skip_host=True, skip_accept_encoding=True)
        conn.putheader("host", host)
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("x-ca-error-code"), r.getheader("x-ca-error-message")
    finally:
        conn.close()


def test_unknown_domain_is_i404do(gw):
    """A Host that is not one of the group's domains: 404 I404DO naming it; a wildcard subdomain passes."""
    assert with_host(gw.port, "evil.org") == (404, "I404DO", "Invalid Domain `evil.org`")
    assert with_host(gw.port, "shop.example.com:8080") == (200, None, None)
    assert with_host(gw.port, "api.example.org") == (200, None, None)
    assert with_host(gw.port, "example.com")[1] == "I404DO", "a wildcard needs a subdomain"


def test_protocol_the_api_does_not_allow_is_i403pt(gw):
    """An HTTPS-only API called over plain HTTP: 403 I403PT."""
    r = call(gw.port, "GET", "/tls")
    assert (r.status, r.code, r.header("x-ca-error-message")) == (403, "I403PT", "Invalid protocol HTTP unsupported"), r


def test_methods_aliyun_does_not_serve_are_i405um(gw):
    """TRACE (and WebDAV's methods): 405 I405UM."""
    for method in ["TRACE", "PROPFIND"]:
        r = call(gw.port, method, "/open/x")
        assert (r.status, r.code) == (405, "I405UM"), r
        assert r.header("x-ca-error-message") == f"Unsupported Method `{method}`"


def test_malformed_timestamp_and_unsupported_signature_method(gw):
    """A timestamp that is not milliseconds is S403TE, as an expired one; an unsupported signature
    method verifies nothing: A403IS with the server's StringToSign."""
    h = sign("GET", "/orders/1", KEY1, SECRET1, timestamp="yesterday")
    r = call(gw.port, "GET", "/orders/1", h)
    assert (r.status, r.code, r.header("x-ca-error-message")) == (403, "S403TE", "X-Ca-Timestamp is expired"), r
    h = sign("GET", "/orders/1", KEY1, SECRET1)
    h["x-ca-signature-method"] = "HmacMD5"
    r = call(gw.port, "GET", "/orders/1", h)
    assert (r.status, r.code) == (403, "A403IS"), r
    assert r.header("x-ca-error-message").startswith("Invalid Signature, Server StringToSign:`GET#"), r


def test_undecodable_paths_and_uris(gw):
    """A bad escape in the path: I400PA; in the query: I400RU."""
    assert call(gw.port, "GET", "/open/%zz").code == "I400PA"
    assert call(gw.port, "GET", "/open/a%00b").code == "I400PA"
    assert call(gw.port, "GET", "/open/a?q=%4").code == "I400RU"


def test_unresolvable_backend_answers_in_the_contract(gw):
    """A backend cluster whose name never resolved: Envoy has no healthy host, the client gets D503BB.
    (D504RE, naming the backend's host, comes from Envoy's dns_resolution_failure detail, which a
    dynamic forward proxy reports; its message is checked natively in contract/backend_failure.rs.)"""
    r = call(gw.port, "GET", "/nowhere")
    assert (r.status, r.code) == (503, "D503BB"), r
    assert r.json()["code"] == "D503BB"
