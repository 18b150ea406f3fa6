"""Request policies against a real Envoy: accessControl with a JWT claim against a path parameter,
CORS (preflight, actual, refused-but-readable), Basic Auth, the backend signature, parameter
validation, URL length and loop detection."""
import base64
import hashlib
import hmac
from urllib.parse import unquote, unquote_plus

import pytest

from conftest import _running, call
from harness.envoy import Envoy
from harness.jwks import KeyPair
from test_gate import assert_refused

KEY = KeyPair("ES256", "users")
BACKEND_KEY, BACKEND_SECRET = "backend-key-1", "backend-secret-123456"


@pytest.fixture(scope="module")
def policies(backend):
    config = {
        "maxUrlBytes": 256,
        "maxHops": 2,
        "plugins": [
            {"name": "jwt", "type": "jwtAuth", "data": {"parameter": "Authorization", "jwk": KEY.jwk}},
            {"name": "owner-only", "type": "accessControl", "data": """
parameters:
  userId: "Token:userId"
  userType: "Token:userType"
  pathUserId: "Parameter:userId"
rules:
  - name: admin
    condition: "$userType = 'admin'"
    ifTrue: "ALLOW"
  - name: user
    condition: "$userId = $pathUserId"
    ifFalse: "DENY"
    statusCode: 403
    errorMessage: "Path not match ${userId} vs /${pathUserId}"
    responseHeaders:
      Content-Type: application/xml
    responseBody: "<Reason>Path not match ${userId} vs /${pathUserId}</Reason>"
"""},
            {"name": "browser", "type": "cors",
             "data": {"allowOrigins": "https://app.example.com,*.example.org,api.example.net", "allowCredentials": True,
                      "allowHeaders": "Content-Type,X-Ca-Key,X-Ca-Signature,X-Ca-Signature-Headers,X-Ca-Timestamp,X-Ca-Nonce",
                      "maxAge": 600}},
            {"name": "basic", "type": "basicAuth", "data": {"users": [{"username": "ops", "password": "pa55w0rd"}]}},
            {"name": "sign-backend", "type": "backendSignature",
             "data": {"type": "APIGW_BACKEND", "key": BACKEND_KEY, "secret": BACKEND_SECRET}},
        ],
        "apis": [
            {"name": "user", "method": "GET", "path": "/users/[userId]", "authType": "ANONYMOUS",
             "plugins": [{"plugin": "jwt"}, {"plugin": "owner-only"}, {"plugin": "browser"}]},
            {"name": "admin", "method": "GET", "path": "/admin", "authType": "ANONYMOUS", "plugins": [{"plugin": "basic"}]},
            {"name": "signed-backend", "method": "ANY", "path": "/backend/*", "authType": "ANONYMOUS",
             "plugins": [{"plugin": "sign-backend"}]},
            {"name": "validated", "method": "POST", "path": "/items/[id]", "authType": "ANONYMOUS",
             "parameters": [
                 {"name": "id", "location": "PATH", "type": "LONG", "required": True},
                 {"name": "X-Tenant", "location": "HEADER", "required": True, "maxLength": 8},
                 {"name": "status", "location": "QUERY", "enumValues": ["open", "closed"]},
                 {"name": "email", "location": "FORM", "required": True, "regularExpression": "^[^@]+@[^@]+$"}]},
        ],
    }
    with Envoy(config, backend.port, concurrency=2) as e:
        _running.append(e)
        yield e
        _running.remove(e)


def bearer(**claims):
    return {"authorization": f"Bearer {KEY.token(**claims)}"}


def test_access_control_claim_against_path_parameter(policies):
    p = policies.port
    assert call(p, "GET", "/users/42", bearer(userId="42")).status == 200
    assert call(p, "GET", "/users/7", bearer(userId="42", userType="admin")).status == 200
    r = call(p, "GET", "/users/7", bearer(userId="42"))
    assert r.status == 403 and r.code == "A403AC"
    assert r.header("x-ca-error-message") == "Path not match 42 vs /7"
    assert r.header("content-type") == "application/xml"
    assert r.body == b"<Reason>Path not match 42 vs /7</Reason>"


def test_cors_preflight_actual_and_refused(policies):
    p = policies.port
    origin = "https://app.example.com"
    pre = call(p, "OPTIONS", "/users/42", {"origin": origin, "access-control-request-method": "GET",
                                          "access-control-request-headers": "authorization"})
    assert pre.status == 200, pre
    assert pre.header("access-control-allow-origin") == origin and pre.header("vary") == "Origin"
    assert pre.header("access-control-allow-credentials") == "true"
    assert "GET" in pre.header("access-control-allow-methods")
    assert pre.header("access-control-max-age") == "600"
    assert pre.header("x-ca-error-code") is None
    ok = call(p, "GET", "/users/42", dict(bearer(userId="42"), origin="https://x.example.org"))
    assert ok.status == 200 and ok.header("access-control-allow-origin") == "https://x.example.org"
    # The backend's Vary values are kept, Origin added after them (unless one has it already); Envoy
    # may join the lines into one.
    def vary(r):
        return [t.strip() for line in r.header_all("vary") for t in line.split(",")]
    ok = call(p, "GET", "/users/42?vary=Accept-Encoding&vary=Cookie", dict(bearer(userId="42"), origin="https://x.example.org"))
    assert ok.status == 200 and vary(ok) == ["Accept-Encoding", "Cookie", "Origin"], ok.pairs
    ok = call(p, "GET", "/users/42?vary=Cookie,%20Origin", dict(bearer(userId="42"), origin="https://x.example.org"))
    assert vary(ok) == ["Cookie", "Origin"], ok.pairs
    # A host entry, as Aliyun's template writes them, matches the origin's host whatever its scheme and port.
    ok = call(p, "GET", "/users/42", dict(bearer(userId="42"), origin="http://api.example.net:8080"))
    assert ok.status == 200 and ok.header("access-control-allow-origin") == "http://api.example.net:8080"
    # a refusal a browser can read: the error code is exposed
    r = call(p, "GET", "/users/7", dict(bearer(userId="42"), origin=origin))
    assert r.code == "A403AC" and r.header("access-control-allow-origin") == origin
    assert "X-Ca-Error-Code" in r.header("access-control-expose-headers")
    assert_refused(call(p, "GET", "/users/42", dict(bearer(userId="42"), origin="https://evil.com")), 403, "A403CO",
                   "Cross origin resource forbidden https://evil.com")
    assert_refused(call(p, "OPTIONS", "/nowhere", {"origin": origin, "access-control-request-method": "DELETE"}), 404,
                   "I404CO", "Cross origin resource not found DELETE - /nowhere")


def test_basic_auth(policies):
    p = policies.port
    r = call(p, "GET", "/admin")
    assert_refused(r, 401, "A401BA")
    assert r.header("www-authenticate") == 'Basic realm="cagate"'
    bad = base64.b64encode(b"ops:wrong").decode()
    assert call(p, "GET", "/admin", {"authorization": f"Basic {bad}"}).status == 401
    good = base64.b64encode(b"ops:pa55w0rd").decode()
    assert call(p, "GET", "/admin", {"authorization": f"Basic {good}"}).status == 200


def backend_verify(seen):
    """The backend side, written from the Java demo's rules (independent of the filter)."""
    h = {k: v[0] for k, v in seen["headers"].items()}
    names = h["x-ca-proxy-signature-headers"].split(",")
    path, _, query = seen["path"].partition("?")
    params = {}
    sources = [query]
    if h.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        sources.append(seen["body"])
    for src in sources:
        for piece in filter(None, src.split("&")):
            k, _, v = piece.partition("=")
            params.setdefault(unquote_plus(k), unquote_plus(v))
    sts = f"{seen['method']}\n{h.get('content-md5', '')}\n"
    sts += "".join(f"{n.lower()}:{h.get(n.lower(), '')}\n" for n in sorted(names, key=str.lower))
    sts += unquote(path)
    if params:
        sts += "?" + "&".join(f"{k}={v}" if v else k for k, v in sorted(params.items()))
    mac = base64.b64encode(hmac.new(BACKEND_SECRET.encode(), sts.encode(), hashlib.sha256).digest()).decode()
    return hmac.compare_digest(mac, h["x-ca-proxy-signature"]), h


def test_backend_sees_a_valid_proxy_signature(policies):
    p = policies.port
    r = call(p, "POST", "/backend/orders?b=2&a=1", {"content-type": "application/x-www-form-urlencoded",
                                                      "x-ca-proxy-signature": "forged", "x-ca-proxy-whatever": "x"},
             "name=%E5%B0%8F+%E6%98%8E&n=1")
    assert r.status == 200, r
    ok, h = backend_verify(r.json())
    assert ok
    assert h["x-ca-proxy-signature-secret-key"] == BACKEND_KEY
    assert "x-ca-proxy-whatever" not in h
    assert BACKEND_SECRET not in r.body.decode()
    # A Content-MD5 (here the empty body's: the gateway checks it) is signed for the backend too.
    ok, _ = backend_verify(call(p, "GET", "/backend/x", {"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg=="}).json())
    assert ok


def test_parameter_validation(policies):
    p = policies.port
    form = {"content-type": "application/x-www-form-urlencoded"}
    good = dict(form, **{"x-tenant": "t1"})
    assert call(p, "POST", "/items/12?status=open", good, "email=a@b").status == 200
    assert_refused(call(p, "POST", "/items/12", form, "email=a@b"), 400, "I400MH", "Header `X-Tenant` is Required")
    assert_refused(call(p, "POST", "/items/12", good, "other=1"), 400, "I400MP", "Parameter `email` is required")
    assert_refused(call(p, "POST", "/items/x1", good, "email=a@b"), 400, "I400IP", "Invalid parameter `id` is not a valid LONG")
    assert_refused(call(p, "POST", "/items/12?status=lost", good, "email=a@b"), 400, "I400IP",
                   "Invalid parameter `status` is not one of open, closed")
    assert_refused(call(p, "POST", "/items/12", dict(good, **{"x-tenant": "much-too-long"}), "email=a@b"), 400, "I400IP")
    assert_refused(call(p, "POST", "/items/12", good, "email=nope"), 400, "I400IP")


def test_url_length_and_loop_detection(policies):
    p = policies.port
    assert_refused(call(p, "GET", "/backend/" + "a" * 300), 413, "I413UL", "Request URL too Large")
    r = call(p, "GET", "/backend/loop", {"x-ca-hops": "1"})
    assert r.status == 200 and r.json()["headers"]["x-ca-hops"] == ["2"]
    assert_refused(call(p, "GET", "/backend/loop", {"x-ca-hops": "2"}), 508, "I508LD", "Loop Detected")
