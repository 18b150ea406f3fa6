"""Conditions the gateway can detect, each with its own Aliyun code, against a real Envoy: a form body
that does not decode where the API reads it (I400BD), a content type the API does not take (I400CT), a
backend cluster Envoy does not know, directly or through a stage's variable (I404SR), the gateway's own
timeouts against the backend's (X504TO / D504TO), and a backend name that does not resolve (D504RE)."""
import time

import pytest

from conftest import KEY1, SECRET1, _running, call
from harness.envoy import Envoy, wasm_filter
from harness.h2client import http1_raw
from harness.signer import sign
from test_gate import assert_refused

FORM = {"content-type": "application/x-www-form-urlencoded"}
DNS_CACHE = {"name": "backends", "dns_lookup_family": "V4_ONLY"}


def config(backend_port):
    return {
        "stages": ["RELEASE", "TEST"],
        "stageVariables": {"RELEASE": {"orders": "backend"}, "TEST": {"orders": "orders-test"}},
        "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
        "plugins": [
            {"name": "ac", "type": "accessControl", "data": {
                "parameters": {"who": "Form:who"},
                "rules": [{"name": "no-root", "condition": "$who = 'root'", "ifTrue": "DENY"}]}},
            {"name": "breaker", "type": "circuitBreaker",
             "data": "timeoutThreshold: 3\nwindowInSeconds: 30\nopenTimeoutSeconds: 30\n"},
        ],
        "apis": [
            {"name": "form-params", "method": "POST", "path": "/fparams", "authType": "ANONYMOUS",
             "parameters": [{"name": "role", "location": "FORM", "enumValues": ["user", "50%"]}]},
            {"name": "form-rules", "method": "POST", "path": "/frules", "authType": "ANONYMOUS", "plugins": [{"plugin": "ac"}]},
            {"name": "sets-query", "method": "POST", "path": "/fquery", "authType": "ANONYMOUS",
             "backend": {"type": "HTTP", "cluster": "backend",
                         "constantParameters": [{"name": "cq", "value": "1", "location": "QUERY"}]}},
            {"name": "signed-form", "method": "POST", "path": "/sform", "authorizations": [{"appId": 10001}]},
            {"name": "opaque", "method": "POST", "path": "/opaque", "authType": "ANONYMOUS"},
            {"name": "staged", "method": "GET", "path": "/staged", "authType": "ANONYMOUS", "stages": ["RELEASE", "TEST"],
             "backend": {"type": "HTTP", "cluster": "#orders#"}, "plugins": [{"plugin": "breaker"}]},
            {"name": "gone", "method": "GET", "path": "/gone", "authType": "ANONYMOUS",
             "backend": {"type": "HTTP", "cluster": "no-such-cluster"}, "plugins": [{"plugin": "breaker"}]},
            {"name": "unresolvable", "method": "GET", "path": "/unresolvable", "authType": "ANONYMOUS",
             "backend": {"type": "HTTP", "cluster": "by-name", "host": "orders.invalid"}},
            {"name": "resolvable", "method": "GET", "path": "/resolvable", "authType": "ANONYMOUS",
             "backend": {"type": "HTTP", "cluster": "by-name", "host": f"localhost:{backend_port}"}},
            {"name": "strict-dns", "method": "GET", "path": "/strict-dns", "authType": "ANONYMOUS",
             "backend": {"type": "HTTP", "cluster": "strict-dns"}},
            # No backend: Envoy's route by path decides (and its timeouts).
            {"name": "timeouts", "method": "ANY", "path": "/t/*", "authType": "ANONYMOUS", "plugins": [{"plugin": "breaker"}]},
        ],
    }


ROUTES = [
    {"match": {"prefix": "/", "headers": [{"name": "x-cagate-cluster", "present_match": True}]},
     "route": {"cluster_header": "x-cagate-cluster", "timeout": "5s"}},
    # The client's body stalls: the stream idle timeout (1s) comes before the request timeout (3s).
    {"match": {"prefix": "/t/idle/"}, "route": {"cluster": "backend", "timeout": "30s", "idle_timeout": "1s"}},
    # The client's body stalls: the request timeout (3s) first.
    {"match": {"prefix": "/t/whole/"}, "route": {"cluster": "backend", "timeout": "30s"}},
    # The backend takes 3s: the route's timeout (1s).
    {"match": {"prefix": "/t/route/"}, "route": {"cluster": "backend", "timeout": "1s", "prefix_rewrite": "/hang/"}},
    # The backend takes 3s: the stream idle timeout (1s), with the whole request sent.
    {"match": {"prefix": "/t/slow/"}, "route": {"cluster": "backend", "timeout": "30s", "idle_timeout": "1s",
                                               "prefix_rewrite": "/hang/"}},
    {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "5s"}},
]


@pytest.fixture(scope="module")
def gw(backend):
    by_name = {"name": "by-name", "connect_timeout": "1s", "lb_policy": "CLUSTER_PROVIDED",
               "cluster_type": {"name": "envoy.clusters.dynamic_forward_proxy", "typed_config": {
                   "@type": "type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
                   "dns_cache_config": DNS_CACHE}}}
    strict = {"name": "strict-dns", "connect_timeout": "1s", "type": "STRICT_DNS", "dns_lookup_family": "V4_ONLY",
              "load_assignment": {"cluster_name": "strict-dns", "endpoints": [{"lb_endpoints": [{"endpoint": {
                  "address": {"socket_address": {"address": "orders.invalid", "port_value": 80}}}}]}]}}
    # The dynamic forward proxy resolves the :authority cagate set from backend.host: it comes after cagate.
    dfp = {"name": "envoy.filters.http.dynamic_forward_proxy", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
        "dns_cache_config": DNS_CACHE}}
    cfg = config(backend.port)
    options = {"stream_idle_timeout": "10s", "request_timeout": "3s"}
    with Envoy(cfg, backend.port, concurrency=2, http_filters=[wasm_filter(cfg), dfp], extra_clusters=[by_name, strict],
               routes=ROUTES, hcm_options=options) as e:
        _running.append(e)
        yield e
        _running.remove(e)


# I400BD and I400CT: the body where the API reads it.

@pytest.mark.parametrize("path", ["/fparams", "/frules", "/fquery"])
def test_a_form_that_does_not_decode_is_refused_where_the_api_reads_it(gw, path):
    for body in ["role=%zz", "role=user&who=%4", "role=a%00b", "x=50%"]:
        r = call(gw.port, "POST", path, FORM, body)
        assert_refused(r, 400, "I400BD")
        assert r.header("x-ca-error-message").startswith("Invalid Body: the form cannot be decoded at byte "), r
    # Well-formed escapes are decoded and checked as usual.
    ok = {"/fparams": "role=50%25", "/frules": "who=al%69ce", "/fquery": "note=a%20b"}[path]
    r = call(gw.port, "POST", path, FORM, ok)
    assert r.status == 200 and r.code is None, r


def test_the_decoded_form_is_what_is_checked(gw):
    assert_refused(call(gw.port, "POST", "/fparams", FORM, "role=adm%69n"), 400, "I400IP")
    assert_refused(call(gw.port, "POST", "/frules", FORM, "who=ro%6Ft"), 403, "A403AC")
    r = call(gw.port, "POST", "/fquery", FORM, "note=ok")
    assert r.status == 200 and r.json()["path"] == "/fquery?cq=1", r


def test_an_api_that_never_reads_the_body_passes_it_on(gw):
    r = call(gw.port, "POST", "/opaque", FORM, "x=50%")
    assert r.status == 200 and r.code is None, r


def test_a_signed_form_that_does_not_decode_is_refused_even_when_the_signature_matches(gw):
    body = b"amount=1&to=alice"
    h = sign("POST", "/sform", KEY1, SECRET1, headers=dict(FORM), body=body)
    assert call(gw.port, "POST", "/sform", h, body).status == 200
    body = b"amount=%zz&to=alice"
    h = sign("POST", "/sform", KEY1, SECRET1, headers=dict(FORM), body=body)
    assert_refused(call(gw.port, "POST", "/sform", h, body), 400, "I400BD")


def test_a_content_type_the_api_does_not_take_is_refused(gw):
    multipart = '--XX\r\nContent-Disposition: form-data; name="role"\r\n\r\nadmin\r\n--XX--\r\n'
    r = call(gw.port, "POST", "/fparams", {"content-type": "multipart/form-data; boundary=XX"}, multipart)
    assert_refused(r, 400, "I400CT", "Invalid Content-Type: `multipart/form-data; boundary=XX`")
    assert_refused(call(gw.port, "POST", "/fparams", {"content-type": "application/json"}, '{"role":"admin"}'), 400, "I400CT")
    r = call(gw.port, "POST", "/fparams", {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, "role=user")
    assert r.status == 200, r
    r = call(gw.port, "POST", "/opaque", {"content-type": "multipart/form-data; boundary=XX"}, multipart)
    assert r.status == 200 and r.code is None, r


# I404SR: a cluster Envoy does not know (Envoy's cluster_not_found).

def test_a_cluster_envoy_does_not_know_is_stage_route_missing(gw):
    for _ in range(5):
        r = call(gw.port, "GET", "/gone")
        assert_refused(r, 404, "I404SR", "Stage route missing: the API's backend cluster is not known to Envoy")


def test_a_stage_whose_cluster_envoy_does_not_know_is_stage_route_missing(gw):
    r = call(gw.port, "GET", "/staged")
    assert r.status == 200 and r.code is None, r
    for _ in range(5):
        assert_refused(call(gw.port, "GET", "/staged", {"x-ca-stage": "TEST"}), 404, "I404SR")
    # Not the backend's fault: the API's breaker stayed closed for the stage that works.
    r = call(gw.port, "GET", "/staged")
    assert r.status == 200 and r.code is None, r


# X504TO / D504TO: who timed out.

def stalled(gw, path):
    """A request whose body never comes (3 of 100 bytes), and how long its answer took."""
    start = time.monotonic()
    r = http1_raw(gw.port, "POST", path, [("content-length", "100")], body=b"abc", timeout=15)
    return r, time.monotonic() - start


def test_a_client_that_stalls_gets_the_gateways_timeout(gw):
    r, took = stalled(gw, "/t/idle/x")  # Envoy's stream_idle_timeout, 504
    assert r.status == 504 and r.code == "X504TO", r
    assert 0.8 < took < 2.8, took  # the stream idle timeout, not the request timeout (3s)
    r, took = stalled(gw, "/t/whole/x")  # Envoy's request_overall_timeout, a 408 of its own
    assert r.status == 504 and r.code == "X504TO", r
    assert r.json()["code"] == "X504TO"
    assert 2.8 < took < 6, took
    # Three gateway timeouts: the API's breaker (timeoutThreshold 3) stays closed.
    r, _ = stalled(gw, "/t/idle/x")
    assert r.code == "X504TO", r
    r = call(gw.port, "GET", "/t/whole/ok")
    assert r.status == 200 and r.code is None, r


def test_a_slow_backend_is_the_backends_timeout(gw):
    r = call(gw.port, "GET", "/t/route/3")  # the route's timeout: upstream_response_timeout
    assert_refused(r, 504, "D504TO", "Backend service request timeout")
    r = call(gw.port, "GET", "/t/slow/3")  # the stream idle timeout, once the whole request was sent
    assert_refused(r, 504, "D504TO", "Backend service request timeout")


# D504RE: a backend name that does not resolve.

def test_a_backend_name_that_does_not_resolve_is_d504re(gw):
    r = call(gw.port, "GET", "/resolvable")
    assert r.status == 200 and r.code is None, r
    for _ in range(3):
        r = call(gw.port, "GET", "/unresolvable")
        assert_refused(r, 504, "D504RE", "Backend domain `orders.invalid` resolve failed")


def test_a_dns_cluster_that_never_resolved_is_reported_as_envoy_reports_it(gw):
    """A STRICT_DNS cluster whose name never resolved has no host: Envoy answers no_healthy_upstream,
    the same as for a cluster whose hosts are all unhealthy, so the gateway cannot say D504RE."""
    assert_refused(call(gw.port, "GET", "/strict-dns"), 503, "D503BB")


# A403IN: an API closed to the internet, by the client address Envoy decides.

INTERNAL = {"disableInternet": True,
            "apis": [{"name": "internal", "method": "GET", "path": "/internal", "authType": "ANONYMOUS"},
                     {"name": "open", "method": "GET", "path": "/open", "authType": "ANONYMOUS", "disableInternet": False}]}


@pytest.mark.parametrize("trusted_hops", [0, 1])
def test_an_api_closed_to_the_internet_is_a403in_from_a_public_address(backend, trusted_hops):
    """Behind one trusted proxy (xff_num_trusted_hops 1) the client is the address that proxy wrote in
    X-Forwarded-For; with none, the connection's peer (loopback here), whatever the header says."""
    with Envoy(INTERNAL, backend.port, concurrency=1, hcm_options={"xff_num_trusted_hops": trusted_hops}) as e:
        public = call(e.port, "GET", "/internal", headers={"x-forwarded-for": "203.0.113.9"})
        private = call(e.port, "GET", "/internal", headers={"x-forwarded-for": "10.0.0.7"})
        opened = call(e.port, "GET", "/open", headers={"x-forwarded-for": "203.0.113.9"})
    if trusted_hops:
        assert_refused(public, 403, "A403IN")
        assert public.header("x-ca-error-message") == "Access from internet is disabled for api `internal`"
    else:
        assert public.status == 200, public
    assert private.status == 200, private
    assert opened.status == 200, opened
