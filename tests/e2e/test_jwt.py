"""The jwtAuth plugin against a real Envoy: tokens minted by PyJWT, claims at the backend, every
error code, jti replay across workers, and a remote JWKS that rotates and goes down."""
import threading
import time

import pytest

from conftest import KEY1, SECRET1, call
from harness.envoy import Envoy, free_port, static_cluster
from harness.jwks import JwksServer, KeyPair
from harness.signer import sign
from test_gate import assert_refused

KEYS = {alg: KeyPair(alg, f"kid-{alg}") for alg in ["RS256", "PS256", "ES256", "EdDSA", "HS256"]}
ROTATE_1, ROTATE_2 = KeyPair("RS256", "remote-1"), KeyPair("ES256", "remote-2")
DEAD_PORT = free_port()


@pytest.fixture(scope="module")
def jwks_server():
    s = JwksServer([ROTATE_1])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def jwt_gate(backend, jwks_server):
    static = {"parameter": "Authorization", "parameterLocation": "header",
              "jwks": [k.jwk for k in KEYS.values()],
              "claimParameters": [{"claimName": "userId", "parameterName": "X-User-Id", "location": "header"},
                                  {"claimName": "sub", "parameterName": "subject", "location": "query"}]}
    config = {
        "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
        "plugins": [
            {"name": "users-jwt", "type": "jwtAuth", "data": static},
            {"name": "query-jwt", "type": "jwtAuth",
             "data": "parameter: token\nparameterLocation: query\njwk:\n" +
                     "".join(f"  {k}: {v}\n" for k, v in KEYS["ES256"].jwk.items())},
            {"name": "cookie-jwt", "type": "jwtAuth",
             "data": {"parameter": "session", "parameterLocation": "cookie", "jwk": KEYS["EdDSA"].jwk}},
            {"name": "once-jwt", "type": "jwtAuth",
             "data": {"parameter": "Authorization", "jwk": KEYS["HS256"].jwk, "preventJtiReplay": True}},
            {"name": "remote-jwt", "type": "jwtAuth",
             "data": {"parameter": "Authorization", "jwksUri": "http://jwks.local/keys", "jwksCluster": "jwks",
                      "jwksRefreshSeconds": 1}},
            {"name": "dead-jwt", "type": "jwtAuth",
             "data": {"parameter": "Authorization", "jwksUri": "http://jwks.local/keys", "jwksCluster": "dead",
                      "jwksRefreshSeconds": 1, "jwksTimeoutMs": 500}},
            {"name": "unsent-jwt", "type": "jwtAuth",
             "data": {"parameter": "Authorization", "jwksUri": "http://jwks.local/keys", "jwksCluster": "nowhere",
                      "jwksRefreshSeconds": 1}},
        ],
        "groupPlugins": [{"plugin": "users-jwt"}],
        "apis": [
            {"name": "profile", "method": "GET", "path": "/users/[userId]", "authType": "ANONYMOUS"},
            {"name": "by-query", "method": "GET", "path": "/q", "authType": "ANONYMOUS", "plugins": [{"plugin": "query-jwt"}]},
            {"name": "by-cookie", "method": "GET", "path": "/c", "authType": "ANONYMOUS", "plugins": [{"plugin": "cookie-jwt"}]},
            {"name": "once", "method": "GET", "path": "/once", "authType": "ANONYMOUS", "plugins": [{"plugin": "once-jwt"}]},
            {"name": "remote", "method": "GET", "path": "/remote", "authType": "ANONYMOUS", "plugins": [{"plugin": "remote-jwt"}]},
            {"name": "dead", "method": "GET", "path": "/dead", "authType": "ANONYMOUS", "plugins": [{"plugin": "dead-jwt"}]},
            {"name": "unsent", "method": "GET", "path": "/unsent", "authType": "ANONYMOUS", "plugins": [{"plugin": "unsent-jwt"}]},
            {"name": "signed-and-jwt", "method": "GET", "path": "/both", "authorizations": [{"appId": 10001}]},
        ],
    }
    clusters = [static_cluster("jwks", jwks_server.port), static_cluster("dead", DEAD_PORT)]
    with Envoy(config, backend.port, concurrency=4, extra_clusters=clusters) as e:
        from conftest import _running
        _running.append(e)
        yield e
        _running.remove(e)


def bearer(token):
    return {"authorization": f"Bearer {token}"}


def test_each_algorithm_and_claims_reach_backend(jwt_gate):
    for alg, key in KEYS.items():
        r = call(jwt_gate.port, "GET", "/users/42?x=1&subject=forged", dict(bearer(key.token(userId="42")), **{"x-user-id": "forged"}))
        assert r.status == 200, (alg, r)
        seen = r.json()
        assert seen["headers"]["x-user-id"] == ["42"], alg
        assert seen["path"] == "/users/42?x=1&subject=user-1", alg


def test_token_locations(jwt_gate):
    assert call(jwt_gate.port, "GET", f"/q?token={KEYS['ES256'].token()}").status == 200
    assert call(jwt_gate.port, "GET", "/c", {"cookie": f"a=1; session={KEYS['EdDSA'].token()}"}).status == 200
    assert call(jwt_gate.port, "GET", "/users/1", {"authorization": KEYS["RS256"].token()}).status == 200  # no Bearer


def test_error_codes(jwt_gate):
    p = jwt_gate.port
    assert_refused(call(p, "GET", "/users/1"), 400, "I400JR", "JWT required")
    assert_refused(call(p, "GET", "/users/1", bearer("not.a.jwt")), 400, "I400JD")
    good = KEYS["RS256"].token()
    head, body, sig = good.split(".")
    assert_refused(call(p, "GET", "/users/1", bearer(f"{head}.{KEYS['RS256'].token().split('.')[1]}.{sig}")), 403, "A403JT",
                   "Invalid JWT: signature mismatch")
    assert_refused(call(p, "GET", "/users/1", bearer(KeyPair("RS256", "stranger").token())), 403, "A403JK",
                   "No matching JWK, `stranger` not found")
    expired = KEYS["ES256"].token(lifetime=-3600)
    r = call(p, "GET", "/users/1", bearer(expired))
    assert_refused(r, 403, "A403JE")
    assert r.header("x-ca-error-message").startswith("JWT is expired at `")
    assert_refused(call(p, "GET", "/once", bearer(KEYS["HS256"].token(jti=None))), 403, "S403JI")
    t = KEYS["HS256"].token()
    assert call(p, "GET", "/once", bearer(t)).status == 200
    assert_refused(call(p, "GET", "/once", bearer(t)), 403, "A403SV", "Claim `jti` in JWT is used")


def test_alg_none_refused(jwt_gate):
    import base64
    enc = lambda s: base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()  # noqa: E731
    token = enc('{"alg":"none"}') + "." + enc('{"sub":"admin"}') + "."
    assert_refused(call(jwt_gate.port, "GET", "/users/1", bearer(token)), 403, "A403JT")


def test_jti_replay_across_workers(jwt_gate):
    t = KEYS["HS256"].token()
    results = []
    barrier = threading.Barrier(24)

    def shoot():
        barrier.wait()
        results.append(call(jwt_gate.port, "GET", "/once", bearer(t)))

    threads = [threading.Thread(target=shoot) for _ in range(24)]
    [th.start() for th in threads]
    [th.join() for th in threads]
    assert sorted(r.status for r in results).count(200) == 1
    assert all(r.code == "A403SV" for r in results if r.status != 200)


def test_signature_and_jwt_together(jwt_gate):
    t = KEYS["RS256"].token(userId="7")
    h = sign("GET", "/both", KEY1, SECRET1, headers=bearer(t))
    r = call(jwt_gate.port, "GET", "/both", h)
    assert r.status == 200, r
    assert r.json()["headers"]["x-ca-app-id"] == ["10001"]
    assert r.json()["headers"]["x-user-id"] == ["7"]
    assert_refused(call(jwt_gate.port, "GET", "/both", sign("GET", "/both", KEY1, SECRET1)), 400, "I400JR")
    assert_refused(call(jwt_gate.port, "GET", "/both", bearer(t)), 400, "A400MA")


def eventually(check, timeout=15):
    deadline = time.time() + timeout
    while True:
        r = check()
        if r is True or time.time() > deadline:
            return r
        time.sleep(0.2)


def test_no_key_set_loaded_refuses(jwt_gate):
    r = call(jwt_gate.port, "GET", "/dead", bearer(ROTATE_1.token()))
    assert_refused(r, 403, "A403JK")


def test_a_jwks_fetch_envoy_cannot_send_is_counted_as_failed(jwt_gate):
    """jwksCluster names a cluster Envoy lacks: tokens get A403JK, and each attempt counts as a failed
    fetch (cagate_jwks{result="failed"}), which is what CagateJwksFailing watches."""
    assert_refused(call(jwt_gate.port, "GET", "/unsent", bearer(ROTATE_1.token())), 403, "A403JK")

    def failed():
        for line in jwt_gate.stats().splitlines():
            if line.startswith("cagate_jwks{") and 'cagate_plugin="unsent-jwt"' in line and 'cagate_result="failed"' in line:
                return int(line.rsplit(" ", 1)[1]) > 0
        return False
    assert eventually(failed) is True, [l for l in jwt_gate.stats().splitlines() if l.startswith("cagate_jwks")]


def test_remote_jwks_loads_rotates_and_survives_the_server(jwt_gate, jwks_server):
    p = jwt_gate.port
    assert eventually(lambda: call(p, "GET", "/remote", bearer(ROTATE_1.token())).status == 200) is True
    # A key set over 1 MiB is refused whatever it holds: the last good keys stay.
    jwks_server.keys, jwks_server.size = [ROTATE_2], 1024 * 1024 + 1
    assert eventually(lambda: "JWKS refused (the JWKS is larger than 1048576 bytes)" in jwt_gate.log_text()) is True
    assert call(p, "GET", "/remote", bearer(ROTATE_1.token())).status == 200
    assert_refused(call(p, "GET", "/remote", bearer(ROTATE_2.token())), 403, "A403JK")
    jwks_server.size = 1024 * 1024  # at the limit: rotation, the old key is gone
    assert eventually(lambda: call(p, "GET", "/remote", bearer(ROTATE_2.token())).status == 200) is True
    assert eventually(lambda: call(p, "GET", "/remote", bearer(ROTATE_1.token())).code == "A403JK") is True
    jwks_server.stop()  # the JWKS server goes down: the last good keys stay
    time.sleep(2.5)
    for _ in range(8):
        assert call(p, "GET", "/remote", bearer(ROTATE_2.token())).status == 200
    assert "JWKS fetch failed" in jwt_gate.log_text()
