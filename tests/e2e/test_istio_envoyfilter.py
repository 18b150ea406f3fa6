"""envoy/istio/envoyfilter.yaml, the Istio EnvoyFilter that installs cagate as an Envoy-level Wasm filter
with `allow_on_headers_stop_iteration: true` (which Istio's WasmPlugin cannot set).

No Istio here: the manifest's patches are read back as Envoy configuration (the Wasm HTTP filter, the
connection-manager options, the listener buffer), the module path pointed at the local build, and run
in a real Envoy. Signed form bodies and Content-MD5 requests must be answered at once; with the knob
off (what a WasmPlugin gets) the same requests get no answer at all until Envoy's stream idle timeout."""
import copy
import http.client
import json
import os
import subprocess
import time

import pytest

from conftest import GATE_CONFIG, KEY1, SECRET1, _running, call, wasm_only
from harness.bootstraps import ENVOYFILTER, envoyfilter_patches, load_documents, sample_hcm_options
from harness.envoy import ROOT, Envoy
from harness.signer import sign

WASMPLUGIN = os.path.join(ROOT, "envoy", "istio", "wasmplugin.yaml")
FORM = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
FORM_BODY = "nick=%E5%B0%8F+%E6%98%8E&password=123&username=xiaoming"
AT_ONCE = 2.0  # seconds; a held request would wait for Envoy's stream idle timeout (5 minutes by default)


def configuration(http_filter):
    return json.loads(http_filter["typed_config"]["config"]["configuration"]["value"])


def variant(http_filter, config=None, allow_stop=None):
    """The manifest's filter with another cagate configuration and/or the knob changed."""
    f = copy.deepcopy(http_filter)
    if config is not None:
        f["typed_config"]["config"]["configuration"]["value"] = json.dumps(config)
    if allow_stop is not None:
        f["typed_config"]["config"]["allow_on_headers_stop_iteration"] = allow_stop
    return f


@pytest.fixture(scope="module")
def manifest():
    return envoyfilter_patches()


def start(backend, manifest, http_filter):
    e = Envoy(None, backend.port, http_filters=[http_filter], hcm_options=manifest["hcm_options"]).start()
    _running.append(e)
    return e


def stop(e):
    _running.remove(e)
    e.stop()


@pytest.fixture(scope="module")
def istio_envoy(backend, manifest):
    """The manifest's filter as it is (its configuration: wasmplugin.yaml's)."""
    e = start(backend, manifest, manifest["http_filter"])
    yield e
    stop(e)


@pytest.fixture(scope="module")
def istio_envoy_forms(backend, manifest):
    """The manifest's filter with the test configuration, which has form and upload APIs."""
    e = start(backend, manifest, variant(manifest["http_filter"], config=GATE_CONFIG))
    yield e
    stop(e)


def timed(fn, *args):
    t0 = time.monotonic()
    r = fn(*args)
    return r, time.monotonic() - t0


@wasm_only
def test_configuration_is_the_wasmplugins(manifest):
    (plugin,) = load_documents(WASMPLUGIN)
    assert configuration(manifest["http_filter"]) == plugin["spec"]["pluginConfig"]


@wasm_only
def test_knob_and_runtime(manifest):
    config = manifest["http_filter"]["typed_config"]["config"]
    assert config["allow_on_headers_stop_iteration"] is True
    assert config["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"


@wasm_only
def test_connection_manager_options_are_the_samples(manifest):
    """The same options as envoy/envoy.yaml, but for the client-address ones, which Istio owns
    (use_remote_address, XFF: its gateway and numTrustedProxies settings)."""
    sample = sample_hcm_options()
    for owned_by_istio in ("use_remote_address", "skip_xff_append"):
        sample.pop(owned_by_istio, None)
    assert manifest["hcm_options"] == sample


@wasm_only
def test_listener_buffer_holds_the_largest_body(manifest):
    assert manifest["listener"]["per_connection_buffer_limit_bytes"] >= configuration(manifest["http_filter"])["maxBodyBytes"]


@wasm_only
def test_cagate_check_finds_the_configuration():
    r = subprocess.run([os.path.join(ROOT, "target", "release", "cagate"), "check", ENVOYFILTER],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid (1 apps, 2 apis, 1 plugins)" in r.stdout, r.stdout


@wasm_only
def test_the_manifest_filter_gates_requests(istio_envoy):
    r = call(istio_envoy.port, "GET", "/orders/42", sign("GET", "/orders/42", KEY1, SECRET1))
    assert r.status == 200, r
    assert r.json()["headers"]["x-ca-app-id"] == ["10001"]
    r = call(istio_envoy.port, "GET", "/orders/42")
    assert (r.status, r.code) == (400, "A400MA"), r
    assert call(istio_envoy.port, "GET", "/health").status == 200


@wasm_only
def test_content_md5_request_is_answered_at_once(istio_envoy):
    body = b'{"items": [1, 2, 3]}'
    h = sign("GET", "/orders/42", KEY1, SECRET1, body=body, content_md5=True, headers={"content-type": "application/json"})
    r, took = timed(call, istio_envoy.port, "GET", "/orders/42", h, body)
    assert r.status == 200 and took < AT_ONCE, (r, took)
    assert r.json()["body"] == body.decode()
    h = sign("GET", "/orders/42", KEY1, SECRET1, body=body, content_md5=True, headers={"content-type": "application/json"})
    r, took = timed(call, istio_envoy.port, "GET", "/orders/42", h, body.replace(b"3", b"4"))
    assert (r.status, r.code) == (400, "I400I5") and took < AT_ONCE, (r, took)


@wasm_only
def test_signed_form_post_is_answered_at_once(istio_envoy_forms):
    h = sign("POST", "/form?param1=test", KEY1, SECRET1, body=FORM_BODY.encode(), headers=FORM)
    r, took = timed(call, istio_envoy_forms.port, "POST", "/form?param1=test", h, FORM_BODY)
    assert r.status == 200 and took < AT_ONCE, (r, took)
    assert r.json()["body"] == FORM_BODY
    # the form fields are signed: a changed field is refused, so the body was read before deciding
    h = sign("POST", "/form?param1=test", KEY1, SECRET1, body=FORM_BODY.encode(), headers=FORM)
    r, took = timed(call, istio_envoy_forms.port, "POST", "/form?param1=test", h, FORM_BODY.replace("123", "124"))
    assert (r.status, r.code) == (403, "A403IS") and took < AT_ONCE, (r, took)
    assert "password=124" in r.header("x-ca-error-message")


@wasm_only
def test_without_the_knob_a_form_post_gets_no_answer(backend, manifest):
    """What a WasmPlugin gets: Envoy never hands the body to the filter, the request is held until the
    stream idle timeout (then 504 D504TO). Everything that needs no body is unaffected."""
    e = start(backend, manifest, variant(manifest["http_filter"], config=GATE_CONFIG, allow_stop=False))
    try:
        assert call(e.port, "GET", "/orders/42", sign("GET", "/orders/42", KEY1, SECRET1)).status == 200
        h = sign("POST", "/form", KEY1, SECRET1, body=FORM_BODY.encode(), headers=FORM)
        conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=AT_ONCE)
        try:
            conn.request("POST", "/form", body=FORM_BODY, headers=h)
            with pytest.raises(TimeoutError):
                conn.getresponse()
        finally:
            conn.close()
    finally:
        stop(e)
