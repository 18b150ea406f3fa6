"""The gate against a real Envoy: what a client and the backend see."""
import re
import threading
import time
import uuid
from urllib.parse import urlencode

from conftest import APPCODE1, KEY1, KEY2, KEY3, SECRET1, SECRET2, SECRET3, call
from harness.signer import sign, string_to_sign

UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")


def signed_get(port, path, key=KEY1, secret=SECRET1, **kw):
    extra = kw.pop("headers", {})
    return call(port, "GET", path, sign("GET", path, key, secret, headers=extra, **kw))


def assert_refused(r, status, code, message=None):
    assert r.status == status, r
    assert r.code == code, r
    assert UUID.match(r.header("x-ca-request-id")), r
    body = r.json()
    assert body["code"] == code and body["requestId"] == r.header("x-ca-request-id")
    assert body["message"] == r.header("x-ca-error-message")
    if message is not None:
        assert r.header("x-ca-error-message") == message, r


def test_signed_request_reaches_backend_with_identity(gate):
    r = signed_get(gate.port, "/orders/42?b=2&a=1", headers={"accept": "application/json"})
    assert r.status == 200, r
    assert r.code is None and r.header("x-ca-error-message") is None
    rid = r.header("x-ca-request-id")
    assert UUID.match(rid)
    seen = r.json()
    assert seen["path"] == "/orders/42?b=2&a=1"
    assert seen["headers"]["x-ca-app-id"] == ["10001"]
    assert seen["headers"]["x-ca-api-name"] == ["orders"]
    assert seen["headers"]["x-ca-request-id"] == [rid]


def test_request_ids_are_fresh(gate):
    ids = {signed_get(gate.port, "/orders/1").header("x-ca-request-id") for _ in range(5)}
    ids |= {call(gate.port, "GET", "/nowhere").header("x-ca-request-id") for _ in range(5)}
    assert len(ids) == 10


def test_forged_identity_headers_are_replaced(gate):
    forged = {"x-ca-app-id": "99999", "x-ca-api-name": "admin", "x-ca-request-id": "forged"}
    r = signed_get(gate.port, "/orders/7", headers=forged)
    assert r.status == 200, r
    h = r.json()["headers"]
    assert h["x-ca-app-id"] == ["10001"] and h["x-ca-api-name"] == ["orders"]
    assert h["x-ca-request-id"] == [r.header("x-ca-request-id")]


def test_anonymous_api_passes_without_credentials_and_strips_forgery(gate):
    r = call(gate.port, "POST", "/public/anything/here", {"x-ca-app-id": "99999", "x-ca-api-name": "x"}, b"{}")
    assert r.status == 200, r
    h = r.json()["headers"]
    assert "x-ca-app-id" not in h
    assert h["x-ca-api-name"] == ["public"]
    assert UUID.match(r.header("x-ca-request-id"))


def test_official_python_sdk_signs_requests_the_gateway_accepts(gate):
    from com.aliyun.api.gateway.sdk import client
    from com.aliyun.api.gateway.sdk.common import constant
    from com.aliyun.api.gateway.sdk.http import request

    c = client.DefaultClient(app_key=KEY1, app_secret=SECRET1)
    # GET with a query
    req = request.Request(host="127.0.0.1", protocol=constant.HTTP, url="/orders/77?x=1&y=two", method="GET", time_out=10)
    headers = c.build_headers(req)
    r = call(gate.port, "GET", "/orders/77?x=1&y=two", headers)
    assert r.status == 200, r
    assert r.json()["headers"]["x-ca-app-id"] == ["10001"]
    # POST form: the SDK signs the form fields, and sends them urlencoded
    req = request.Request(host="127.0.0.1", protocol=constant.HTTP, url="/form?q=1", method="POST", time_out=10)
    req.set_content_type(constant.CONTENT_TYPE_FORM)
    req.set_body({"name": "小 明", "n": "1"})
    headers = c.build_headers(req)
    body = urlencode(req.get_body()).encode()
    r = call(gate.port, "POST", "/form?q=1", headers, body)
    assert r.status == 200, r
    assert r.json()["headers"]["x-ca-api-name"] == ["form"]


def test_form_parameters_are_signed(gate):
    body = "nick=%E5%B0%8F+%E6%98%8E&password=123&username=xiaoming"
    h = sign("POST", "/form?param1=test", KEY1, SECRET1, body=body.encode(),
             headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert call(gate.port, "POST", "/form?param1=test", h, body).status == 200
    h = sign("POST", "/form?param1=test", KEY1, SECRET1, body=body.encode(),
             headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"})
    r = call(gate.port, "POST", "/form?param1=test", h, body.replace("123", "124"))
    assert_refused(r, 403, "A403IS")
    assert "password=124" in r.header("x-ca-error-message")


def test_hmac_sha1_and_decoded_or_raw_path(gate):
    assert signed_get(gate.port, "/orders/1", alg="HmacSHA1").status == 200
    raw = "/api/%E7%94%A8%E6%88%B7"
    # Java/Python: sign the decoded path
    assert call(gate.port, "GET", raw, sign("GET", raw, KEY1, SECRET1)).status == 200
    # Node: sign the path exactly as sent
    h = sign("GET", raw, KEY1, SECRET1)
    from harness.signer import signature
    sts = string_to_sign("GET", raw, h).replace("/api/用户", raw)
    h["x-ca-signature"] = signature(SECRET1, sts)
    assert call(gate.port, "GET", raw, h).status == 200


def test_a_signed_host_header(gate):
    # Envoy hands the filter Host as :authority; a client that lists `host` signs the Host it sends
    # (http.client sends 127.0.0.1:PORT itself, so the signed copy is not sent twice).
    host = f"127.0.0.1:{gate.port}"
    signed = ("x-ca-key", "x-ca-nonce", "x-ca-timestamp", "host")
    h = sign("GET", "/orders/3", KEY1, SECRET1, headers={"host": host}, signed=signed)
    assert "host" in h["x-ca-signature-headers"]
    sent = {k: v for k, v in h.items() if k != "host"}
    assert call(gate.port, "GET", "/orders/3", sent).status == 200
    other = sign("GET", "/orders/3", KEY1, SECRET1, headers={"host": "api.example.com"}, signed=signed)
    sent = {k: v for k, v in other.items() if k != "host"}
    assert_refused(call(gate.port, "GET", "/orders/3", sent), 403, "A403IS")


def test_error_message_carries_server_string_to_sign(gate):
    h = sign("GET", "/orders/5?z=1", KEY1, "wrong-secret", headers={"accept": "text/plain"})
    r = call(gate.port, "GET", "/orders/5?z=1", h)
    expected = string_to_sign("GET", "/orders/5?z=1", h).replace("\n", "#")
    assert_refused(r, 403, "A403IS", f"Invalid Signature, Server StringToSign:`{expected}`")


def test_unsupported_signature_method(gate):
    h = sign("GET", "/orders/5", KEY1, SECRET1)
    h["x-ca-signature-method"] = "HmacMD5"
    # The signing contract: an unsupported method is a mismatch, reported with the StringToSign.
    r = call(gate.port, "GET", "/orders/5", h)
    assert_refused(r, 403, "A403IS")
    assert r.header("x-ca-error-message").startswith("Invalid Signature, Server StringToSign:`GET#")


def test_routing_errors(gate):
    assert_refused(signed_get(gate.port, "/nope"), 404, "I404NF")
    assert_refused(call(gate.port, "POST", "/orders/1", {}, b""), 404, "I404NF")
    assert_refused(signed_get(gate.port, "/orders/1", headers={"x-ca-stage": "PRE"}), 404, "I404NF")
    assert_refused(signed_get(gate.port, "/orders/1", headers={"x-ca-stage": "DEV"}), 400, "I400SG", "Invalid Stage")
    assert signed_get(gate.port, "/orders/1", headers={"x-ca-stage": "TEST"}).status == 200


def test_credential_errors(gate):
    assert_refused(call(gate.port, "GET", "/orders/1"), 400, "A400MA",
                   "Need authorization, `X-Ca-Key` or `Authorization: APPCODE ...` is required")
    assert_refused(signed_get(gate.port, "/orders/1", key="nobody"), 400, "A400IK", "Invalid AppKey")
    assert_refused(call(gate.port, "GET", "/orders/1", {"authorization": "APPCODE 0000"}), 400, "A400AC")
    assert_refused(call(gate.port, "GET", f"/orders/1?AppCode={APPCODE1}"), 400, "A400AC")


def test_appcode(gate):
    r = call(gate.port, "GET", "/orders/9", {"authorization": f"APPCODE {APPCODE1}"})
    assert r.status == 200, r
    assert r.json()["headers"]["x-ca-app-id"] == ["10001"]
    for spelling in ["AppCode", "appcode", "appCode", "APPCODE", "APPCode"]:
        r = call(gate.port, "GET", f"/qcode?{spelling}={APPCODE1}")
        assert r.status == 200, (spelling, r)
    assert_refused(call(gate.port, "GET", "/form", {"authorization": f"APPCODE {APPCODE1}"}), 404, "I404NF")
    assert_refused(call(gate.port, "POST", "/form", {"authorization": f"APPCODE {APPCODE1}"}, b""), 400, "A400AC")


def test_timestamp_and_nonce(gate):
    old = int((time.time() - 901) * 1000)
    assert_refused(signed_get(gate.port, "/orders/1", timestamp=old), 403, "S403TE", "X-Ca-Timestamp is expired")
    future = int((time.time() + 901) * 1000)
    assert_refused(signed_get(gate.port, "/orders/1", timestamp=future), 403, "S403TE")
    assert_refused(signed_get(gate.port, "/orders/1", timestamp="12:00"), 403, "S403TE")  # malformed, as expired
    assert_refused(signed_get(gate.port, "/orders/1", timestamp=False), 403, "S403TE")  # nonce without timestamp
    assert signed_get(gate.port, "/orders/1", timestamp=False, nonce=False).status == 200
    assert_refused(signed_get(gate.port, "/strict", nonce=False), 400, "I400NC", "X-Ca-Nonce is required")
    assert signed_get(gate.port, "/strict").status == 200
    h = sign("GET", "/orders/3", KEY1, SECRET1)
    assert call(gate.port, "GET", "/orders/3", h).status == 200
    assert_refused(call(gate.port, "GET", "/orders/3", h), 403, "S403NU", "Nonce Used")


def test_nonce_is_recorded_only_after_the_signature_verifies(gate):
    nonce = str(uuid.uuid4())
    bad = sign("GET", "/orders/3", KEY1, "not-the-secret", nonce=nonce)
    assert_refused(call(gate.port, "GET", "/orders/3", bad), 403, "A403IS")
    good = sign("GET", "/orders/3", KEY1, SECRET1, nonce=nonce)
    assert call(gate.port, "GET", "/orders/3", good).status == 200


def test_nonce_replay_refused_across_worker_threads(gate):
    """The same signed request on 24 connections at once: Envoy runs 4 workers, the connections spread
    over them, and exactly one request may pass."""
    h = sign("GET", "/orders/11", KEY1, SECRET1)
    results = []
    barrier = threading.Barrier(24)

    def shoot():
        barrier.wait()
        results.append(call(gate.port, "GET", "/orders/11", h))

    threads = [threading.Thread(target=shoot) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert statuses.count(200) == 1, statuses
    assert all(r.code == "S403NU" for r in results if r.status != 200)
    # more than one worker really served these connections
    workers = set(re.findall(r"\[(\d+)\].*cagate: refused", gate.log_text()))
    assert len(workers) >= 2 or gate.concurrency == 1, workers


def test_requests_alibaba_s_sdks_sign_as_aliyun_admits_them(gate):
    """Without signature.strict, what Aliyun admits from its SDKs passes: an array parameter (its first
    value signed, every value forwarded), a name in both the query and the form with one value (the
    Python SDK repeats the query in the form), a nonce and a timestamp the SDK's demo sends without
    listing them. A name in both with two values is refused even so: the form's is signed, and a
    backend may read the query's."""
    h = sign("GET", "/orders/1?tag=x&tag=y", KEY1, SECRET1)
    r = call(gate.port, "GET", "/orders/1?tag=x&tag=y", h)
    assert r.status == 200 and r.json()["path"] == "/orders/1?tag=x&tag=y", r
    form = {"content-type": "application/x-www-form-urlencoded"}
    h = sign("POST", "/form?item=pen", KEY1, SECRET1, headers=form, body=b"item=pen&n=1")
    assert call(gate.port, "POST", "/form?item=pen", h, "item=pen&n=1").status == 200
    h = sign("POST", "/form?item=pen", KEY1, SECRET1, headers=form, body=b"item=book")
    assert_refused(call(gate.port, "POST", "/form?item=pen", h, "item=book"), 400, "I400BD")
    h = sign("GET", "/orders/1", KEY1, SECRET1, signed=())
    assert "x-ca-signature-headers" not in h or not h["x-ca-signature-headers"]
    assert call(gate.port, "GET", "/orders/1", h).status == 200


def test_content_md5(gate):
    body = b'{"a":1}'
    h = sign("PUT", "/upload", KEY1, SECRET1, body=body, content_md5=True, headers={"content-type": "application/json"})
    assert call(gate.port, "PUT", "/upload", h, body).status == 200
    h = sign("PUT", "/upload", KEY1, SECRET1, body=body, content_md5=True, headers={"content-type": "application/json"})
    assert_refused(call(gate.port, "PUT", "/upload", h, b'{"a":2}'), 400, "I400I5")
    # An ANONYMOUS API checks a Content-MD5 too, when one is sent.
    md5 = {"content-md5": h["content-md5"], "content-type": "application/json"}
    assert call(gate.port, "POST", "/public/x", md5, body).status == 200
    assert_refused(call(gate.port, "POST", "/public/x", md5, b'{"a":2}'), 400, "I400I5")
    # Some Node clients send an empty Content-MD5 on a request without a body: it claims nothing.
    h = sign("GET", "/orders/1", KEY1, SECRET1, headers={"content-md5": ""})
    assert call(gate.port, "GET", "/orders/1", h).status == 200


def test_body_limit(gate):
    big = b"a=" + b"x" * 5000
    h = sign("POST", "/form", KEY1, SECRET1, body=big, headers={"content-type": "application/x-www-form-urlencoded"})
    assert_refused(call(gate.port, "POST", "/form", h, big), 413, "I413RL", "Request body too Large")


def test_authorization(gate):
    assert_refused(signed_get(gate.port, "/orders/1", key=KEY3, secret=SECRET3), 403, "A403EP", "App authorization expired")
    assert_refused(signed_get(gate.port, "/orders/1", key=KEY2, secret=SECRET2), 403, "A403UA", "Unauthorized")


def test_non_utf8_header_bytes_refused_and_vm_survives(gate):
    h = sign("GET", "/orders/1", KEY1, SECRET1, headers={"x-name": "中"}, signed=("x-ca-key", "x-name"))
    h["x-name"] = "中".encode("utf-8")[:2] + b"?\x80\xff"  # what Java's client does to non-ASCII
    r = call(gate.port, "GET", "/orders/1", h)
    assert_refused(r, 403, "A403IS")
    assert "x-name:%E4%B8?%80%FF" in r.header("x-ca-error-message")
    for _ in range(8):  # every worker still answers
        assert signed_get(gate.port, "/orders/1").status == 200


def test_stats_are_exported(gate):
    signed_get(gate.port, "/orders/1")
    assert_refused(signed_get(gate.port, "/orders/1", key="nobody"), 400, "A400IK")
    time.sleep(1.2)  # counters reach Envoy on the filter's flush timer (every 0.5 s)
    text = gate.stats()
    allowed = re.search(r"^\S*cagate_requests_allowed\S* (\d+)", text, re.M)
    refused = re.search(r'^cagate_refused\{code="A400IK"\} (\d+)', text, re.M)
    assert allowed and int(allowed.group(1)) >= 1, text[-3000:]
    assert refused and int(refused.group(1)) >= 1, text[-3000:]
