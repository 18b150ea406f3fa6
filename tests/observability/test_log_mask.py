"""The logMask plugin end to end: an Envoy with envoy/envoy.yaml's access log format written to a
file, an API with a logMask plugin bound and one without. On the masked API the access record shows
the nonce, Envoy's request id and the AppKey masked as the rules say, the masked values appear nowhere
in the log line, and the backend still receives every header and the query as the client sent them.
The API without the plugin records the same values in clear."""
import json
import uuid

from harness.backend import EchoBackend
from harness.client import call
from harness.envoy import Envoy
from harness.signer import sign
from test_prometheus import sample_access_log

KEY, SECRET = "mask-key-123456", "mask-secret-0123456789abcdef0123"

CONFIG = {
    "apps": [{"appId": 1, "appKey": KEY, "appSecret": SECRET}],
    "plugins": [{"name": "mask", "type": "logMask", "data": {"maskRules": [
        {"name": "nonce", "policy": "KEEP_LEFT:4", "location": "HEADER", "parameters": ["X-Ca-Nonce"]},
        {"name": "ids", "policy": "KEEP_RIGHT:3", "location": "HEADER", "parameters": "X-Request-Id,X-Ca-Key"},
        {"name": "phone", "policy": "ALL", "location": "QUERY", "parameters": ["phone"]},
    ]}}],
    "apis": [
        {"name": "masked", "method": "GET", "path": "/masked", "authorizations": [{"appId": 1}],
         "plugins": [{"plugin": "mask"}]},
        {"name": "clear", "method": "GET", "path": "/clear", "authorizations": [{"appId": 1}]},
    ],
}


def masked(value, keep_left=None, keep_right=None):
    n = len(value)
    if keep_left is not None:
        return value[:keep_left] + "*" * max(n - keep_left, 0)
    return "*" * max(n - keep_right, 0) + value[-keep_right:]


def test_log_mask_masks_the_record_only(tmp_path):
    log_path = tmp_path / "access.log"
    sent = {}
    with EchoBackend() as backend:
        with Envoy(CONFIG, backend.port, hcm_options={"access_log": sample_access_log(log_path)}) as e:
            for api in ("masked", "clear"):
                nonce = f"nonce-{uuid.uuid4()}"
                path = f"/{api}?phone=13800138000&page=1"
                h = sign("GET", path, KEY, SECRET, nonce=nonce)
                r = call(e.port, "GET", path, h)
                assert r.status == 200, (api, r.status, r.code)
                echoed = json.loads(r.body)
                # The backend gets every value as the client sent it: masking is for the record only.
                assert echoed["path"] == path, echoed
                assert echoed["headers"]["x-ca-nonce"] == [nonce], echoed["headers"]
                (rid,) = echoed["headers"]["x-request-id"]  # Envoy's, as the backend got it
                assert echoed["headers"]["x-ca-key"] == [KEY], echoed["headers"]
                sent[r.header("x-ca-request-id")] = (api, nonce, rid)

    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    records = {}
    for line in lines:
        record = json.loads(line["cagate"])
        records[record["requestId"]] = (line, record)
    assert set(sent) <= set(records), (sent, records)
    for request_id, (api, nonce, rid) in sent.items():
        line, record = records[request_id]
        raw = json.dumps(line)
        assert "13800138000" not in raw, line  # the record never holds the query
        if api == "clear":
            assert (record["clientNonce"], record["envoyRequestId"], record["appKey"]) == (nonce, rid, KEY), record
            continue
        assert record["clientNonce"] == masked(nonce, keep_left=4), record
        assert record["envoyRequestId"] == masked(rid, keep_right=3), record
        assert record["appKey"] == masked(KEY, keep_right=3), record
        assert record["apiName"] == "masked" and record["statusCode"] == 200, record
        # The masked parts are nowhere in the record (Envoy's own x_request_id field of the line is the
        # access log format's, not the record's: leave it out of the sample format to hide it).
        record_text = line["cagate"]
        for value in (nonce[4:], rid[:-3], KEY[:-3]):
            assert value not in record_text, (value, record_text)
