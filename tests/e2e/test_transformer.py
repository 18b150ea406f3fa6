"""The transformer plugin against a real Envoy: headers and query parameters added if absent, put and
removed reach the echo backend as the gateway decided (after the signature was checked on what the
client sent); the backend's status and headers are rewritten for the client; the gateway's own answers
are not; a configuration with a field cagate does not implement (a condition, a form edit) is refused."""
import copy

import pytest

from conftest import KEY1, SECRET1, call
from harness.envoy import Envoy
from harness.signer import sign

TRANSFORMER = {
    "name": "rewrite", "type": "transformer",
    # As pasted from Aliyun's console: YAML text.
    "data": "addRequestParameterIfAbsent:\n"
            "- name: X-Default\n  value: dflt\n  location: header\n"
            "- name: lang\n  value: zh\n  location: query\n"
            "putRequestParameter:\n"
            "- name: X-Tag\n  value: gateway\n  location: header\n"
            "- name: tier\n  value: 3\n  location: query\n"
            "removeRequestParameter:\n"
            "- name: X-Secret\n  location: header\n"
            "- name: debug\n  location: query\n"
            "setResponseStatusCode: 202\n"
            "addResponseHeaderIfAbsent:\n- name: X-Served-By\n  value: cagate\n"
            "putResponseHeader:\n- name: Cache-Control\n  value: no-store\n"
            "removeResponseHeader:\n- name: Content-Type\n",
}

CONFIG = {
    "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
    "plugins": [TRANSFORMER],
    "apis": [
        {"name": "orders", "method": "GET", "path": "/orders/[orderId]", "authorizations": [{"appId": 10001}],
         "plugins": [{"plugin": "rewrite"}]},
        {"name": "status", "method": "GET", "path": "/status/[code]", "authType": "ANONYMOUS",
         "plugins": [{"plugin": "rewrite"}]},
        {"name": "hang", "method": "GET", "path": "/hang/[s]", "authType": "ANONYMOUS",
         "backend": {"type": "HTTP", "cluster": "backend", "timeoutMs": 500},
         "plugins": [{"plugin": "rewrite"}]},
        {"name": "plain", "method": "GET", "path": "/plain", "authType": "ANONYMOUS"},
    ],
}


@pytest.fixture(scope="module")
def stack(backend):
    with Envoy(CONFIG, backend.port) as e:
        yield e


def signed(port, path, headers):
    return call(port, "GET", path, sign("GET", path, KEY1, SECRET1, headers=headers))


def test_request_edits_reach_the_backend(stack):
    r = signed(stack.port, "/orders/7?tier=1&debug=1", {"x-tag": "client", "x-secret": "s3cret", "x_secret": "s"})
    assert r.status == 202, r
    seen = r.json()
    assert seen["path"] == "/orders/7?lang=zh&tier=3", seen["path"]
    assert seen["headers"]["x-tag"] == ["gateway"]
    assert seen["headers"]["x-default"] == ["dflt"]
    assert "x-secret" not in seen["headers"] and "x_secret" not in seen["headers"], seen["headers"]
    assert seen["headers"]["x-ca-app-id"] == ["10001"], "the gateway's identity is untouched"


def test_add_if_absent_keeps_the_clients_value(stack):
    r = signed(stack.port, "/orders/7?lang=en", {"x-default": "mine"})
    assert r.status == 202, r
    seen = r.json()
    assert seen["path"] == "/orders/7?lang=en&tier=3"
    assert seen["headers"]["x-default"] == ["mine"]


def test_a_bad_signature_is_refused_before_any_edit(stack):
    headers = sign("GET", "/orders/7", KEY1, "wrong-secret-0123456789abcdef", headers={"x-tag": "client"})
    r = call(stack.port, "GET", "/orders/7", headers)
    assert r.status == 403 and r.code == "A403IS", r
    assert r.header("x-served-by") is None, "the gateway's refusal is not the backend's answer"


def test_the_response_status_and_headers_are_rewritten(stack):
    r = call(stack.port, "GET", "/status/500")
    assert r.status == 202, r
    assert r.header("x-served-by") == "cagate"
    assert r.header("cache-control") == "no-store"
    assert r.header("content-type") is None, r.headers
    assert r.header("x-ca-request-id")


def test_an_answer_the_gateway_made_is_not_rewritten(stack):
    """The backend times out: Envoy answers, the gateway gives it its contract; the transformer, which
    rewrites the backend's answers, leaves it alone."""
    r = call(stack.port, "GET", "/hang/3")
    assert r.status == 504 and r.code, r
    assert r.header("x-served-by") is None


def test_an_api_without_the_plugin_is_untouched(stack):
    r = call(stack.port, "GET", "/plain?debug=1", {"x-secret": "kept"})
    assert r.status == 200, r
    seen = r.json()
    assert seen["path"] == "/plain?debug=1"
    assert seen["headers"]["x-secret"] == ["kept"]
    assert r.header("x-served-by") is None


@pytest.mark.parametrize("edit,message", [
    ({"name": "X-A", "value": "1", "location": "header", "condition": "$a = 1"},
     "putRequestParameter[0].condition: unknown field"),
    ({"name": "address", "value": "1", "location": "form"},
     "putRequestParameter[0].location: location form is not supported by cagate"),
    ({"name": "X-Ca-App-Id", "value": "1", "location": "header"},
     "putRequestParameter[0].name: header X-Ca-App-Id is the gateway's own"),
])
def test_envoy_refuses_what_cagate_does_not_implement(backend, edit, message):
    bad = copy.deepcopy(CONFIG)
    bad["plugins"][0]["data"] = {"putRequestParameter": [edit]}
    e = Envoy(bad, backend.port, concurrency=1).start(wait=False)
    try:
        code = e.wait_exit(30)
        log = e.log_text()
        assert code is not None and code != 0, log[-3000:]
        assert "plugins[0].data (plugin rewrite)." + message in log, log[-3000:]
    finally:
        e.stop()
