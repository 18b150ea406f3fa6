#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) and dictionaries (fuzz/dict/) from
the repository's tests: the configurations, requests, conditions and plugin data of
filter/core/tests/*.rs, filter/core/src (unit tests), tests/e2e, envoy/envoy.yaml, and the tokens and
keys of filter/core/tests/data/jwt_vectors.json. Standard library only; deterministic. Run it from
anywhere: `python3 fuzz/seeds.py`. The output is checked in; the fuzz runs copy it to a temporary
directory, so it does not grow.

The request format (targets request_path, string_to_sign) is described in fuzz/src/lib.rs."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "fuzz")
NOW = 1_800_000_000_000
APPS = {"k1": "test-app-secret-1-0123456789abcdef", "k2": "s2-0123456789abcdef", "k3": "s3-0123456789abcdef"}
VECTORS = json.load(open(os.path.join(ROOT, "filter/core/tests/data/jwt_vectors.json")))


def vec(alg):
    return next(v for v in VECTORS if v["alg"] == alg)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


HS_SECRET = b64u_dec(vec("HS256")["jwk"]["k"])


def mint(claims, header=None, alg="HS256"):
    """An HS256 token with the vectors' oct key (the key request_path and jwt configure)."""
    header = header or {"alg": alg, "typ": "JWT"}
    inp = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + b64u(json.dumps(claims, separators=(",", ":")).encode())
    h = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(header.get("alg"), hashlib.sha256)
    return inp + "." + b64u(hmac.new(HS_SECRET, inp.encode(), h).digest())


# ------------------------------------------------------------------------------------------------
# The request format


def serialize(pairs):
    out = struct.pack("<I", len(pairs))
    for n, v in pairs:
        out += struct.pack("<II", len(n), len(v))
    for n, v in pairs:
        out += n + b"\0" + v + b"\0"
    return out


def b(x):
    return x if isinstance(x, bytes) else x.encode()


def request(control, method, path, headers=(), body=b""):
    """`control` byte, `METHOD PATH\\n`, header lines, an empty line, the body. Control bits 0-1 == 2
    writes the header section as the serialized map (with :method and :path) instead of lines."""
    method, path, body = b(method), b(path), b(body)
    pairs = [(b(n), b(v)) for n, v in headers]
    if control & 3 == 2:
        head = serialize([(b":method", method), (b":path", path)] + pairs)
    else:
        head = b"".join(n + b": " + v + b"\n" for n, v in pairs)
    return bytes([control]) + method + b" " + path + b"\n" + head + b"\n" + body


def string_to_sign(method, path, headers, form=None):
    """The server's canonical StringToSign (spec/signature.md), for seeds without the re-sign bit."""
    h = {}
    for n, v in headers:
        h.setdefault(n, v)
    out = method + "".join("\n" + h.get(n, "") for n in ("accept", "content-md5", "content-type", "date")) + "\n"
    listed = sorted({x.strip() for x in h.get("x-ca-signature-headers", "").split(",") if x.strip()} -
                    {"x-ca-signature", "x-ca-signature-headers", "accept", "content-md5", "content-type", "date"})
    for name in listed:
        value = next((v for n, v in headers if n.lower() == name.lower()), "")
        out += f"{name}:{value}\n"
    from urllib.parse import unquote, unquote_plus
    raw, _, query = path.partition("?")
    params = []
    for s in (query, form or ""):
        for piece in s.split("&"):
            if piece:
                n, eq, v = piece.partition("=")
                params.append((unquote_plus(n), unquote_plus(v) if v else None))
    params.sort(key=lambda p: p[0].encode())
    seen, tail = set(), []
    for n, v in params:
        if n not in seen:
            seen.add(n)
            tail.append(n if v is None else f"{n}={v}")
    return out + unquote(raw) + ("?" + "&".join(tail) if tail else "")


def signed(method, path, key="k1", nonce=None, ts=NOW, extra=(), form=None, content_type=None):
    hs = [("x-ca-key", key)]
    listed = ["x-ca-key"]
    if nonce:
        hs.append(("x-ca-nonce", nonce))
        listed.append("x-ca-nonce")
    if ts is not None:
        hs.append(("x-ca-timestamp", str(ts)))
        listed.append("x-ca-timestamp")
    if content_type:
        hs.append(("content-type", content_type))
    hs += list(extra)
    hs.append(("x-ca-signature-headers", ",".join(listed)))
    sts = string_to_sign(method, path, hs, form)
    secret = APPS.get(key, "wrong")
    hs.append(("x-ca-signature", base64.b64encode(hmac.new(secret.encode(), sts.encode(), hashlib.sha256).digest()).decode()))
    return hs


def request_path_seeds():
    t = vec("HS256")["token"]
    admin = mint({"sub": "u", "userId": "7", "userType": "admin", "exp": 4102444800})
    user42 = mint({"sub": "user-1", "userId": "42", "iss": "https://issuer.example", "aud": ["x", "cagate"], "jti": "j-1", "exp": 4102444800})
    odd_claims = mint({"userId": 42, "sub": {"a": [1, 2]}, "exp": "soon", "nbf": 4102444800, "aud": "nope"})
    form = "application/x-www-form-urlencoded"
    s = {}
    s["gate-signed-get"] = request(0, "GET", "/orders/1", signed("GET", "/orders/1", nonce="n-1", extra=[("x-forwarded-for", "198.51.100.1")]) + [(":authority", "example.com")])
    s["gate-signed-get-test-stage"] = request(0x10, "GET", "/orders/1?fields=a,b&junk=1",
                                              signed("GET", "/orders/1?fields=a,b&junk=1", extra=[("x-ca-stage", "TEST"), ("x-tenant", "t1"), ("x-forwarded-for", "198.51.100.1")]))
    s["gate-signed-wrong-secret"] = request(0, "GET", "/orders/1", signed("GET", "/orders/1", key="k9"))
    s["gate-signed-resign-bit"] = request(0x14, "GET", "/strict", [("x-ca-key", "k1"), ("x-ca-nonce", "once"), ("x-ca-timestamp", str(NOW)),
                                                                  ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp")])
    s["gate-strict-no-nonce"] = request(0x04, "GET", "/strict", [("x-ca-key", "k1"), ("x-ca-signature-headers", "x-ca-key")])
    s["gate-sha1"] = request(0x24, "GET", "/orders/%E4%B8%AD?b=2&a", [("x-ca-key", "k2"), ("x-ca-signature-method", "HmacSHA1"),
                                                                     ("x-ca-timestamp", "17e11"), ("x-ca-signature-headers", "x-ca-key")])
    s["gate-form"] = request(0x04, "POST", "/form?q=1", [("content-type", form), ("x-ca-key", "k1"), ("x-ca-signature-headers", "x-ca-key"),
                                                         ("content-md5", "XUFAKrxLKna5cZ2REBfFkg=="), ("content-length", "15")],
                             "b=2&a=%E4%B8%AD&f=v")
    s["gate-form-signed"] = request(0, "POST", "/form?n=5", signed("POST", "/form?n=5", form="f=deny&a=%E4%B8%AD", content_type=form),
                                    "f=deny&a=%E4%B8%AD")
    s["appcode-header"] = request(0x01, "GET", "/orders/12?fields=x&trace=a%20b", [("authorization", "APPCODE CODE1"), ("x-tenant", "t1"), ("x-forwarded-for", "198.51.100.1, 10.0.0.1")])
    s["appcode-query"] = request(0x00, "POST", "/form?AppCode=CODE2&n=100", [("content-type", form), ("x-ca-stage", "TEST")], "f=v")
    s["appcode-expired"] = request(0x00, "GET", "/orders/1", [("authorization", "appcode  CODE3 ")])
    s["appcode-bad"] = request(0x00, "GET", "/signed/a/b/c?appcode=nope", [("x-ca-stage", "PRE")])
    s["jwt-users-ok"] = request(0x00, "GET", "/users/42", [("authorization", "Bearer " + t), ("origin", "https://app.example.com")])
    s["jwt-users-admin-resign"] = request(0x08, "GET", "/users/7?q=1", [("authorization", "Bearer " + admin), ("x-kind", "k"),
                                                                          ("x-forwarded-for", "203.0.113.5, 10.0.0.1")])
    s["jwt-users-mismatch"] = request(0x08, "GET", "/users/8?subject=forged", [("authorization", "bearer " + user42), ("x-user-id", "forged")])
    s["jwt-users-odd-claims"] = request(0x08, "GET", "/users/42", [("authorization", "Bearer " + odd_claims)])
    s["jwt-users-none"] = request(0x00, "GET", "/users/1", [])
    s["jwt-query-token"] = request(0x28, "GET", "/tokens/a?token=" + user42 + "&x=1", [("origin", "https://x.example.org")])
    s["jwt-query-empty"] = request(0x00, "PUT", "/tokens/a/b?q=deny", [("content-type", "text/plain")], "hello")
    s["cors-preflight"] = request(0x00, "OPTIONS", "/users/42", [("origin", "https://app.example.com"), ("access-control-request-method", "GET"),
                                                                ("access-control-request-headers", "authorization")])
    s["cors-preflight-none"] = request(0x00, "OPTIONS", "/nowhere", [("origin", "https://evil.com"), ("access-control-request-method", "DELETE")])
    s["cors-refused"] = request(0x00, "GET", "/users/42", [("authorization", "Bearer " + t), ("origin", "https://evil.com")])
    s["basic-auth"] = request(0x00, "GET", "/admin", [("authorization", "Basic " + base64.b64encode(b"ops:pa55w0rd").decode())])
    s["basic-auth-bad"] = request(0x01, "GET", "/admin", [("authorization", "Basic " + base64.b64encode(b"ops:wrong").decode())])
    s["backend-signature"] = request(0x00, "POST", "/backend/x/y?b=2&a=1", [("content-type", form), ("content-md5", "XUFAKrxLKna5cZ2REBfFkg==")],
                             "z=1&y=%20")
    s["backend-error-mapping"] = request(0x20, "GET", "/backend/r", [], '{"result_code":"BOOM","req_msg_id":"r-1"}')
    s["items-valid"] = request(0x00, "POST", "/items/12?status=open", [("content-type", form), ("x-tenant", "acme")], "email=a%40b.c")
    s["items-invalid"] = request(0x00, "POST", "/items/x?status=maybe", [("content-type", form), ("x-tenant", "much-too-long")], "email=nope")
    s["mock"] = request(0x00, "GET", "/mock", [("x-ca-request-mode", "debug")])
    s["open-debug"] = request(0x40, "DELETE", "/open/a/b", [("x-ca-request-mode", "debug"), ("x-ca-hops", "2")])
    s["open-hops"] = request(0x80, "GET", "/x", [("x-ca-hops", "3")])
    s["dot-segments"] = request(0x00, "GET", "/open/%2e%2e/orders/1", [])
    s["dot-segments-2"] = request(0x00, "GET", "/open/..%5corders/1", [])
    s["stage-unknown"] = request(0x00, "GET", "/orders/1", [("x-ca-stage", "DEV"), ("authorization", "APPCODE CODE1")])
    s["ip-refused-xff"] = request(0xc0, "GET", "/orders/5", [("authorization", "APPCODE CODE1"), ("x-forwarded-for", "10.9.9.9, 198.51.100.1")])
    s["ip-allow-peer"] = request(0x00, "POST", "/form?AppCode=CODE1", [("content-type", form)], "f=v")
    s["throttle"] = request(0x00, "GET", "/orders/1", [("authorization", "APPCODE CODE2"), ("x-forwarded-for", "198.51.100.1")])
    s["raw-signed-orders"] = request(0x04, "GET", "/orders/77", [("x-ca-key", "k1"), ("x-ca-timestamp", str(NOW)), ("x-forwarded-for", "198.51.100.1"),
                                                                ("x-ca-signature-headers", "x-ca-key,x-ca-timestamp")])
    s["raw-serialized"] = request(0x02, "GET", "/users/42", [("authorization", "Bearer " + t), ("cookie", "a=b")])
    s["raw-serialized-signed"] = request(0x02, "GET", "/orders/1", signed("GET", "/orders/1", nonce="n-2", extra=[("x-forwarded-for", "198.51.100.1")]))
    s["raw-truncated"] = request(0x02, "GET", "/x", [("x-ca-key", "k1")])[:-9]
    s["long-url"] = request(0x00, "GET", "/open/" + "a" * 2100, [])
    s["big-body"] = request(0x00, "POST", "/form", [("content-type", form), ("authorization", "APPCODE CODE1")], "f=" + "v" * 1100)
    s["binary-header"] = request(0x01, "GET", "/users/42", [("authorization", b"Bearer \xe4\xb8\xad.\x00.\xff"), ("x-ca-signature-headers", "x-name"),
                                                           ("x-name", b"\x01\x7f")])
    return s


def string_to_sign_seeds():
    form = "application/x-www-form-urlencoded; charset=utf-8"
    s = {}
    s["spec-worked-example"] = request(0x08, "POST", "/http2test/test?param1=test", [
        ("accept", "application/json; charset=utf-8"), ("content-type", form), ("date", "Tue, 14 Nov 2023 22:16:46 GMT"),
        ("x-ca-key", "test-app-key-1"), ("x-ca-nonce", "00000000-0000-4000-a000-000000000006"), ("x-ca-timestamp", "1700000206000"),
        ("x-ca-signature-method", "HmacSHA256"), ("x-ca-signature-headers", "x-ca-nonce,x-ca-timestamp,x-ca-key,x-ca-signature-method"),
        ("x-ca-signature", "2IyXawoHcwHjLAdh3mvkadikiXtQTKw1dkz26Evm0ns=\n")],
        "nick=%E5%B0%8F+%E6%98%8E&password=123456789&username=xiaoming")
    s["higress-get"] = request(0x10, "GET", "/Third/Tools/checkSign", [
        ("accept", "application/json"), ("content-type", "application/json"), ("x-ca-timestamp", "1646365291734"),
        ("x-ca-nonce", "787dd0c2-7bd8-41cd-9c19-62c05ea524a2"), ("x-ca-key", "appKey"),
        ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp")])
    s["higress-post"] = request(0x11, "POST", "/Third/User/getNyAccessToken", [
        ("content-type", "application/x-www-form-urlencoded"), ("x-ca-key", "appKey"),
        ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp")], "nickname=nickname&room_id=6893&uuid=uuid&photo=photo")
    s["header-block-rules"] = request(0x00, "GET", "/p", [("x-ca-key", "k"), ("x-ca-nonce", "n"), ("accept", "a"),
        ("x-ca-signature-headers", " X-Ca-Nonce , x-ca-key,,Accept,Content-Type,X-CA-SIGNATURE,x-absent,X-Ca-Nonce")])
    s["parameter-rules"] = request(0x08, "POST", "/p?b=2&a=1&a=3&e=&f", [("content-type", "application/json")], "x=1")
    s["parameter-encoding"] = request(0x28, "POST", "/p?a=q&expr=1%2B1%3D2", [], "a=body&z=%E4%B8%AD")
    s["decoded-or-raw-path"] = request(0x04, "GET", "/api/%E7%94%A8%E6%88%B7?q=1", [])
    s["repeated-params"] = request(0x00, "GET", "/p?tag=x&tag=y&q=a%20b+c", [])
    s["binary-header"] = request(0x01, "GET", "/p", [("x-ca-signature-headers", "x-name"), ("x-name", b"\xe4\xb8?\x80\xff")])
    s["raw-map"] = request(0x02, "GET", "/orders/%E4%B8%AD?b=2&a", [("x-ca-key", "k1"), ("x-ca-signature-headers", "x-ca-key")])
    s["percent-edge"] = request(0x30, "GET", "/%/%2/%zz/%41%4a+%2B?%=%&a=%%&+=+", [], "%e4%b8%ad=%&&=&%0")
    return s


# ------------------------------------------------------------------------------------------------
# Conditions

CONDITIONS = [
    "$a = 'x' or $b = 'y' and $c = 'z'", "($a = 'x' or $b = 'y') and $c = 'z'", "not $a = 'x' and $b = 'y'",
    "not ($a = 'q' and $b = 'y')", "$a = 'x' AND ($b <> 2 OR $c = null)", "$a = 10", "$a > 9", "$a < '9'",
    "$a >= 10 and $a <= 10 and $a != 11 and $a <> 11", "$a > 1", "$a = null", "$a != null", "$a < 1", "$a = true", "$a",
    "$a = \"it's\"", "$a = 'it''s'", "$a = -1.5", "Random() < 0.6", "Random() >= 0.6", "$a = ", "$a = 'x", "($a = 1",
    "$b = 1", "$a = 1 $a", "$a == 1", "$a ~ 1", "", "$a = 1 and", "Random(1) > 0", "$userType = 'admin'",
    "$userId = $pathUserId", "$q = 'a' or $q = 'b'", "$q = 'a'", "$statusCode = 200 and $resultCode <> 'OK'",
    "$a > 3 or $b = 'x' or $x = null or $t = null or $t <> $p", "$f = 'deny' or $n >= 100 or ($app = 10002 and $stage = 'TEST')",
    "$a = '中' and $b = 1.2.3", "NOT not NoT $a", "$a = 99999999999999999999999999999", "((((($a))))) = 1", "$a = FALSE or null",
    "BodyJsonField:$.data.items[1]['na.me']", "$.a[", "Path not match ${userId} vs /${n} ${missing} ${", "Header:X-User", "XFF:-1",
    "System:CaAppId", "System:Nope", "Cookie:x", "Header:", "$['a'][0].b",
    "(" * 40 + "$a" + ")" * 40, "not " * 40 + "$a",
]


# ------------------------------------------------------------------------------------------------
# JWT: tokens and keys

def jwt_seeds():
    s = {}
    for v in VECTORS:
        a = v["alg"]
        for k in ("token", "token_no_kid", "wrong_key_token"):
            s[f"{a}-{k}"] = v[k]
        s[f"{a}-jwk"] = json.dumps(v["jwk"])
    s["jwks-set"] = json.dumps({"keys": [v["jwk"] for v in VECTORS[:4]]})
    s["jwks-array"] = json.dumps([vec("ES384")["jwk"], vec("HS512")["jwk"]])
    rsa = dict(vec("RS256")["jwk"])
    n = bytearray(b64u_dec(rsa["n"]))
    n[-1] &= 0xfe
    s["jwk-rsa-even"] = json.dumps(dict(rsa, n=b64u(bytes(n))))
    s["jwk-rsa-e1"] = json.dumps(dict(rsa, e="AQ"))
    s["jwk-rsa-e-big"] = json.dumps(dict(rsa, e="AQAAAAAAAAE"))
    s["jwk-rsa-pinned"] = json.dumps(dict(rsa, alg="PS256"))
    s["jwk-rsa-4096"] = json.dumps(dict(rsa, n=b64u(b"\xc5" + bytes(n[1:]) * 2 + b"\x01"), kid="big"))
    s["jwk-rsa-short"] = json.dumps({"kty": "RSA", "n": "AQAB", "e": "AQAB"})
    s["jwk-oct-short"] = json.dumps({"kty": "oct", "k": "c2hvcnQ"})
    s["jwk-oct-ok"] = json.dumps({"kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NQ", "use": "sig", "alg": "HS384"})
    s["jwk-ec-bad-point"] = json.dumps({"kty": "EC", "crv": "P-256", "x": b64u(b"\x01" * 32), "y": b64u(b"\x02" * 32)})
    s["jwk-okp-x448"] = json.dumps({"kty": "OKP", "crv": "X448", "x": "AA"})
    s["jwk-rfc8037"] = json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    s["rfc7515-hs256"] = ("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
                          "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    s["rfc8037-eddsa"] = ("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
                          "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
    payload = b64u(b'{"sub":"x","exp":4102444800}')
    s["alg-none"] = b64u(b'{"alg":"none","kid":"k-RS256"}') + "." + payload + "."
    s["alg-hs-with-rsa-kid"] = b64u(b'{"alg":"HS256","kid":"k-RS256"}') + "." + payload + ".AAAA"
    s["alg-ps-on-rs"] = b64u(b'{"alg":"PS256","kid":"k-RS256","typ":"JWT"}') + "." + vec("RS256")["token"].split(".", 1)[1]
    s["crit"] = b64u(b'{"alg":"HS256","crit":["exp"]}') + "." + payload + ".x"
    s["kid-number"] = b64u(b'{"alg":"HS256","kid":7}') + "." + payload + ".x"
    s["kid-unknown"] = b64u(b'{"alg":"ES256","kid":"nope"}') + "." + payload + ".x"
    for bad in ["abc", "a.b", "a.b.c.d", "!!!.e30.e30", "e30.e30.!!!", "bm90IGpzb24.e30.e30", "e30.e30."]:
        s["malformed-" + bad.replace("!", "x").replace(".", "_")] = bad
    s["claims-admin"] = mint({"sub": "u", "userId": "42", "userType": "admin", "exp": 4102444800, "jti": "a"})
    s["claims-iss-aud"] = mint({"iss": "https://issuer.example", "aud": ["x", "other"], "sub": "s", "jti": "j2", "exp": 4102444800})
    s["claims-iss-evil"] = mint({"iss": "https://evil", "aud": "cagate"})
    s["claims-nbf"] = mint({"iss": "https://issuer.example", "aud": "cagate", "nbf": NOW // 1000 + 120})
    s["claims-exp-string"] = mint({"exp": "soon", "jti": ""})
    s["claims-exp-huge"] = mint({"exp": 1e300, "nbf": -1e11, "jti": "x" * 300})
    s["claims-expired"] = mint({"exp": 1300819380, "userId": "42"})
    s["claims-header-injection"] = mint({"userId": "42\r\nx-evil: 1", "sub": "a&b=c d#e", "aud": ["cagate", 1, None]})
    s["claims-nested"] = mint({"userId": {"deep": [1, {"x": True}]}, "sub": None})
    s["hs512"] = mint({"jti": "j7", "exp": 4102444800}, {"alg": "HS512"})
    s["es256-unsigned"] = b64u(b'{"alg":"ES256","kid":"fuzz-ES256"}') + "." + b64u(b'{"userId":"42","exp":4102444800}') + ".x"
    s["eddsa-unsigned"] = b64u(b'{"alg":"EdDSA"}') + "." + b64u(b'{"userId":"42","jti":"e"}') + ".x"
    return s


def ecdsa_seeds():
    """Byte 0 picks the fixed key (0 harness P-256, 1 harness P-384, 2 vector P-256, 3 vector P-384)."""
    s = {}
    for i in range(4):
        s[f"key{i}-message"] = bytes([i]) + b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0"
    for a in ("ES256", "ES384"):
        v = vec(a)
        s[f"{a}-token"] = v["token"]
        s[f"{a}-wrong-key-token"] = v["wrong_key_token"]
        s[f"{a}-jwk"] = json.dumps(v["jwk"])
    s["jwk-set"] = json.dumps({"keys": [vec("ES256")["jwk"], vec("ES384")["jwk"]]})
    p256 = vec("ES256")["jwk"]
    s["jwk-bad-point"] = json.dumps({"kty": "EC", "crv": "P-256", "x": b64u(b"\x01" * 32), "y": b64u(b"\x02" * 32)})
    s["jwk-x-is-p"] = json.dumps({"kty": "EC", "crv": "P-256", "x": b64u(bytes.fromhex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff")), "y": p256["y"]})
    s["jwk-zero"] = json.dumps({"kty": "EC", "crv": "P-384", "x": b64u(bytes(48)), "y": b64u(bytes(48))})
    s["jwk-short"] = json.dumps({"kty": "EC", "crv": "P-256", "x": p256["x"][:-2], "y": p256["y"]})
    s["sig-zero"] = bytes([2]) + bytes(64)
    s["sig-ones"] = bytes([3]) + b"\xff" * 96
    return s


def registry_seeds():
    """App registry documents (filter/core/tests/registry.rs), against the app_registry target's base."""
    doc = lambda apps, grants: json.dumps({"apps": apps, "authorizations": grants})
    grant = [{"appId": 7, "api": "getOrder"}]
    s = {
        "empty": doc([], []),
        "app-no-grant": doc([{"appId": 10002, "appKey": "k2", "appSecret": "s2", "ownerId": "o-1"}], []),
        "app-and-grant": doc([{"appId": 10002, "appKey": "k2", "appSecret": "s2", "appCodes": ["C2"]}],
                             [{"appId": 10002, "api": "getOrder", "stage": "RELEASE"}, {"appId": 10002, "api": "getOrder", "stage": "TEST"}]),
        "static-grant-expired": doc([], [{"appId": 1, "api": "getOrder", "stage": "RELEASE", "authValidTime": "2020-01-01T00:00:00Z"}]),
        "rotation-both": doc([{"appId": 7, "appKey": "k7", "appSecret": "old-secret", "keys": [{"appKey": "k7", "appSecret": "new-secret"}]}], grant),
        "rotation-valid-until": doc([{"appId": 7, "appKey": "k7", "appSecret": "s", "keys": [
            {"appKey": "k7-old", "appSecret": "x", "validUntil": "2020-01-01T00:00:00Z"},
            {"appKey": "k7-next", "appSecret": "y", "validUntil": "2099-01-01T00:00:00Z"}]}], grant),
        "env-secret": doc([{"appId": 8, "appKey": "k8", "appSecret": {"env": "CAGATE_SECRET_8"}}], [{"appId": 8, "api": "getOrder"}]),
        "conflicts": doc([{"appId": 1, "appKey": "static-key", "appSecret": "x", "appCodes": ["STATIC-CODE"]},
                          {"appId": 9, "appKey": "k9", "appSecret": "s"}, {"appId": 9, "appKey": "k9", "appSecret": "s"}],
                         [{"appId": 99, "api": "nope", "stage": "PRE"}, {"appId": 9, "api": "release-only", "stage": "TEST"},
                          {"appId": 9, "api": "getOrder", "authValidTime": "tomorrow"}]),
        "unknown-field": json.dumps({"apps": [], "version": "3", "description": "d", "extra": 1}),
        "not-an-array": json.dumps({"apps": {}, "authorizations": "x"}),
        "not-an-object": "[1, 2]",
        "escaped-key": '{"a\\u0070ps": []}',
        "not-utf8": b'{"apps": ["\xff"]}',
    }
    return s


# ------------------------------------------------------------------------------------------------
# Configurations and plugin data

def hs_jwk():
    return vec("HS256")["jwk"]


def configs():
    c = {}
    c["gate"] = {
        "maxBodyBytes": 64,
        "apps": [{"appId": 10001, "appKey": "k1", "appSecret": APPS["k1"], "appCodes": ["CODE1"]},
                 {"appId": 10002, "appKey": "k2", "appSecret": "s2"}, {"appId": 10003, "appKey": "k3", "appSecret": "s3"}],
        "apis": [
            {"name": "orders", "method": "GET", "path": "/orders/[id]", "appCodeAuth": "HEADER", "stages": ["RELEASE", "TEST"],
             "authorizations": [{"appId": 10001}, {"appId": 10001, "stage": "TEST"}, {"appId": 10003, "authValidTime": "2023-11-14T22:16:00Z"}]},
            {"name": "strict", "method": "GET", "path": "/strict", "forceNonceCheck": True, "authorizations": [{"appId": 10001}]},
            {"name": "form", "method": "POST", "path": "/form", "appCodeAuth": "HEADER_QUERY", "authorizations": [{"appId": 10001}]},
            {"name": "open", "method": "ANY", "path": "/open/*", "authType": "ANONYMOUS"}]}
    c["signature-window"] = {"signature": {"timestampToleranceSeconds": 10, "nonceTtlSeconds": 10},
                             "apps": [{"appId": 1, "appKey": "k1", "appSecret": APPS["k1"]}],
                             "apis": [{"name": "o", "method": "GET", "path": "/o", "authorizations": [{"appId": 1}]}]}
    jwk = {"kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}
    c["no-panic"] = {
        "maxBodyBytes": 256, "maxUrlBytes": 512, "maxHops": 3,
        "apps": [{"appId": 1, "appKey": "k", "appSecret": "s", "appCodes": ["C"]}],
        "plugins": [
            {"name": "jwt", "type": "jwtAuth", "data": {"parameter": "Authorization", "jwk": jwk, "bypassEmptyToken": True,
                                                        "claimParameters": [{"claimName": "sub", "parameterName": "s", "location": "query"}]}},
            {"name": "ac", "type": "accessControl", "data": {
                "parameters": {"a": "Query:a", "b": "Form:b", "x": "XFF:-1", "t": "Token:sub", "p": "Parameter:id"},
                "rules": [{"name": "r", "condition": "$a > 3 or $b = 'x' or $x = null or $t = null or $t <> $p", "ifFalse": "DENY"}]}},
            {"name": "tc", "type": "trafficControl", "data": {"unit": "SECOND", "apiDefault": 1000000}},
            {"name": "ip", "type": "ipControl", "data": {"type": "REFUSE", "resource": "XFF:0", "items": [{"blocks": ["10.0.0.0/8"]}]}},
            {"name": "cors", "type": "cors", "data": {"allowOrigins": "*.example.org"}},
            {"name": "be", "type": "backendSignature", "data": {"key": "k", "secret": "s"}}],
        "groupPlugins": [{"plugin": "jwt"}, {"plugin": "ac"}, {"plugin": "tc"}, {"plugin": "ip"}, {"plugin": "cors"}, {"plugin": "be"}],
        "apis": [
            {"name": "a", "method": "ANY", "path": "/x/[id]/*", "appCodeAuth": "HEADER_QUERY", "authorizations": [{"appId": 1}],
             "parameters": [{"name": "n", "location": "QUERY", "type": "INT"}]},
            {"name": "b", "method": "ANY", "path": "/*", "authType": "ANONYMOUS"}]}
    c["policies-e2e"] = {
        "maxUrlBytes": 256, "maxHops": 2,
        "plugins": [
            {"name": "jwt", "type": "jwtAuth", "data": {"parameter": "Authorization", "jwk": vec("ES256")["jwk"]}},
            {"name": "owner-only", "type": "accessControl", "data": PLUGIN_DATA["accessControl"][1]},
            {"name": "browser", "type": "cors", "data": {"allowOrigins": "https://app.example.com,*.example.org", "allowCredentials": True,
                                                         "allowHeaders": "Content-Type,X-Ca-Key", "maxAge": 600}},
            {"name": "basic", "type": "basicAuth", "data": {"users": [{"username": "ops", "password": "pa55w0rd"}]}},
            {"name": "sign-backend", "type": "backendSignature", "data": {"type": "APIGW_BACKEND", "key": "backend-key-1", "secret": "backend-secret-123456"}}],
        "apis": [
            {"name": "user", "method": "GET", "path": "/users/[userId]", "authType": "ANONYMOUS",
             "plugins": [{"plugin": "jwt"}, {"plugin": "owner-only"}, {"plugin": "browser"}]},
            {"name": "admin", "method": "GET", "path": "/admin", "authType": "ANONYMOUS", "plugins": [{"plugin": "basic"}]},
            {"name": "signed-backend", "method": "ANY", "path": "/backend/*", "authType": "ANONYMOUS", "plugins": [{"plugin": "sign-backend"}]},
            {"name": "validated", "method": "POST", "path": "/items/[id]", "authType": "ANONYMOUS",
             "parameters": [{"name": "id", "location": "PATH", "type": "LONG", "required": True},
                            {"name": "X-Tenant", "location": "HEADER", "required": True, "maxLength": 8},
                            {"name": "status", "location": "QUERY", "enumValues": ["open", "closed"]},
                            {"name": "email", "location": "FORM", "required": True, "regularExpression": "^[^@]+@[^@]+$"}]}]}
    c["response-e2e"] = {
        "apps": [{"appId": 10001, "appKey": "k1", "appSecret": APPS["k1"]}],
        "plugins": [{"name": "breaker", "type": "circuitBreaker", "data": PLUGIN_DATA["circuitBreaker"][0]},
                    {"name": "errors", "type": "errorMapping", "data": PLUGIN_DATA["errorMapping"][0]}],
        "apis": [{"name": "any", "method": "ANY", "path": "/*", "authType": "ANONYMOUS"},
                 {"name": "flaky", "method": "GET", "path": "/flaky", "authType": "ANONYMOUS", "plugins": [{"plugin": "breaker"}]},
                 {"name": "result", "method": "GET", "path": "/result/[code]", "authType": "ANONYMOUS", "plugins": [{"plugin": "errors"}]},
                 {"name": "signed", "method": "GET", "path": "/signed/*", "authorizations": [{"appId": 10001}], "plugins": [{"plugin": "breaker"}]}]}
    c["traffic"] = {
        "apps": [{"appId": 10001, "appKey": "k1", "appSecret": "s1", "appCodes": ["C1"], "ownerId": "owner-a"},
                 {"appId": 10002, "appKey": "k2", "appSecret": "s2", "appCodes": ["C2"], "ownerId": "owner-a"},
                 {"appId": 10003, "appKey": "k3", "appSecret": "s3", "appCodes": ["C3"]}],
        "plugins": [{"name": "limits", "type": "trafficControl", "data": PLUGIN_DATA["trafficControl"][1]},
                    {"name": "ips", "type": "ipControl", "data": PLUGIN_DATA["ipControl"][0]}],
        "groupPlugins": [{"plugin": "limits"}],
        "apis": [{"name": "orders", "method": "GET", "path": "/orders", "appCodeAuth": "HEADER",
                  "authorizations": [{"appId": 10001}, {"appId": 10002}, {"appId": 10003}], "plugins": [{"plugin": "ips"}]},
                 {"name": "open", "method": "GET", "path": "/open", "authType": "ANONYMOUS"}]}
    c["traffic-invalid"] = {
        "apps": [{"appId": 1, "appKey": "k", "appSecret": "s"}],
        "plugins": [
            {"name": "a", "type": "trafficControl", "data": "unit: MINUTE\napiDefault: 100\nuserDefault: 10\nappDefault: 50\n"},
            {"name": "b", "type": "trafficControl", "data": {"unit": "WEEK", "apiDefault": 100000001, "blockingMode": "QUICK_RETURN",
                                                             "specials": [{"type": "APP", "policies": [{"key": 1, "value": 100000002}]}, {"type": "TEAM", "policies": []}]}},
            {"name": "d", "type": "ipControl", "data": {"type": "REFUSE", "resource": "XFF:last", "items": [{"appId": 1, "blocks": ["1.2.3.4/40"]}]}},
            {"name": "e", "type": "ipControl", "data": {"type": "ALLOW", "items": [{"appId": 99, "blocks": []}]}}],
        "apis": []}
    c["jwt-invalid"] = {
        "plugins": [
            {"name": "a", "type": "jwtAuth", "data": {"parameter": "Authorization", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}},
            {"name": "b", "type": "jwtAuth", "data": "parameter: X-Token\nparameterLocation: body\njwks: []\nsurprise: 1\n"},
            {"name": "c", "type": "jwtAuth", "data": "{ not json: [ nor yaml"},
            {"name": "d", "type": "noSuchPlugin", "data": {}},
            {"name": "f", "type": "jwtAuth", "data": {"parameter": "A", "jwk": {"kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NQ"}}},
            {"name": "f", "type": "jwtAuth", "data": {"parameter": "A", "jwksUri": "ftp://x"}}],
        "groupPlugins": [{"plugin": "f"}, {"plugin": "ghost"}],
        "apis": [{"name": "x", "method": "GET", "path": "/x", "authType": "ANONYMOUS",
                  "plugins": [{"plugin": "f"}, {"plugin": "f", "stages": ["RELEASE"]}, {"plugin": "f", "stages": ["TEST"]}]}]}
    c["jwt-stages"] = {
        "stages": ["RELEASE", "TEST"],
        "plugins": [{"name": "group-jwt", "type": "jwtAuth", "data": {"parameter": "Authorization", "jwks": [vec("RS256")["jwk"]]}},
                    {"name": "api-jwt", "type": "jwtAuth", "data": json.dumps({"parameter": "Authorization", "jwks": [vec("ES256")["jwk"]]})},
                    {"name": "remote", "type": "jwtAuth", "data": {"parameter": "X-Jwt", "jwksUri": "https://idp.example/jwks.json",
                                                                   "jwksCluster": "idp", "jwksRefreshSeconds": 60}}],
        "groupPlugins": [{"plugin": "group-jwt"}],
        "apis": [{"name": "x", "method": "GET", "path": "/x", "authType": "ANONYMOUS", "stages": ["RELEASE", "TEST"],
                  "plugins": [{"plugin": "api-jwt", "stages": ["TEST"]}]},
                 {"name": "y", "method": "GET", "path": "/y", "authType": "ANONYMOUS", "plugins": [{"plugin": "remote"}]}]}
    c["access-invalid"] = {"plugins": [{"name": "ac", "type": "accessControl", "data": {
        "parameters": {"a": "Header:A", "s": "StatusCode"},
        "rules": [{"name": "r1", "condition": "$a = 'x' and ($a <> ", "ifTrue": "DENY"}, {"name": "r2", "condition": "$b = 1", "ifTrue": "MAYBE"}]}}],
        "apis": []}
    c["backends"] = {
        "stageVariables": {"RELEASE": {"orders": "orders-prod"}, "TEST": {"orders": "orders-test"}},
        "apis": [{"name": "getOrder", "method": "GET", "path": "/orders/[orderId]", "authType": "ANONYMOUS", "stages": ["RELEASE", "TEST"],
                  "requestMode": "MAPPING",
                  "parameters": [{"name": "fields", "location": "QUERY", "backendName": "select", "backendLocation": "QUERY"},
                                 {"name": "X-Tenant", "location": "HEADER", "backendName": "tenant", "backendLocation": "QUERY"}],
                  "backend": {"type": "HTTP", "cluster": "#orders#", "path": "/v1/orders/[orderId]", "method": "GET", "timeoutMs": 3000,
                              "host": "orders.internal",
                              "constantParameters": [{"name": "X-Source", "value": "gateway", "location": "HEADER"}],
                              "systemParameters": [{"name": "CaClientIp", "backendName": "X-Client-Ip", "location": "HEADER"},
                                                   {"name": "CaStage", "backendName": "stage", "location": "QUERY"}]}},
                 {"name": "m", "method": "GET", "path": "/m", "authType": "ANONYMOUS",
                  "backend": {"type": "MOCK", "mockStatusCode": 201, "mockResult": "{\"ok\":true}", "mockHeaders": [{"name": "X-Mock", "value": "1"}]}}]}
    c["backends-invalid"] = json.loads(json.dumps(c["backends"]))
    c["backends-invalid"]["apis"][0].update(stages=["RELEASE", "PRE"], requestMode="SOMETIMES")
    c["backends-invalid"]["apis"][0]["backend"].update(path="/v1/[nope]", timeoutMs=30001, type="FC")
    c["debug"] = {"stages": ["RELEASE", "TEST"],
                  "plugins": [{"name": "lim", "type": "trafficControl", "data": {"unit": "MINUTE", "apiDefault": 10, "controlMode": "x"}}],
                  "apis": [{"name": "thing", "method": "GET", "path": "/t", "authType": "ANONYMOUS", "stages": ["TEST"], "plugins": [{"plugin": "lim"}]}]}
    c["bad-top"] = {"apis": [{"name": "a", "method": "FETCH", "path": "/a"}], "apps": [{"appId": 1, "appKey": "k", "appSecret": "s"},
                                                                                       {"appId": 2, "appKey": "k", "appSecret": "s"}], "surprise": True}
    out = {k: json.dumps(v, ensure_ascii=False) for k, v in c.items()}
    out["truncated"] = '{"apps": ['
    out["empty-object"] = "{}"
    # The sample Envoy configuration's filter configuration (a JSON block in envoy/envoy.yaml).
    text = open(os.path.join(ROOT, "envoy/envoy.yaml")).read()
    start = text.find("value: |")
    if start >= 0:
        lines = text[start:].split("\n")[1:]
        indent = len(lines[0]) - len(lines[0].lstrip())
        block = []
        for line in lines:
            if line.strip() and len(line) - len(line.lstrip()) < indent:
                break
            block.append(line[indent:])
        out["envoy-yaml"] = "\n".join(block).strip()
    return out


PLUGIN_DATA = {
    "jwtAuth": [
        {"parameter": "Authorization", "parameterLocation": "header", "jwks": [vec("RS256")["jwk"]]},
        {"parameter": "token", "parameterLocation": "query", "jwk": vec("EdDSA")["jwk"], "bypassEmptyToken": True, "preventJtiReplay": True,
         "jtiCapacity": 64, "jtiTtlSeconds": 60, "cacheSize": 2, "clockSkewSeconds": 0, "ignoreExpirationCheck": True,
         "issuer": "https://issuer.example", "audiences": ["cagate", "other"],
         "claimParameters": [{"claimName": "userId", "parameterName": "X-User-Id", "location": "header"},
                             {"claimName": "sub", "parameterName": "subject", "location": "query"}]},
        "parameter: X-Token\nparameterLocation: body\njwks: []\nsurprise: 1\n",
        "parameter: jwt\nparameterLocation: cookie\njwk:\n  kty: oct\n  k: " + hs_jwk()["k"] + "\n",
        {"parameter": "A", "jwksUri": "https://idp.example/jwks.json", "jwksCluster": "idp", "jwksRefreshSeconds": 60, "jwksTimeoutMs": 500,
         "organization": "x"},
        {"parameter": "A", "jwks": {"keys": [vec("ES384")["jwk"], vec("PS512")["jwk"], hs_jwk()]}},
    ],
    "trafficControl": [
        "unit: MINUTE\napiDefault: 100\nuserDefault: 10\nappDefault: 50\n",
        {"unit": "MINUTE", "apiDefault": 100, "userDefault": 4, "appDefault": 2,
         "specials": [{"type": "APP", "policies": [{"key": 10001, "value": 3}]}, {"type": "USER", "policies": [{"key": "owner-a", "value": 50}]}]},
        {"unit": "SECOND", "apiDefault": 5, "rateLimitHeaders": True, "failOpen": True},
        {"unit": "DAY", "apiDefault": 0, "controlMode": "x"},
        {"unit": "HOUR", "apiDefault": 100000001, "blockingMode": "QUICK_RETURN", "specials": [{"type": "TEAM", "policies": []}]},
    ],
    "ipControl": [
        {"type": "ALLOW", "resource": "XFF:-1", "items": [{"blocks": ["203.0.113.0/24"]}]},
        {"type": "REFUSE", "items": [{"blocks": ["10.0.0.0/8", "::1", "2001:db8::/32", "192.0.2.4"]}]},
        {"type": "ALLOW", "items": [{"appId": 10001, "blocks": ["192.0.2.0/24"]}, {"blocks": ["0.0.0.0/0"]}]},
        {"type": "REFUSE", "resource": "XFF:last", "items": [{"appId": 1, "blocks": ["1.2.3.4/40", "::ffff:1.2.3.4/128", "1.2.3"]}]},
        "type: REFUSE\nresource: XFF:0\nitems:\n  - blocks: [10.0.0.0/8]\n",
    ],
    "accessControl": [
        {"parameters": {"m": "Method", "p": "Path", "h": "Header:X-Kind", "q": "Query:q", "f": "Form:f", "id": "Parameter:userId",
                        "app": "System:CaAppId", "key": "System:CaAppKey", "api": "System:CaApiName", "stage": "System:CaStage",
                        "rid": "System:CaRequestId", "ip": "System:CaClientIp", "dom": "System:CaDomain", "ua": "System:CaClientUa",
                        "x0": "XFF:0", "xl": "XFF:-1"},
         "rules": [{"name": "everything", "condition": "$m = 'POST' and $p = '/things/中' and $h = 'k' and $q = 'a b' and $f = 'v' and $id = '中' "
                                                       "and $app = 77 and $key = 'k' and $api = 'thing' and $stage = 'TEST' and $rid = 'REQ-1' "
                                                       "and $ip = '192.0.2.4' and $dom = 'example.com' and $ua = 'ua/1' and $x0 = '203.0.113.1' "
                                                       "and $xl = '198.51.100.2'", "ifFalse": "DENY"}]},
        "parameters:\n  userId: \"Token:userId\"\n  userType: \"Token:userType\"\n  pathUserId: \"Parameter:userId\"\nrules:\n"
        "  - name: admin\n    condition: \"$userType = 'admin'\"\n    ifTrue: \"ALLOW\"\n"
        "  - name: user\n    condition: \"$userId = $pathUserId\"\n    ifFalse: \"DENY\"\n    statusCode: 403\n"
        "    errorMessage: \"Path not match ${userId} vs /${pathUserId}\"\n    responseHeaders:\n      Content-Type: application/xml\n"
        "    responseBody: \"<Reason>Path not match ${userId} vs /${pathUserId}</Reason>\"\n",
        {"parameters": {"q": "Query:q", "missing": "Header:X-None"},
         "rules": [{"name": "allow-a", "condition": "$q = 'a'", "ifTrue": "ALLOW"},
                   {"name": "deny-a-or-b", "condition": "$q = 'a' or $q = 'b'", "ifTrue": "DENY", "statusCode": 451, "errorMessage": "no ${q}${missing}!"},
                   {"name": "needs-null", "condition": "$missing = null", "ifFalse": "DENY"}]},
        {"parameters": {"a": "Header:A", "s": "StatusCode"},
         "rules": [{"name": "r1", "condition": "$a = 'x' and ($a <> ", "ifTrue": "DENY"}, {"name": "r2", "condition": "$b = 1", "ifTrue": "MAYBE"}]},
    ],
    "cors": [
        {"allowOrigins": "https://app.example.com,*.example.org", "allowCredentials": True,
         "allowHeaders": "Content-Type,X-Ca-Key,X-Ca-Signature,X-Ca-Signature-Headers,X-Ca-Timestamp,X-Ca-Nonce", "maxAge": 600},
        {"allowOrigins": "*", "allowMethods": "GET,POST", "exposeHeaders": "X-Ca-Request-Id"},
        {"allowOrigins": "https://*.x.com", "allowCredentials": False},
        "allowOrigins: '*.example.org'\n",
    ],
    "backendSignature": [
        {"type": "APIGW_BACKEND", "key": "backend-key-1", "secret": "backend-secret-123456"},
        {"key": "k", "secret": "s"},
        "key: k\nsecret: s\ntype: OTHER\n",
    ],
    "basicAuth": [
        {"users": [{"username": "ops", "password": "pa55w0rd"}]},
        {"users": [{"username": "alice", "password": "s3cret"}, {"username": "bob", "password": 1234}]},
        "users:\n  - username: ops\n    password: pa55w0rd\n",
    ],
    "circuitBreaker": [
        "timeoutThreshold: 3\nwindowInSeconds: 30\nopenTimeoutSeconds: 2\n",
        {"timeoutThreshold": 1, "windowInSeconds": 3600, "openTimeoutSeconds": 1, "errorThreshold": 5, "errorRatio": 0.5},
    ],
    "errorMapping": [
        "parameters:\n  statusCode: \"StatusCode\"\n  resultCode: \"BodyJsonField:$.result_code\"\n  resultId: \"BodyJsonField:$.req_msg_id\"\n"
        "errorCondition: \"$statusCode = 200 and $resultCode <> 'OK'\"\nerrorCode: \"resultCode\"\nmappings:\n  - code: \"ROLE_NOT_EXISTS\"\n"
        "    statusCode: 404\n    errorMessage: \"Role Not Exists, RequestId=${resultId}\"\ndefaultMapping:\n  statusCode: 500\n"
        "  errorMessage: \"Unknown Error, ${resultCode}, RequestId=${resultId}\"\n",
        {"parameters": {"q": "Query:x"}, "errorCondition": "$q = 1"},
        {"parameters": {"e": "ErrorCode", "h": "Header:X-Err", "t": "Token:sub", "s": "System:CaAppId", "b": "BodyJsonField:$['a'][0].b"},
         "errorCondition": "$e <> null or $h = 'x'", "errorCode": "$e", "maxBodyBytes": 10,
         "mappings": [{"code": "X", "statusCode": 599, "errorMessage": "${h}\n${t}"}]},
    ],
}
TYPES = ["jwtAuth", "trafficControl", "ipControl", "accessControl", "cors", "backendSignature", "basicAuth", "circuitBreaker", "errorMapping"]


def plugin_data_seeds():
    s = {}
    for i, t in enumerate(TYPES):
        for j, d in enumerate(PLUGIN_DATA[t]):
            text = d if isinstance(d, str) else json.dumps(d, ensure_ascii=False)
            s[f"{t}-{j}"] = bytes([i]) + text.encode()
    s["yaml-anchors"] = bytes([1]) + b"base: &b {unit: MINUTE, apiDefault: 5}\n<<: *b\n"
    s["not-json-nor-yaml"] = bytes([0]) + b"{ not json: [ nor yaml"
    return s


# ------------------------------------------------------------------------------------------------
# Dictionaries

DICTS = {
    "request_path": ["x-ca-key", "x-ca-signature", "x-ca-signature-headers", "x-ca-timestamp", "x-ca-nonce", "x-ca-signature-method",
                     "x-ca-stage", "x-ca-hops", "x-ca-request-mode", "x-forwarded-for", "content-type", "content-md5", "content-length",
                     "authorization", "cookie", "origin", "access-control-request-method", "access-control-request-headers", ":authority",
                     ":path", ":method", "APPCODE ", "Bearer ", "Basic ", "HmacSHA1", "HmacSHA256", "application/x-www-form-urlencoded",
                     "AppCode=", "token=", "%2e%2e", "/../", "RELEASE", "TEST", "PRE", "debug", "/orders/", "/users/", "/tokens/",
                     "/form", "/strict", "/admin", "/backend/", "/items/", "/mock", "/signed/", "CODE1", "CODE2", "CODE3", "k1", "k2", "k3",
                     "x-tenant", "x-kind", "x-user-id", "subject=", "fields=", "n=", "q=", "f=", "email=", "status=", "x-cagate-cluster"],
    "string_to_sign": ["x-ca-signature-headers", "x-ca-key", "x-ca-signature", "x-ca-signature-method", "accept", "content-md5",
                       "content-type", "date", "application/x-www-form-urlencoded", "HmacSHA1", "%E4%B8%AD", "%25", "%2B", "+", "&", "="],
    "conditions": ["$a", "$b", "$c", "$userId", "$pathUserId", "$q", " and ", " or ", "not ", "AND", "OR", "NOT", "null", "true", "false",
                   "Random()", "<>", "!=", "<=", ">=", "''", "\"", "(", ")", "${a}", "BodyJsonField:", "$.", "['", "']", "[0]", "Header:",
                   "Query:", "Form:", "Parameter:", "System:CaAppId", "Token:", "XFF:", "StatusCode", "ErrorCode", "Method", "Path"],
    "jwt": ["eyJ", "\"alg\":", "\"kid\":", "\"kty\":", "\"crv\":", "\"keys\":", "\"use\":\"sig\"", "RS256", "PS256", "ES256", "ES384", "EdDSA",
            "HS256", "HS384", "HS512", "none", "RSA", "EC", "OKP", "oct", "P-256", "P-384", "Ed25519", "k-HS256", "k-RS256", "k-ES256",
            "k-EdDSA", "fuzz-ES256", "fuzz-EdDSA", "\"exp\":", "\"nbf\":", "\"iss\":", "\"aud\":", "\"jti\":", "\"sub\":", "\"userId\":",
            "\"crit\":", "https://issuer.example", "cagate", "AQAB"],
    "ecdsa": ["\"kty\":\"EC\"", "\"crv\":\"P-256\"", "\"crv\":\"P-384\"", "\"x\":", "\"y\":", "\"keys\":", "eyJ", "."],
    "app_registry": ["\"apps\"", "\"authorizations\"", "\"version\"", "\"appId\"", "\"appKey\"", "\"appSecret\"", "\"appCodes\"",
                     "\"keys\"", "\"validUntil\"", "\"env\"", "\"api\"", "\"stage\"", "\"authValidTime\"", "\"getOrder\"",
                     "\"release-only\"", "\"RELEASE\"", "\"TEST\"", "\"ownerId\"", "static-key", "STATIC-CODE"],
    "config_compile": ["\"apps\"", "\"apis\"", "\"plugins\"", "\"groupPlugins\"", "\"stages\"", "\"signature\"", "\"stageVariables\"",
                       "\"maxBodyBytes\"", "\"maxUrlBytes\"", "\"maxHops\"", "\"appId\"", "\"appKey\"", "\"appSecret\"", "\"appCodes\"",
                       "\"name\"", "\"method\"", "\"path\"", "\"authType\"", "\"ANONYMOUS\"", "\"appCodeAuth\"", "\"HEADER_QUERY\"",
                       "\"authorizations\"", "\"parameters\"", "\"backend\"", "\"requestMode\"", "\"MAPPING\"", "\"MOCK\"", "\"type\"",
                       "\"data\"", "\"plugin\"", "\"jwtAuth\"", "\"trafficControl\"", "\"ipControl\"", "\"accessControl\"", "\"cors\"",
                       "\"basicAuth\"", "\"backendSignature\"", "\"circuitBreaker\"", "\"errorMapping\"", "\"location\"", "\"QUERY\"",
                       "\"PATH\"", "\"HEADER\"", "\"FORM\"", "/[id]", "/*", "#orders#", "\"RELEASE\"", "\"TEST\""],
    "config_plugin_data": ["parameter", "parameterLocation", "jwk", "jwks", "claimParameters", "unit", "apiDefault", "userDefault",
                           "appDefault", "specials", "policies", "type", "resource", "items", "blocks", "appId", "parameters", "rules",
                           "condition", "ifTrue", "ifFalse", "ALLOW", "DENY", "allowOrigins", "allowCredentials", "users", "username",
                           "password", "key", "secret", "timeoutThreshold", "errorCondition", "mappings", "defaultMapping", ": ", "- ",
                           "&a ", "*a", "<<: ", "!!str", "XFF:0", "Token:", "StatusCode", "BodyJsonField:$.a"],
}


def write(target, seeds):
    d = os.path.join(FUZZ, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    # Crashes found earlier (fuzz/regressions/<target>, each fixed before it is added there).
    r = os.path.join(FUZZ, "regressions", target)
    for name in sorted(os.listdir(r)) if os.path.isdir(r) else []:
        seeds["regression-" + name] = open(os.path.join(r, name), "rb").read()
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())


def main():
    write("request_path", request_path_seeds())
    write("string_to_sign", string_to_sign_seeds())
    write("conditions", {f"c{i:02d}": c for i, c in enumerate(CONDITIONS)})
    write("jwt", jwt_seeds())
    write("ecdsa", ecdsa_seeds())
    write("app_registry", registry_seeds())
    write("config_compile", configs())
    write("config_plugin_data", plugin_data_seeds())
    os.makedirs(os.path.join(FUZZ, "dict"), exist_ok=True)
    for target, words in DICTS.items():
        with open(os.path.join(FUZZ, "dict", target + ".dict"), "w") as f:
            for w in words:
                f.write('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"\n')
    for t in sorted(os.listdir(os.path.join(FUZZ, "corpus"))):
        d = os.path.join(FUZZ, "corpus", t)
        print(t, len(os.listdir(d)), "seeds", sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)), "bytes")


if __name__ == "__main__":
    main()
