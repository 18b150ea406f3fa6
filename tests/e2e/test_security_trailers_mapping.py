"""Security round 3 against a real Envoy: request trailers (HTTP/2 and HTTP/1.1) on every path that
waits for a body, duplicates of signed and of declared values, "the backend receives only what the
gateway validated or set" for mapping sources, targets and system parameters, path parameters forwarded
as validated, `..;`, local answers that never reached a backend, and X-Ca-Error-* only from the gateway."""
import base64
import copy
import hashlib
import json
import os
import subprocess

import pytest

from conftest import GATE_CONFIG, KEY1, SECRET1, _running, call
from harness.envoy import ROOT, Envoy
from harness.h2client import h2_request, http1_raw
from harness.signer import sign
from test_gate import assert_refused

CONFIG = copy.deepcopy(GATE_CONFIG)
# Strict signatures: a signed value given twice with another value, an unsigned nonce or timestamp, refused.
CONFIG["signature"] = dict(CONFIG.get("signature", {}), strict=True)
CONFIG["plugins"] = [
    {"name": "breaker", "type": "circuitBreaker", "data": "timeoutThreshold: 3\nwindowInSeconds: 30\nopenTimeoutSeconds: 30\n"},
]
CONFIG["apis"] += [
    {"name": "orders-post", "method": "POST", "path": "/orders", "authorizations": [{"appId": 10001}]},
    {"name": "mapped", "method": "GET", "path": "/map", "authType": "ANONYMOUS", "requestMode": "MAPPING_PASSTHROUGH",
     "parameters": [
         {"name": "h", "location": "QUERY", "type": "LONG", "backendLocation": "HEADER", "backendName": "x-h"},
         {"name": "n", "location": "QUERY", "type": "INT", "backendName": "num"},
         {"name": "X-Tenant", "location": "HEADER", "enumValues": ["a", "b"], "backendName": "tenant-id"},
         {"name": "t", "location": "QUERY", "backendLocation": "HEADER", "backendName": "x-t"},
     ]},
    {"name": "anon-system", "method": "GET", "path": "/sys", "authType": "ANONYMOUS",
     "backend": {"type": "HTTP", "cluster": "backend",
                 "systemParameters": [{"name": "CaAppId", "backendName": "X-App", "location": "HEADER"},
                                      {"name": "CaAppKey", "backendName": "appkey", "location": "QUERY"}]}},
    {"name": "files", "method": "GET", "path": "/files/[name]/*", "authType": "ANONYMOUS",
     "parameters": [{"name": "name", "location": "PATH", "regularExpression": "^[a-z]+$"}],
     "backend": {"type": "HTTP", "cluster": "backend", "path": "/store/[name]"}},
    {"name": "raw-files", "method": "GET", "path": "/raw/[name]/*", "authType": "ANONYMOUS",
     "parameters": [{"name": "name", "location": "PATH", "regularExpression": "^[a-z]+$"}]},
    {"name": "breaker-header", "method": "GET", "path": "/brk", "authType": "ANONYMOUS", "requestMode": "MAPPING_PASSTHROUGH",
     "parameters": [{"name": "t", "location": "QUERY", "backendLocation": "HEADER", "backendName": "x-t"}],
     "plugins": [{"plugin": "breaker"}]},
    {"name": "unknown-cluster", "method": "GET", "path": "/nowhere", "authType": "ANONYMOUS",
     "backend": {"type": "HTTP", "cluster": "no-such-cluster"}, "plugins": [{"plugin": "breaker"}]},
    {"name": "signed-form", "method": "POST", "path": "/sform", "authorizations": [{"appId": 10001}]},
    {"name": "coded", "method": "GET", "path": "/coded/*", "authType": "ANONYMOUS"},
    {"name": "stall", "method": "ANY", "path": "/stall/*", "authType": "ANONYMOUS", "plugins": [{"plugin": "breaker"}]},
    {"name": "form-sets-query", "method": "POST", "path": "/smap/[id]", "authType": "ANONYMOUS", "requestMode": "MAPPING",
     "parameters": [{"name": "X-Role", "location": "HEADER", "backendName": "role_q", "backendLocation": "QUERY"}],
     "backend": {"type": "HTTP", "cluster": "backend", "path": "/v1/items/[id]",
                 "constantParameters": [{"name": "cq", "value": "1", "location": "QUERY"}],
                 "systemParameters": [{"name": "CaClientIp", "backendName": "clientip", "location": "QUERY"}]}},
    {"name": "form-api", "method": "POST", "path": "/fapi", "authType": "ANONYMOUS",
     "parameters": [{"name": "role", "location": "FORM", "enumValues": ["user"]}]},
]

ROUTES = [
    {"match": {"prefix": "/", "headers": [{"name": "x-cagate-cluster", "present_match": True}]},
     "route": {"cluster_header": "x-cagate-cluster", "timeout": "30s"}, "request_headers_to_remove": ["x-cagate-cluster"]},
    {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "30s"}},
]


@pytest.fixture(scope="module")
def gw(backend):
    # Envoy's defaults otherwise (codec AUTO: h2c prior knowledge accepted; underscores allowed);
    # HTTP/1.1 trailers on, as an operator may set them.
    options = {"http_protocol_options": {"enable_trailers": True}, "stream_idle_timeout": "1s"}
    with Envoy(CONFIG, backend.port, concurrency=2, routes=ROUTES, hcm_options=options) as e:
        _running.append(e)
        yield e
        _running.remove(e)


def md5(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


FORGED = {"x-ca-app-id": "10001", "x-cagate-cluster": "backend"}


# 1. Trailers end the request: the decision is made then, never skipped.

@pytest.mark.parametrize("proto", ["h2", "http1"])
def test_trailers_do_not_skip_the_content_md5_check(gw, proto):
    """An unsigned POST with a bogus Content-MD5, a body and trailers is refused (A400MA), not forwarded."""
    headers = dict(FORGED, **{"content-md5": "x", "content-type": "application/json"})
    if proto == "h2":
        r = h2_request(gw.port, "POST", "/orders", headers, body=b'{"a":1}', trailers={"x-t": "1"})
    else:
        r = http1_raw(gw.port, "POST", "/orders", list(headers.items()), body=b'{"a":1}', trailers={"x-t": "1"})
    assert r.status == 400 and r.code == "A400MA", r


@pytest.mark.parametrize("proto", ["h2", "http1"])
def test_trailers_do_not_skip_the_signature_of_a_form(gw, proto):
    """A form signed with a wrong secret, ended by trailers, is refused with A403IS."""
    body = b"amount=1&to=alice"
    h = sign("POST", "/sform", KEY1, "wrong-secret", headers={"content-type": "application/x-www-form-urlencoded"}, body=body)
    if proto == "h2":
        r = h2_request(gw.port, "POST", "/sform", h, body=body, trailers={"x-t": "1"})
    else:
        r = http1_raw(gw.port, "POST", "/sform", list(h.items()), body=body, trailers={"x-t": "1"})
    assert r.status == 403 and r.code == "A403IS", r


@pytest.mark.parametrize("proto", ["h2", "http1"])
def test_signed_form_with_trailers_is_admitted_with_the_gateways_identity(gw, proto):
    """A correctly signed form ended by trailers reaches the backend, with only the gateway's identity."""
    body = b"amount=1&to=alice"
    h = sign("POST", "/sform", KEY1, SECRET1, headers={"content-type": "application/x-www-form-urlencoded"}, body=body)
    h["x_ca_app_id"] = "99999"
    if proto == "h2":
        r = h2_request(gw.port, "POST", "/sform", h, body=body, trailers={"x-t": "1"})
    else:
        r = http1_raw(gw.port, "POST", "/sform", list(h.items()), body=body, trailers={"x-t": "1"})
    assert r.status == 200, r
    seen = r.json()
    assert seen["headers"]["x-ca-app-id"] == ["10001"] and "x_ca_app_id" not in seen["headers"], seen
    assert seen["body"] == body.decode()


def test_h2_get_with_content_md5_and_only_trailers_is_checked(gw):
    """A GET with Content-MD5 of an empty body, then trailers and no data, is checked like any other."""
    r = h2_request(gw.port, "GET", "/orders/1", dict(FORGED, **{"content-md5": md5(b"x")}), trailers={"x-t": "1"})
    assert r.status == 400 and r.code == "A400MA", r
    h = sign("GET", "/orders/1", KEY1, SECRET1, content_md5=True)
    h["content-md5"] = md5(b"not empty")
    r = h2_request(gw.port, "GET", "/orders/1", h, trailers={"x-t": "1"})
    assert r.status == 400 and r.code == "I400I5", r


def test_h2_content_md5_with_trailers_checks_the_whole_body(gw):
    """Content-MD5 over the body sent in DATA frames before the trailers: right passes, wrong is I400I5."""
    body = b'{"amount": 1}'
    h = sign("POST", "/orders", KEY1, SECRET1, headers={"content-type": "application/json"}, body=body, content_md5=True)
    r = h2_request(gw.port, "POST", "/orders", h, body=body, trailers={"x-t": "1"})
    assert r.status == 200, r
    h = sign("POST", "/orders", KEY1, SECRET1, headers={"content-type": "application/json"}, body=body, content_md5=True)
    r = h2_request(gw.port, "POST", "/orders", h, body=body + b" ", trailers={"x-t": "1"})
    assert r.status == 400 and r.code == "I400I5", r


# 2 and 9. Duplicates: of a declared parameter, and of every signed value.

def test_declared_parameter_given_twice_is_refused(gw):
    """?h=1&h=1%20OR%201%3D1 and ?n=1&n=abc are refused (I400IP), never forwarded."""
    for q in ["h=1&h=1%20OR%201%3D1", "n=1&n=abc", "n=1&n=2"]:
        r = call(gw.port, "GET", "/map?" + q)
        assert_refused(r, 400, "I400IP")
        assert "more than once" in r.header("x-ca-error-message"), r
    r = http1_raw(gw.port, "GET", "/map", [("x-tenant", "a"), ("x_tenant", "admin")])
    assert r.status == 400 and r.code == "I400IP", r
    r = call(gw.port, "GET", "/map?h=1&n=2")
    assert r.status == 200, r
    assert r.json()["headers"]["x-h"] == ["1"] and r.json()["path"] == "/map?num=2", r


def test_signed_values_given_twice_are_refused(gw):
    """A second copy of a signed header (any spelling), query or form parameter: I400HD, I400RU, I400BD
    (the parameters under signature.strict)."""
    h = sign("GET", "/orders/1?amount=1", KEY1, SECRET1, headers={"x-user": "alice"},
             signed=("x-ca-key", "x-ca-nonce", "x-ca-timestamp", "x-user"))
    assert call(gw.port, "GET", "/orders/1?amount=1", h).status == 200
    for spelling in ["x-user", "X_User"]:
        h = sign("GET", "/orders/1", KEY1, SECRET1, headers={"x-user": "alice"},
                 signed=("x-ca-key", "x-ca-nonce", "x-ca-timestamp", "x-user"))
        r = http1_raw(gw.port, "GET", "/orders/1", list(h.items()) + [(spelling, "admin")])
        assert r.status == 400 and r.code == "I400HD", (spelling, r)
        assert "x-user" in r.header("x-ca-error-message").lower(), r
    h = sign("GET", "/orders/1", KEY1, SECRET1)
    r = http1_raw(gw.port, "GET", "/orders/1", list(h.items()) + [("x-ca-timestamp", "1")])
    assert r.status == 400 and r.code == "I400HD", r
    h = sign("GET", "/orders/1?amount=1", KEY1, SECRET1)
    r = call(gw.port, "GET", "/orders/1?amount=1&amount=1000000", h)
    assert_refused(r, 400, "I400RU")
    h = sign("GET", "/orders/1?amount=1", KEY1, SECRET1)
    r = call(gw.port, "GET", "/orders/1?amount=1&amount=1&amount=2", h)
    assert_refused(r, 400, "I400RU")
    h = sign("GET", "/orders/1?amount=1", KEY1, SECRET1)
    r = call(gw.port, "GET", "/orders/1?amount=1&am%6Funt=1000000", h)
    assert_refused(r, 400, "I400RU")
    body = "amount=1&to=alice"
    h = sign("POST", "/sform", KEY1, SECRET1, headers={"content-type": "application/x-www-form-urlencoded"}, body=body.encode())
    assert call(gw.port, "POST", "/sform", h, body).status == 200
    r = call(gw.port, "POST", "/sform", h, body + "&to=mallory")
    assert_refused(r, 400, "I400BD")
    # The same value again is no ambiguity (Alibaba's Python SDK repeats query parameters in a form).
    h = sign("GET", "/orders/1?amount=1&amount=1", KEY1, SECRET1)
    assert call(gw.port, "GET", "/orders/1?amount=1&amount=1", h).status == 200
    h = sign("POST", "/sform?to=alice", KEY1, SECRET1, headers={"content-type": "application/x-www-form-urlencoded"}, body=body.encode())
    assert call(gw.port, "POST", "/sform?to=alice", h, body).status == 200
    h = sign("POST", "/sform?to=alice", KEY1, SECRET1, headers={"content-type": "application/x-www-form-urlencoded"},
             body=b"amount=1&to=mallory")
    r = call(gw.port, "POST", "/sform?to=alice", h, "amount=1&to=mallory")
    assert_refused(r, 400, "I400BD")
    # An unsigned nonce could be changed at will on a captured request.
    h = sign("GET", "/orders/1", KEY1, SECRET1, signed=("x-ca-key", "x-ca-timestamp"))
    assert_refused(call(gw.port, "GET", "/orders/1", h), 400, "I400HD")


# 3 and 4. The backend receives only what the gateway validated or set.

def test_mapping_targets_come_only_from_validated_sources(gw):
    """A client's own x-h, tenant-id, x-t or num never reaches the backend; the mapped values do."""
    r = http1_raw(gw.port, "GET", "/map?num=999", [("x-h", "1 OR 1=1"), ("tenant-id", "admin"), ("Tenant_Id", "root"),
                                                   ("x-t", "forged")])
    assert r.status == 200, r
    seen = r.json()
    h = seen["headers"]
    assert "x-h" not in h and "tenant-id" not in h and "tenant_id" not in h and "x-t" not in h, h
    assert seen["path"] == "/map", seen
    r = http1_raw(gw.port, "GET", "/map?n=5&t=ok&num=999", [("x-tenant", "b"), ("tenant-id", "admin")])
    assert r.status == 200, r
    seen = r.json()
    assert seen["headers"]["tenant-id"] == ["b"] and seen["headers"]["x-t"] == ["ok"], seen
    assert seen["path"] == "/map?num=5", seen
    r = http1_raw(gw.port, "GET", "/map", [("x-tenant", "admin")])
    assert r.status == 400 and r.code == "I400IP", r


def test_system_parameters_without_a_value_remove_the_clients_copy(gw):
    """CaAppId/CaAppKey on an anonymous API: the client's X-App and appkey are removed, not passed on."""
    r = http1_raw(gw.port, "GET", "/sys?appkey=forged&keep=1", [("X-App", "10001"), ("x_app", "10002")])
    assert r.status == 200, r
    seen = r.json()
    assert "x-app" not in seen["headers"] and "x_app" not in seen["headers"], seen
    assert seen["path"] == "/sys?keep=1", seen


# 5 and 13. Local answers that never reached a backend: in the contract, and not the backend's fault.

def test_control_characters_for_a_header_are_refused_and_never_open_the_breaker(gw):
    """A query value with CR/LF mapped to a header is refused (I400IP); the breaker stays closed."""
    for _ in range(5):
        r = call(gw.port, "GET", "/brk?t=a%0d%0ab")
        assert_refused(r, 400, "I400IP")
    r = call(gw.port, "GET", "/brk?t=fine")
    assert r.status == 200, r
    assert r.json()["headers"]["x-t"] == ["fine"]


def test_unknown_cluster_answers_in_the_contract_and_does_not_open_the_breaker(gw):
    """A backend cluster Envoy does not know: I404SR every time (the breaker does not count it)."""
    for _ in range(5):
        r = call(gw.port, "GET", "/nowhere")
        assert_refused(r, 404, "I404SR")


def test_backends_error_headers_never_reach_the_client(gw):
    """X-Ca-Error-Code/Message on a response means the gateway made it: a backend's copies are removed."""
    for status in (200, 404, 500):
        r = call(gw.port, "GET", f"/coded/{status}")
        assert r.status == status, r
        assert r.code is None and r.header("x-ca-error-message") is None, r
        assert r.header("x-ca-request-id"), r


# 6. Path parameters forwarded as validated; the path as the gateway decoded it.

def test_path_parameters_are_forwarded_as_validated(gw):
    """/files/abc%2F%27%20OR%201=1/rest passes a ^[a-z]+$ check on `abc`: the backend gets /store/abc."""
    r = call(gw.port, "GET", "/files/abc%2F%27%20OR%201=1/rest")
    assert r.status == 200, r
    assert r.json()["path"] == "/store/abc", r.json()
    r = call(gw.port, "GET", "/files/ab%63/x")
    assert r.status == 200 and r.json()["path"] == "/store/abc", r
    r = call(gw.port, "GET", "/files/ABC/x")
    assert_refused(r, 400, "I400IP")
    r = call(gw.port, "GET", "/raw/abc%2Fdef/rest")
    assert r.status == 200, r
    assert r.json()["path"] == "/raw/abc/def/rest", "the backend splits the path where the gateway did"


# 7. `..;` is a dot segment.

@pytest.mark.parametrize("path", ["/public/%2e%2e;/orders/1", "/public/..;/orders/1", "/public/%2e%2e%3b/orders/1",
                                  "/public/..;jsessionid=x/orders/1", "/public/.;x/../orders/1", "/public/%2E%2E;%2Forders/1"])
def test_dot_dot_semicolon_is_refused(gw, path):
    r = call(gw.port, "GET", path)
    assert_refused(r, 400, "I400PA")


# 8. backend.path is a path: no query of its own.

def test_backend_path_with_a_query_is_refused(tmp_path):
    bad = copy.deepcopy(CONFIG)
    for api in bad["apis"]:
        if api["name"] == "files":
            api["backend"]["path"] = "/v1/search?id=[name]&role=user"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    r = subprocess.run([os.path.join(ROOT, "target", "release", "cagate"), "check", str(p)], capture_output=True, text=True)
    assert r.returncode == 1, r.stdout
    assert "backend.path: must be a path only" in r.stdout, r.stdout


# Second pass: what an attacker still found after the first round of fixes.

def test_clients_that_stall_their_own_request_never_open_the_breaker(gw):
    """A request whose body never comes times out as the gateway's X504TO, not the backend's D504TO;
    the breaker of the API stays closed for everyone else."""
    for _ in range(4):
        r = http1_raw(gw.port, "POST", "/stall/x", [("content-length", "100")], body=b"abc", timeout=10)
        assert r.status == 504 and r.code == "X504TO", r
    r = call(gw.port, "GET", "/stall/ok")
    assert r.status == 200, r


def test_form_fields_named_like_gateway_query_parameters_are_refused(gw):
    """A backend merging query and form must not read a client's role_q, clientip or cq from the body."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    for body in ["role_q=admin", "clientip=10.0.0.1&x=1", "cq=9"]:
        r = call(gw.port, "POST", "/smap/5", form, body)
        assert_refused(r, 400, "I400BD")
        assert "is set by the gateway" in r.header("x-ca-error-message"), r
    r = call(gw.port, "POST", "/smap/5", dict(form, **{"x-role": "user"}), "other=1")
    assert r.status == 200, r
    assert r.json()["path"] == "/v1/items/5?cq=1&clientip=127.0.0.1&role_q=user", r.json()


def test_a_name_the_gateway_sets_may_not_follow_a_semicolon(gw):
    """A backend splitting on `;` must not read the client's cq or clientip: a urlencoded body with one
    after a `;` is refused; in the query, MAPPING drops the undeclared parameter, `;` and all."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    for body in ["other=1;cq=9", "other=1;client%69p=10.0.0.1"]:
        r = call(gw.port, "POST", "/smap/5", form, body)
        assert_refused(r, 400, "I400BD")
        assert "is set by the gateway" in r.header("x-ca-error-message"), r
    r = call(gw.port, "POST", "/smap/5?a=1;cq=9", dict(form, **{"x-role": "user"}), "other=1;b=2")
    assert r.status == 200, r
    assert r.json()["path"] == "/v1/items/5?cq=1&clientip=127.0.0.1&role_q=user", r.json()


def test_form_parameters_come_only_in_a_urlencoded_body(gw):
    """A FORM parameter checked in a urlencoded body cannot be smuggled in multipart (I400CT)."""
    r = call(gw.port, "POST", "/fapi", {"content-type": "application/x-www-form-urlencoded"}, "role=admin")
    assert_refused(r, 400, "I400IP")
    multipart = '--XX\r\nContent-Disposition: form-data; name="role"\r\n\r\nadmin\r\n--XX--\r\n'
    r = call(gw.port, "POST", "/fapi", {"content-type": "multipart/form-data; boundary=XX"}, multipart)
    assert_refused(r, 400, "I400CT")
    r = http1_raw(gw.port, "POST", "/fapi", [("content-type", "text/plain"), ("content-type", "application/x-www-form-urlencoded")],
                  body=b"role=admin")
    assert r.status == 400 and r.code == "I400CT", r
    assert call(gw.port, "POST", "/fapi", {"content-type": "application/x-www-form-urlencoded"}, "role=user").status == 200


def test_a_signed_header_is_read_under_every_spelling(gw):
    """x-user is signed absent (empty); an x_user added later is x-user to a WSGI backend: A403IS."""
    h = sign("GET", "/orders/1", KEY1, SECRET1, signed=("x-ca-key", "x-ca-nonce", "x-ca-timestamp", "x-user"))
    h["x-ca-signature-headers"] += ",x-user"
    from harness.signer import signature, string_to_sign
    h["x-ca-signature"] = signature(SECRET1, string_to_sign("GET", "/orders/1", h))
    assert call(gw.port, "GET", "/orders/1", h).status == 200
    h2 = dict(h, **{"x-ca-nonce": h["x-ca-nonce"]})
    r = http1_raw(gw.port, "GET", "/orders/1", list(h2.items()) + [("x_user", "admin")])
    assert r.status == 403 and r.code == "A403IS", r
