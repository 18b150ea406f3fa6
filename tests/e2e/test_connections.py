"""Refusals and HTTP/1.1 keep-alive.

Envoy closes an HTTP/1.1 connection after every local reply with status 400, whatever filter sent it
(`ConnectionManagerImpl::ActiveStream::onLocalReply`: a 400 on a codec older than HTTP/2 sets
`saw_connection_close_` unless the codec was told `stream_error_on_invalid_http_message`). So without
help, each of cagate's 400 refusals (A400MA, A400IK, I400SG, …) goes out with `connection: close` and
costs the client a new TCP (or TLS) connection, while its 403s keep the connection. The sample
configurations set `http_protocol_options.override_stream_error_on_invalid_http_message: true`
(HTTP/1 only; the connection-manager-wide `stream_error_on_invalid_http_message` would also relax
HTTP/2), and then a 400 refusal keeps the connection like any other. A request Envoy's HTTP/1 codec
cannot parse still closes the connection, as does any refusal sent before the request body arrived.

These tests run Envoy with the connection-manager options read from envoy/envoy.yaml, and with the
same options less that switch (Envoy's default), to pin down both the fix and the explanation."""
import http.client
import socket
import uuid

import pytest

from conftest import GATE_CONFIG, KEY1, SECRET1, Response, _running
from harness.bootstraps import (COMPOSE_SAMPLE, SAMPLE, keeps_connection_after_400, sample_hcm_options,
                                without_stream_error_option)
from harness.envoy import Envoy
from harness.signer import sign

N = 20
ACCEPTED = "http.gateway.downstream_cx_total"  # connections Envoy accepted on the gateway listener


def _envoy(backend, hcm_options):
    e = Envoy(GATE_CONFIG, backend.port, hcm_options=hcm_options).start()
    _running.append(e)
    return e


@pytest.fixture(scope="module")
def sample(backend):
    """The sample configuration's connection-manager options (normalize_path, …, the 400 switch)."""
    e = _envoy(backend, sample_hcm_options())
    yield e
    _running.remove(e)
    e.stop()


@pytest.fixture(scope="module")
def envoy_default(backend):
    """The same options less the 400 switch: what Envoy does by default."""
    e = _envoy(backend, without_stream_error_option(sample_hcm_options()))
    yield e
    _running.remove(e)
    e.stop()


class CountingConnection(http.client.HTTPConnection):
    """One keep-alive client connection; http.client reconnects by itself when the server closed
    it, and each (re)connect is counted here."""
    connects = 0

    def connect(self):
        self.connects += 1
        super().connect()


def on_one_connection(envoy, requests):
    """Sends `requests` [(method, path, headers, body)] one after another on one keep-alive
    connection. Returns (responses, connections the client opened, connections Envoy accepted)."""
    before = envoy.counter(ACCEPTED)
    conn = CountingConnection("127.0.0.1", envoy.port, timeout=10)
    out = []
    try:
        for method, path, headers, body in requests:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            out.append(Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()))
    finally:
        conn.close()
    return out, conn.connects, envoy.counter(ACCEPTED) - before


def no_credentials():  # A400MA
    return ("GET", "/orders/7", {"accept": "application/json"}, None)


def bad_signature():  # A403IS
    return ("GET", "/orders/7", sign("GET", "/orders/7", KEY1, "not-the-secret"), None)


def signed():
    return ("GET", "/orders/7", sign("GET", "/orders/7", KEY1, SECRET1), None)


def assert_refusal(r, status, code):
    assert r.status == status and r.code == code, r
    assert r.header("x-ca-request-id") and r.header("x-ca-error-message"), r
    assert r.json()["code"] == code


def test_the_sample_configurations_keep_the_connection_after_a_400():
    for path in (SAMPLE, COMPOSE_SAMPLE):
        options = sample_hcm_options(path)
        assert keeps_connection_after_400(options), f"{path}: the 400 switch is missing"
        assert not keeps_connection_after_400(without_stream_error_option(options))
    assert sample_hcm_options(SAMPLE) == sample_hcm_options(COMPOSE_SAMPLE)


@pytest.mark.parametrize("setup", ["sample", "envoy_default"])
def test_403_refusals_stay_on_one_connection(request, setup):
    envoy = request.getfixturevalue(setup)
    responses, opened, accepted = on_one_connection(envoy, [bad_signature() for _ in range(N)])
    for r in responses:
        assert_refusal(r, 403, "A403IS")
        assert r.header("connection") != "close", r
    assert (opened, accepted) == (1, 1)


def test_400_refusals_stay_on_one_connection_with_the_sample_options(sample):
    responses, opened, accepted = on_one_connection(sample, [no_credentials() for _ in range(N)])
    for r in responses:
        assert_refusal(r, 400, "A400MA")
        assert r.header("connection") != "close", r
    assert (opened, accepted) == (1, 1)


def test_without_the_switch_envoy_closes_the_connection_after_every_400(envoy_default):
    """Envoy's default, and the reason for the switch: same refusal, one connection per request."""
    responses, opened, accepted = on_one_connection(envoy_default, [no_credentials() for _ in range(N)])
    for r in responses:
        assert_refusal(r, 400, "A400MA")  # the refusal itself is unchanged
        assert r.header("connection") == "close", r
    assert (opened, accepted) == (N, N)


def test_mixed_traffic_stays_on_one_connection(sample):
    stage = ("GET", "/orders/7", sign("GET", "/orders/7", KEY1, SECRET1, headers={"x-ca-stage": "DEV"}), None)
    unknown_key = ("GET", "/orders/7", sign("GET", "/orders/7", "nobody", SECRET1), None)
    requests, expected = [], []
    for _ in range(4):
        requests += [signed(), no_credentials(), bad_signature(), stage, unknown_key,
                     ("GET", f"/nowhere/{uuid.uuid4()}", {}, None)]
        expected += [(200, None), (400, "A400MA"), (403, "A403IS"), (400, "I400SG"), (400, "A400IK"), (404, "I404NF")]
    responses, opened, accepted = on_one_connection(sample, requests)
    assert [(r.status, r.code) for r in responses] == expected
    assert (opened, accepted) == (1, 1)


def test_a_request_envoy_cannot_parse_still_closes_the_connection(sample):
    """The switch's trade-off stays small: HTTP/1 codec errors (here a space in a header name) are
    answered with Envoy's own 400 and the connection is closed, switch or not."""
    with socket.create_connection(("127.0.0.1", sample.port), timeout=5) as s:
        s.sendall(b"GET /orders/7 HTTP/1.1\r\nhost: x\r\nbad header: v\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break  # closed by Envoy
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 400"), data
    assert b"connection: close" in head, data
