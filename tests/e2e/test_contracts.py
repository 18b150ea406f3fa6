"""Report-only and the classic-network contract against a real Envoy: in report-only, nothing is
refused but everything is counted (`cagate_report_only_would_refuse{code}`) and the backend gets only
the gateway's identity; under `"errorContract": "CLASSIC"`, refusals carry the classic table's status
and message and no `X-Ca-Error-Code`."""
import re
import time

import pytest

from conftest import KEY1, SECRET1, _running, call
from harness.envoy import Envoy
from harness.signer import sign
from test_gate import UUID, assert_refused

APPS = [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}]
PLUGINS = [
    {"name": "ip", "type": "ipControl",
     "data": {"type": "REFUSE", "resource": "XFF:0", "items": [{"blocks": ["10.0.0.0/8"]}]}},
    {"name": "tc", "type": "trafficControl", "data": {"unit": "MINUTE", "apiDefault": 100, "appDefault": 1}},
]


def apis(report_only_orders=False):
    orders = {"name": "orders", "method": "ANY", "path": "/orders/[id]", "authorizations": [{"appId": 10001}],
              "plugins": [{"plugin": "ip"}]}
    if report_only_orders:
        orders["reportOnly"] = True
    return [orders,
            {"name": "limited", "method": "GET", "path": "/limited", "authorizations": [{"appId": 10001}],
             "plugins": [{"plugin": "tc"}]},
            {"name": "other", "method": "ANY", "path": "/other", "authorizations": [{"appId": 10001}]}]


@pytest.fixture(scope="module")
def shadow(backend):
    with Envoy({"reportOnly": True, "apps": APPS, "plugins": PLUGINS, "apis": apis()}, backend.port) as e:
        _running.append(e)
        yield e
        _running.remove(e)


@pytest.fixture(scope="module")
def classic(backend):
    with Envoy({"errorContract": "CLASSIC", "apps": APPS, "plugins": PLUGINS, "apis": apis(report_only_orders=True)},
               backend.port) as e:
        _running.append(e)
        yield e
        _running.remove(e)


def signed_get(port, path, secret=SECRET1, headers=None, nonce=True):
    return call(port, "GET", path, sign("GET", path, KEY1, secret, headers=headers, nonce=nonce))


def would_refuse(e, code, at_least=1, timeout=10):
    """The report-only counter of `code` (the VM flushes its counters on its timer)."""
    deadline = time.time() + timeout
    value = 0
    while time.time() < deadline:
        m = re.search(r'cagate_report_only_would_refuse\{[^}]*code="%s"[^}]*\} (\d+)' % code, e.stats())
        value = int(m.group(1)) if m else 0
        if value >= at_least:
            return value
        time.sleep(0.3)
    return value


def test_report_only_forwards_a_bad_signature_without_identity(shadow):
    r = signed_get(shadow.port, "/orders/1", secret="wrong-secret", headers={"x-ca-app-id": "99999"})
    assert r.status == 200, r
    assert r.code is None and r.header("x-ca-error-message") is None
    seen = r.json()["headers"]
    assert "x-ca-app-id" not in seen, "a client's identity header never reaches the backend"
    assert seen["x-ca-api-name"] == ["orders"]
    assert seen["x-ca-request-id"] == [r.header("x-ca-request-id")]
    assert would_refuse(shadow, "A403IS") >= 1


def test_report_only_keeps_an_authenticated_identity_and_counts_each_code(shadow):
    r = signed_get(shadow.port, "/orders/2", headers={"x-forwarded-for": "10.9.9.9"})
    assert r.status == 200, r
    assert r.json()["headers"]["x-ca-app-id"] == ["10001"]
    for _ in range(3):
        assert signed_get(shadow.port, "/limited").status == 200
    assert call(shadow.port, "GET", "/nowhere").status == 200
    assert would_refuse(shadow, "A403IP") >= 1
    assert would_refuse(shadow, "T429PA", at_least=2) >= 2
    assert would_refuse(shadow, "I404NF") >= 1


def test_report_only_never_burns_the_nonce_of_a_request_it_would_refuse(shadow):
    nonce = "shadow-nonce-1"
    first = signed_get(shadow.port, "/orders/3", headers={"x-forwarded-for": "10.1.1.1"}, nonce=nonce)
    assert first.status == 200, first
    before = would_refuse(shadow, "S403NU", timeout=0.1)
    # The same nonce, from a client the plugin admits: not a replay, admitted with its identity.
    allowed = {"x-forwarded-for": "192.0.2.7"}
    second = signed_get(shadow.port, "/orders/3", headers=allowed, nonce=nonce)
    assert second.status == 200 and second.json()["headers"]["x-ca-app-id"] == ["10001"]
    third = signed_get(shadow.port, "/orders/3", headers=allowed, nonce=nonce)
    assert third.status == 200
    assert would_refuse(shadow, "S403NU", at_least=before + 1) == before + 1, "the admitted one burnt it"


def test_classic_contract_answers(classic):
    r = signed_get(classic.port, "/other", secret="wrong-secret")
    assert r.status == 400 and r.code is None, r
    assert r.header("x-ca-error-message").startswith("Invalid Signature, Server StringToSign:GET")
    assert UUID.match(r.header("x-ca-request-id"))
    body = r.json()
    assert "code" not in body and body["message"] == r.header("x-ca-error-message")

    headers = sign("GET", "/other", KEY1, SECRET1)
    assert call(classic.port, "GET", "/other", headers).status == 200
    r = call(classic.port, "GET", "/other", headers)
    assert (r.status, r.code, r.header("x-ca-error-message")) == (400, None, "Nonce Used")

    unsigned = {k: v for k, v in sign("GET", "/other", KEY1, SECRET1).items() if k != "x-ca-signature"}
    r = call(classic.port, "GET", "/other", unsigned)
    assert (r.status, r.header("x-ca-error-message")) == (401, "Empty Signature")

    stale = sign("GET", "/other", KEY1, SECRET1, timestamp=int(time.time() * 1000) - 3_600_000)
    r = call(classic.port, "GET", "/other", stale)
    assert (r.status, r.header("x-ca-error-message")) == (400, "Timestamp Expired")

    r = call(classic.port, "GET", "/nowhere")
    assert (r.status, r.code, r.header("x-ca-error-message")) == (400, None, "Invalid Url")
    r = call(classic.port, "GET", "/other", {"x-ca-key": "nobody"})
    assert (r.status, r.header("x-ca-error-message")) == (400, "Invalid AppKey")
    r = call(classic.port, "GET", "/other")
    assert (r.status, r.header("x-ca-error-message")) == (400, "Invalid AppKey")

    assert signed_get(classic.port, "/limited").status == 200
    r = signed_get(classic.port, "/limited")
    assert (r.status, r.code, r.header("x-ca-error-message")) == (403, None, "Throttled by APP Flow Control")


def test_classic_and_report_only_per_api(classic):
    """`reportOnly` on one API: its refusals go on, the others' are answered (classic here)."""
    r = signed_get(classic.port, "/orders/1", secret="wrong-secret")
    assert r.status == 200, r
    assert would_refuse(classic, "A403IS") >= 1
    r = signed_get(classic.port, "/other", secret="wrong-secret")
    assert r.status == 400


def test_vpc_remains_the_default(gate):
    r = call(gate.port, "GET", "/nowhere")
    assert_refused(r, 404, "I404NF")


def test_report_only_releases_a_held_body_whole(shadow):
    """A request whose body the gateway waits for (Content-MD5) and would refuse goes on with its
    whole body."""
    body = b'{"n": 1}' * 2000
    headers = sign("POST", "/other", KEY1, SECRET1, headers={"content-type": "application/json"}, body=body)
    headers["content-md5"] = "AAAAAAAAAAAAAAAAAAAAAA=="
    r = call(shadow.port, "POST", "/other", headers, body)
    assert r.status == 200, r
    assert r.json()["body"] == body.decode()
    assert "x-ca-app-id" not in r.json()["headers"], "refused before authentication ended: no identity"
    assert would_refuse(shadow, "I400I5") >= 1
