"""The response side against a real Envoy: backend failures in the gateway's contract, the circuit
breaker, error mapping on a backend JSON body, gzip at the 2 KB boundary, debug mode."""
import gzip
import re
import time

import pytest

from conftest import KEY1, SECRET1, _running, call
from harness.envoy import Envoy, free_port, static_cluster
from harness.signer import sign
from test_gate import assert_refused

DEAD = free_port()


@pytest.fixture(scope="module")
def resp(backend):
    config = {
        "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
        "plugins": [
            {"name": "breaker", "type": "circuitBreaker",
             "data": "timeoutThreshold: 3\nwindowInSeconds: 30\nopenTimeoutSeconds: 2\n"},
            {"name": "errors", "type": "errorMapping", "data": """
parameters:
  statusCode: "StatusCode"
  resultCode: "BodyJsonField:$.result_code"
  resultId: "BodyJsonField:$.req_msg_id"
errorCondition: "$statusCode = 200 and $resultCode <> 'OK'"
errorCode: "resultCode"
mappings:
  - code: "ROLE_NOT_EXISTS"
    statusCode: 404
    errorMessage: "Role Not Exists, RequestId=${resultId}"
defaultMapping:
  statusCode: 500
  errorMessage: "Unknown Error, ${resultCode}, RequestId=${resultId}"
"""},
        ],
        "apis": [
            {"name": "any", "method": "ANY", "path": "/*", "authType": "ANONYMOUS"},
            {"name": "flaky", "method": "GET", "path": "/flaky", "authType": "ANONYMOUS", "plugins": [{"plugin": "breaker"}]},
            {"name": "result", "method": "GET", "path": "/result/[code]", "authType": "ANONYMOUS", "plugins": [{"plugin": "errors"}]},
            {"name": "signed", "method": "GET", "path": "/signed/*", "authorizations": [{"appId": 10001}],
             "plugins": [{"plugin": "breaker"}]},
        ],
    }
    routes = [
        {"match": {"prefix": "/hang"}, "route": {"cluster": "backend", "timeout": "1s"}},
        {"match": {"prefix": "/refused"}, "route": {"cluster": "dead", "timeout": "5s"}},
        {"match": {"prefix": "/tls"}, "route": {"cluster": "tls", "timeout": "5s"}},
        {"match": {"prefix": "/empty"}, "route": {"cluster": "empty", "timeout": "5s"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "30s"}},
    ]
    tls = dict(static_cluster("tls", backend.port), transport_socket={
        "name": "envoy.transport_sockets.tls",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"}})
    empty = {"name": "empty", "connect_timeout": "1s", "type": "STATIC",
             "load_assignment": {"cluster_name": "empty", "endpoints": []}}
    with Envoy(config, backend.port, concurrency=2, extra_clusters=[static_cluster("dead", DEAD), tls, empty], routes=routes,
               compressor=True) as e:
        _running.append(e)
        yield e
        _running.remove(e)


def test_backend_failures_get_aliyun_codes(resp):
    r = call(resp.port, "GET", "/refused/x")
    assert_refused(r, 504, "D504CO")
    assert r.header("x-ca-error-message").startswith("Backend service connect failed `")
    assert r.header("content-type").startswith("application/json")
    r = call(resp.port, "GET", "/hang/3")
    assert_refused(r, 504, "D504TO", "Backend service request timeout")
    r = call(resp.port, "GET", "/tls/x")
    assert_refused(r, 504, "D504CS")
    r = call(resp.port, "GET", "/empty/x")  # a cluster with no healthy host
    assert_refused(r, 503, "D503BB", "Backend circuit breaker busy")


def test_genuine_backend_errors_are_untouched(resp):
    r = call(resp.port, "GET", "/status/500")
    assert r.status == 500 and r.code is None
    assert r.json() == {"error": "backend says 500"}
    assert r.header("x-ca-request-id")
    assert call(resp.port, "GET", "/status/503").code is None


def test_circuit_breaker_opens_then_recovers(resp):
    p = resp.port
    call(p, "GET", "/toggle?fail=1")  # the backend starts failing
    statuses = [call(p, "GET", "/flaky").status for _ in range(3)]
    assert statuses == [500, 500, 500]
    r = call(p, "GET", "/flaky")
    assert_refused(r, 503, "D503CB")
    assert r.header("x-ca-error-message").startswith("Backend circuit breaker open, ")
    call(p, "GET", "/toggle?fail=0")  # the backend recovers
    time.sleep(2.2)
    assert call(p, "GET", "/flaky").status == 200  # the half-open trial
    assert [call(p, "GET", "/flaky").status for _ in range(3)] == [200, 200, 200]
    time.sleep(1.2)
    text = resp.stats()
    assert re.search(r"^cagate_breaker_opened\S* 1$", text, re.M), [l for l in text.splitlines() if "breaker" in l]
    assert re.search(r"^cagate_breaker_refused\S* [1-9]", text, re.M)


def test_error_mapping_on_a_backend_json_body(resp):
    p = resp.port
    r = call(p, "GET", "/result/OK")
    assert r.status == 200 and r.header("x-ca-error-message") is None
    r = call(p, "GET", "/result/ROLE_NOT_EXISTS")
    assert r.status == 404
    assert r.header("x-ca-error-message") == "Role Not Exists, RequestId=r-1"
    assert r.json() == {"result_code": "ROLE_NOT_EXISTS", "req_msg_id": "r-1"}, "the body is kept"
    r = call(p, "GET", "/result/BOOM")
    assert (r.status, r.header("x-ca-error-message")) == (500, "Unknown Error, BOOM, RequestId=r-1")
    # A body not read as JSON has no fields to test: the response goes on as the backend sent it.
    r = call(p, "GET", "/result/BOOM?type=text/html")
    assert (r.status, r.header("x-ca-error-message")) == (200, None)


def test_gzip_at_the_2kb_boundary_and_per_content_type(resp):
    p = resp.port
    gz = {"accept-encoding": "gzip"}
    over = call(p, "GET", "/bytes/2049?type=application/json", gz)
    assert over.header("content-encoding") == "gzip"
    assert gzip.decompress(over.body) == b"a" * 2049
    assert call(p, "GET", "/bytes/2048?type=application/json", gz).header("content-encoding") is None
    assert call(p, "GET", "/bytes/4096?type=application/json").header("content-encoding") is None, "no Accept-Encoding"
    for t in ["text/xml", "text/plain", "text/css", "application/javascript", "application/xml", "application/octet-stream"]:
        assert call(p, "GET", f"/bytes/4096?type={t}", gz).header("content-encoding") == "gzip", t
    charset = "application/json;%20charset=utf-8"
    assert call(p, "GET", f"/bytes/4096?type={charset}", gz).header("content-encoding") == "gzip", "parameters ignored"
    assert call(p, "GET", "/bytes/4096?type=text/html", gz).header("content-encoding") is None
    assert call(p, "GET", "/bytes/4096?type=image/png", gz).header("content-encoding") is None


def test_debug_mode(resp):
    p = resp.port
    h = sign("GET", "/signed/a", KEY1, SECRET1, headers={"x-ca-request-mode": "debug"})
    r = call(p, "GET", "/signed/a", h)
    assert r.status == 200
    info = r.header("x-ca-debug-info")
    assert info and info.startswith("api=signed;stage=RELEASE;app=10001;plugins=circuitBreaker/breaker;filterMicros=")
    assert SECRET1 not in info
    # ignored for anonymous callers and without the header
    assert call(p, "GET", "/status/200", {"x-ca-request-mode": "debug"}).header("x-ca-debug-info") is None
    assert call(p, "GET", "/signed/a", sign("GET", "/signed/a", KEY1, SECRET1)).header("x-ca-debug-info") is None


def test_a_request_whose_client_leaves_before_the_answer_is_counted_and_recorded(backend, tmp_path):
    """The client closes its connection while the backend works: the request is still counted
    (cagate_requests{cagate_code="NO_RESPONSE"}) and its access record, status 0, is in Envoy's
    access log line."""
    import json
    import socket
    log = tmp_path / "access.log"
    access_log = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": str(log), "log_format": {"json_format": {
            "cagate": "%FILTER_STATE(wasm.cagate:PLAIN)%", "status": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%"}}}}]
    config = {"apis": [{"name": "slow", "method": "GET", "path": "/hang/[seconds]", "authType": "ANONYMOUS"}]}
    with Envoy(config, backend.port, hcm_options={"access_log": access_log}) as e:
        with socket.create_connection(("127.0.0.1", e.port)) as s:
            s.sendall(b"GET /hang/2 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.5)

        def lines():
            return [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.exists() else []

        def counted():
            return [l for l in e.stats().splitlines()
                    if l.startswith("cagate_requests{") and 'cagate_code="NO_RESPONSE"' in l and 'cagate_api="slow"' in l
                    and not l.endswith(" 0")]
        deadline = time.time() + 10
        while not (counted() and lines()):
            assert time.time() < deadline, (e.stats()[-2000:], lines())
            time.sleep(0.2)
        assert counted()[0].endswith(" 1"), counted()
        (line,) = [l for l in lines() if l["path"] == "/hang/2"]
        assert line["status"] == 0, line
        record = json.loads(line["cagate"])
        assert (record["apiName"], record["statusCode"]) == ("slow", 0), record
        assert "errorCode" not in record, record
