import http.client
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.backend import EchoBackend  # noqa: E402
from harness.client import Response, call  # noqa: E402,F401 (the tests import them from here)
from harness.envoy import NATIVE, Envoy  # noqa: E402

# Tests of what only the Wasm build has (its OCI image, the Istio manifests that load it): skipped when
# the suite runs against the native module (CAGATE_BUILD=native).
wasm_only = pytest.mark.skipif(NATIVE, reason="Wasm build only (OCI image, Istio manifests loading cagate.wasm)")

KEY1, SECRET1 = "test-app-key-1", "test-app-secret-1-0123456789abcdef"
KEY2, SECRET2 = "test-app-key-2", "test-app-secret-2-fedcba9876543210"
KEY3, SECRET3 = "test-app-key-3", "test-app-secret-3-expired-grant-xx"
APPCODE1 = "3F2504E04F8911D39A0C0305E82C3301"

GATE_CONFIG = {
    "stages": ["RELEASE", "PRE", "TEST"],
    "signature": {"timestampToleranceSeconds": 900, "nonceTtlSeconds": 900},
    "maxBodyBytes": 4096,
    "apps": [
        {"appId": 10001, "name": "demo", "appKey": KEY1, "appSecret": SECRET1, "appCodes": [APPCODE1]},
        {"appId": "10002", "name": "no-grants", "appKey": KEY2, "appSecret": SECRET2},
        {"appId": 10003, "name": "lapsed", "appKey": KEY3, "appSecret": SECRET3},
    ],
    "apis": [
        {"name": "orders", "method": "GET", "path": "/orders/[orderId]", "appCodeAuth": "HEADER",
         "stages": ["RELEASE", "TEST"],
         "authorizations": [{"appId": 10001, "stage": "RELEASE", "authValidTime": "2099-01-01T00:00:00Z"},
                            {"appId": 10001, "stage": "TEST"},
                            {"appId": 10003, "stage": "RELEASE", "authValidTime": "Thu, 01 Jan 2020 00:00:00 GMT"}]},
        {"name": "form", "method": "POST", "path": "/form", "authorizations": [{"appId": 10001}]},
        {"name": "upload", "method": "PUT", "path": "/upload", "authorizations": [{"appId": 10001}]},
        {"name": "strict", "method": "GET", "path": "/strict", "forceNonceCheck": True,
         "authorizations": [{"appId": 10001}]},
        {"name": "query-code", "method": "GET", "path": "/qcode", "appCodeAuth": "HEADER_QUERY",
         "authorizations": [{"appId": 10001}]},
        {"name": "unicode", "method": "GET", "path": "/api/用户", "authorizations": [{"appId": 10001}]},
        {"name": "public", "method": "ANY", "path": "/public/*", "authType": "ANONYMOUS"},
    ],
}


@pytest.fixture(scope="session")
def backend():
    with EchoBackend() as b:
        yield b


_running = []


@pytest.fixture(scope="module")
def gate(backend):
    with Envoy(GATE_CONFIG, backend.port, concurrency=4) as e:
        _running.append(e)
        yield e
        _running.remove(e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for e in _running:
            rep.sections.append(("envoy log (tail)", e.log_text()[-6000:]))
