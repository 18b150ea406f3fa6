#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The jwtAuth plugin natively: vectors minted by PyJWT (tests/tools/gen_jwt_vectors.py) and from the
//! RFCs, every error code, algorithm confusion, malformed input, the caches and the jti store.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_core::compile;
use cagate_core::jwt::jwk::{Alg, Key};
use cagate_core::testkit::{Kit, Outcome};
use cagate_core::MemoryStore;
use serde_json::{json, Value};
use std::sync::Arc;

const NOW: i64 = 1_800_000_000_000;

fn vectors() -> Vec<Value> {
    serde_json::from_str(include_str!("data/jwt_vectors.json")).unwrap()
}

struct World {
    kit: Kit,
}

fn config(plugin_data: Value) -> String {
    json!({
        "plugins": [ { "name": "jwt", "type": "jwtAuth", "data": plugin_data } ],
        "apis": [ { "name": "profile", "method": "ANY", "path": "/users/[userId]", "authType": "ANONYMOUS",
                    "plugins": [ { "plugin": "jwt" } ] } ]
    })
    .to_string()
}

fn world(plugin_data: Value) -> World {
    World { kit: Kit::new(&config(plugin_data), NOW) }
}

impl World {
    fn call(&mut self, path: &str, headers: &[(&str, &str)], now: i64) -> Outcome {
        self.kit.clock.0.set(now);
        self.kit.get(path, headers)
    }

    fn bearer(&mut self, token: &str) -> Outcome {
        self.call("/users/42", &[("authorization", &format!("Bearer {token}"))], NOW)
    }
}

/// "OK" for a forwarded request, else the refusal's code and message.
fn code(o: &Outcome) -> String {
    if o.forwarded() {
        return "OK".into();
    }
    match (o.code(), o.message()) {
        (Some(code), Some(message)) => format!("{code} {message}"),
        _ => panic!("neither forwarded nor refused: {:?}", o.reply()),
    }
}

/// The plugin forwards `claim` to the backend as header `header`.
fn forwarding(mut data: Value, claim: &str, header: &str) -> Value {
    data["claimParameters"] = json!([ { "claimName": claim, "parameterName": header, "location": "header" } ]);
    data
}

fn plugin_for(v: &Value) -> Value {
    json!({ "parameter": "Authorization", "parameterLocation": "header", "jwks": [ v["jwk"] ] })
}

fn tamper_payload(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["userId"] = json!("admin");
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2])
}

#[test]
fn every_algorithm_verifies_and_rejects_tampering() {
    for v in vectors() {
        let alg = v["alg"].as_str().unwrap();
        let mut w = world(forwarding(plugin_for(&v), "userId", "X-User-Id"));
        let ok = w.bearer(v["token"].as_str().unwrap());
        assert!(ok.forwarded(), "{alg}: {:?}", ok.reply());
        assert_eq!(ok.stream.upstream("x-user-id").as_deref(), Some("42"), "{alg}: the verified claim reaches the backend");
        assert_eq!(code(&w.bearer(v["token_no_kid"].as_str().unwrap())), "OK", "{alg} without kid");
        assert_eq!(code(&w.bearer(&tamper_payload(v["token"].as_str().unwrap()))), "A403JT Invalid JWT: signature mismatch", "{alg}");
        assert_eq!(code(&w.bearer(v["wrong_key_token"].as_str().unwrap())), "A403JT Invalid JWT: signature mismatch", "{alg}");
    }
}

#[test]
fn the_key_decides_the_algorithm() {
    let vs = vectors();
    let rsa = vs.iter().find(|v| v["alg"] == "RS256").unwrap();
    let mut w = world(plugin_for(rsa));
    // alg none, unsigned
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k-RS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"x","exp":4102444800}"#);
    assert_eq!(code(&w.bearer(&format!("{header}.{payload}."))), "A403JT Invalid JWT: algorithm `none` is not accepted");
    // HS256 signed with the RSA public key's modulus as the secret
    use hmac::{Hmac, Mac};
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"k-RS256"}"#);
    let input = format!("{header}.{payload}");
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(rsa["jwk"]["n"].as_str().unwrap().as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    assert_eq!(code(&w.bearer(&forged)), "A403JT Invalid JWT: algorithm HS256 does not match the key");
    // an RS256 token presented as PS256 with the same signature
    let t = rsa["token"].as_str().unwrap();
    let parts: Vec<&str> = t.split('.').collect();
    let ps_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"PS256","kid":"k-RS256","typ":"JWT"}"#);
    assert!(code(&w.bearer(&format!("{ps_header}.{}.{}", parts[1], parts[2]))).starts_with("A403JT"));
    // a key pinned to one algorithm refuses the others of its type
    let mut pinned = rsa["jwk"].clone();
    pinned["alg"] = json!("PS256");
    let mut w = world(json!({ "parameter": "Authorization", "jwk": pinned }));
    assert_eq!(code(&w.bearer(t)), "A403JT Invalid JWT: algorithm RS256 does not match the key");
}

#[test]
fn rfc_vectors() {
    // RFC 7515 A.1: HS256
    let k = json!({"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"});
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let mut w = world(json!({ "parameter": "Authorization", "jwk": k }));
    assert_eq!(code(&w.bearer(token)), "A403JE JWT is expired at `2011-03-22T18:43:00Z`");
    let mut w = world(forwarding(json!({ "parameter": "Authorization", "jwk": k, "ignoreExpirationCheck": true }), "iss", "X-Iss"));
    let a = w.bearer(token);
    assert!(a.forwarded(), "{:?}", a.reply());
    assert_eq!(a.stream.upstream("x-iss").as_deref(), Some("joe"));
    // RFC 8037 A.4: Ed25519 over a non-JSON payload: the signature verifies, the token is no JWT.
    let key = Key::from_jwk(&json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})).unwrap();
    let jws = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    let (input, sig) = jws.rsplit_once('.').unwrap();
    assert!(key.verify(Alg::EdDSA, input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap()));
    assert!(!key.verify(Alg::EdDSA, b"other", &URL_SAFE_NO_PAD.decode(sig).unwrap()));
    let mut w =
        world(json!({ "parameter": "Authorization", "jwk": {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"} }));
    assert!(code(&w.bearer(jws)).starts_with("I400JD"));
}

#[test]
fn error_codes() {
    let v = vectors().into_iter().find(|v| v["alg"] == "ES256").unwrap();
    let mut w = world(plugin_for(&v));
    assert_eq!(code(&w.call("/users/1", &[], NOW)), "I400JR JWT required");
    for bad in ["abc", "a.b", "a.b.c.d", "!!!.e30.e30", "e30.e30.!!!", "bm90IGpzb24.e30.e30"] {
        assert!(code(&w.bearer(bad)).starts_with("I400JD JWT Deserialize Failed: `"), "{bad}");
    }
    let huge = format!("{}.{}.x", "e".repeat(20_000), "e");
    let r = code(&w.bearer(&huge));
    assert!(r.starts_with("I400JD") && r.len() < 200, "{r}");
    let t = v["token"].as_str().unwrap();
    let parts: Vec<&str> = t.split('.').collect();
    let other_kid = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"nope"}"#), parts[1], parts[2]);
    assert_eq!(code(&w.bearer(&other_kid)), "A403JK No matching JWK, `nope` not found");
    assert_eq!(
        code(&w.call("/users/1", &[("authorization", &format!("Bearer {t}"))], 4_102_444_800_000 + 61_000)),
        "A403JE JWT is expired at `2100-01-01T00:00:00Z`"
    );
    assert_eq!(code(&w.call("/users/1", &[("authorization", &format!("Bearer {t}"))], 4_102_444_800_000 + 59_000)), "OK", "within skew");
}

#[test]
fn nbf_issuer_audience() {
    let v = vectors().into_iter().find(|v| v["alg"] == "HS256").unwrap();
    let secret = URL_SAFE_NO_PAD.decode(v["jwk"]["k"].as_str().unwrap()).unwrap();
    let mint = |claims: Value| {
        use hmac::{Hmac, Mac};
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&secret).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    };
    let mut data = plugin_for(&v);
    data["issuer"] = json!("https://issuer.example");
    data["audiences"] = json!(["cagate", "other"]);
    let mut w = world(data);
    assert_eq!(code(&w.bearer(v["token"].as_str().unwrap())), "OK");
    assert_eq!(code(&w.bearer(&mint(json!({"iss":"https://issuer.example","aud":["x","other"]})))), "OK");
    assert_eq!(code(&w.bearer(&mint(json!({"iss":"https://evil","aud":"cagate"})))), "A403JT Invalid JWT: issuer not allowed");
    assert_eq!(code(&w.bearer(&mint(json!({"iss":"https://issuer.example","aud":"x"})))), "A403JT Invalid JWT: audience not allowed");
    let nbf = NOW / 1000 + 120;
    assert_eq!(
        code(&w.bearer(&mint(json!({"iss":"https://issuer.example","aud":"cagate","nbf":nbf})))),
        "A403JT Invalid JWT: token is not valid yet (nbf)"
    );
    assert_eq!(
        code(&w.bearer(&mint(json!({"iss":"https://issuer.example","aud":"cagate","exp":"soon"})))),
        "A403JT Invalid JWT: `exp` is not a number"
    );
}

#[test]
fn token_locations_and_bypass() {
    let v = vectors().into_iter().find(|v| v["alg"] == "EdDSA").unwrap();
    let t = v["token"].as_str().unwrap();
    let mut q = plugin_for(&v);
    q["parameter"] = json!("token");
    q["parameterLocation"] = json!("query");
    assert_eq!(code(&world(q).call(&format!("/users/1?a=1&token={t}"), &[], NOW)), "OK");
    let mut c = plugin_for(&v);
    c["parameter"] = json!("jwt");
    c["parameterLocation"] = json!("cookie");
    assert_eq!(code(&world(c.clone()).call("/users/1", &[("cookie", &format!("a=b; jwt={t}; c=d"))], NOW)), "OK");
    assert_eq!(code(&world(c).call("/users/1", &[("cookie", "a=b")], NOW)), "I400JR JWT required");
    let mut h = plugin_for(&v);
    h["parameter"] = json!("X-Token");
    assert_eq!(code(&world(h).call("/users/1", &[("x-token", t)], NOW)), "OK", "no Bearer prefix");
    let mut b = forwarding(plugin_for(&v), "userId", "X-User-Id");
    b["bypassEmptyToken"] = json!(true);
    let mut w = world(b);
    assert_eq!(w.bearer(t).stream.upstream("x-user-id").as_deref(), Some("42"), "with a token, its claims");
    let a = w.call("/users/1", &[("x-user-id", "forged")], NOW);
    assert!(a.forwarded(), "{:?}", a.reply());
    assert_eq!(a.stream.upstream("x-user-id"), None, "no token, no claims");
    assert!(code(&w.bearer("garbage")).starts_with("I400JD"), "a present but bad token is still refused");
}

#[test]
fn a_token_given_twice_with_different_values_is_refused_in_headers_and_the_query() {
    // Only one copy is verified; a backend reading the claims itself may read the other.
    let v = vectors().into_iter().find(|v| v["alg"] == "EdDSA").unwrap();
    let t = v["token"].as_str().unwrap();
    let forged = tamper_payload(t);
    let repeated = "I400JD JWT Deserialize Failed: `the token is given more than once, with different values`";
    let mut q = plugin_for(&v);
    q["parameter"] = json!("token");
    q["parameterLocation"] = json!("query");
    assert_eq!(code(&world(q.clone()).call(&format!("/users/1?token={t}&token={forged}"), &[], NOW)), repeated);
    assert_eq!(code(&world(q).call(&format!("/users/1?token={t}&token={t}"), &[], NOW)), "OK", "the same token twice");
    let mut c = plugin_for(&v);
    c["parameter"] = json!("jwt");
    c["parameterLocation"] = json!("cookie");
    // Browsers send one name twice for cookies set on different paths: the first is the token.
    assert_eq!(code(&world(c.clone()).call("/users/1", &[("cookie", &format!("jwt={t}; jwt={forged}"))], NOW)), "OK");
    assert_eq!(code(&world(c.clone()).call("/users/1", &[("cookie", &format!("jwt={t}")), ("cookie", &format!("jwt={forged}"))], NOW)), "OK");
    assert!(code(&world(c).call("/users/1", &[("cookie", &format!("jwt={forged}; jwt={t}"))], NOW)).starts_with("A403JT"));
    let mut h = plugin_for(&v);
    h["parameter"] = json!("X-Token");
    assert_eq!(code(&world(h.clone()).call("/users/1", &[("x-token", t), ("X_Token", &forged)], NOW)), repeated);
    assert_eq!(code(&world(h).call("/users/1", &[("x-token", t), ("x-token", &format!("Bearer {t}"))], NOW)), "OK");
}

#[test]
fn claims_reach_the_backend_and_forged_copies_are_removed() {
    let v = vectors().into_iter().find(|v| v["alg"] == "RS256").unwrap();
    let mut data = plugin_for(&v);
    data["claimParameters"] = json!([
        { "claimName": "userId", "parameterName": "X-User-Id", "location": "header" },
        { "claimName": "missing", "parameterName": "X-Missing", "location": "header" },
        { "claimName": "sub", "parameterName": "subject", "location": "query" }
    ]);
    let mut w = world(data);
    let t = v["token"].as_str().unwrap();
    let headers = [("authorization", format!("bearer {t}")), ("x-user-id", "forged".into()), ("x-missing", "forged".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let a = w.call("/users/42?subject=forged&keep=1", &headers, NOW);
    assert!(a.forwarded(), "{:?}", a.reply());
    assert_eq!(a.stream.upstream_all("x-user-id"), ["42"]);
    assert_eq!(a.stream.upstream("x-missing"), None, "a claim the token lacks: the client's copy is removed");
    assert_eq!(a.stream.upstream(":path").as_deref(), Some("/users/42?keep=1&subject=user-1"));
}

#[test]
fn jti_replay_and_store_bounds() {
    let v = vectors().into_iter().find(|v| v["alg"] == "HS512").unwrap();
    let mut data = plugin_for(&v);
    data["preventJtiReplay"] = json!(true);
    data["jtiCapacity"] = json!(64);
    let mut w = world(data);
    let t = v["token"].as_str().unwrap();
    assert_eq!(code(&w.bearer(t)), "OK");
    assert_eq!(code(&w.bearer(t)), "A403SV Claim `jti` in JWT is used", "cached token, same jti");
    // a token without jti
    let secret = URL_SAFE_NO_PAD.decode(v["jwk"]["k"].as_str().unwrap()).unwrap();
    use hmac::{Hmac, Mac};
    let mint = |claims: Value| {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut mac = <Hmac<sha2::Sha512> as Mac>::new_from_slice(&secret).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    };
    assert_eq!(code(&w.bearer(&mint(json!({"sub":"x"})))), "S403JI Claim `jti` is required when `preventJtiReplay:true`");
    // A numeric jti (some issuers write one) is the token's identifier as well.
    assert_eq!(code(&w.bearer(&mint(json!({"jti": 12345, "exp": 4102444800i64})))), "OK");
    assert_eq!(code(&w.bearer(&mint(json!({"jti": 12345, "exp": 4102444801i64})))), "A403SV Claim `jti` in JWT is used");
    let keys_before = w.kit.store.key_count();
    // the store holds at least its capacity (the bound itself: nonce.rs), and never adds keys
    let mut full = 0;
    for i in 0..200 {
        if code(&w.bearer(&mint(json!({"jti": format!("j{i}"), "exp": 4102444800i64})))).starts_with("X503BZ") {
            full += 1;
        }
    }
    assert_eq!(full, 0, "room for at least 64 live jtis");
    assert_eq!(code(&w.bearer(&mint(json!({"jti": "j7", "exp": 4102444800i64})))), "A403SV Claim `jti` in JWT is used");
    assert_eq!(w.kit.store.key_count(), keys_before);
}

#[test]
fn jti_replay_across_threads() {
    let v = vectors().into_iter().find(|v| v["alg"] == "ES384").unwrap();
    let mut data = plugin_for(&v);
    data["preventJtiReplay"] = json!(true);
    let cfg = json!({ "plugins": [ { "name": "jwt", "type": "jwtAuth", "data": data } ],
                      "apis": [ { "name": "p", "method": "ANY", "path": "/*", "authType": "ANONYMOUS", "plugins": [ { "plugin": "jwt" } ] } ] });
    let gw = compile(cfg.to_string().as_bytes()).unwrap();
    let store = Arc::new(MemoryStore::new());
    let token = Arc::new(format!("Bearer {}", v["token"].as_str().unwrap()));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (gw, store, token) = (gw.clone(), store.clone(), token.clone());
            std::thread::spawn(move || {
                // each thread is one Envoy worker VM: its own engine, the shared store
                let kit = Kit::sharing(gw, NOW, store);
                (0..5).filter(|_| kit.get("/x", &[("authorization", &token)]).forwarded()).count()
            })
        })
        .collect();
    let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, 1);
}

#[test]
fn cache_skips_verification_until_cleared() {
    let v = vectors().into_iter().find(|v| v["alg"] == "PS256").unwrap();
    let other = vectors().into_iter().find(|v| v["alg"] == "ES256").unwrap();
    let mut w = world(json!({ "parameter": "Authorization", "jwk": other["jwk"], "cacheSize": 2 }));
    w.kit.engine.runtime().borrow_mut().jwt[0].as_mut().unwrap().remote_keys = Some(vec![Key::from_jwk(&v["jwk"]).unwrap()]);
    let t = v["token"].as_str().unwrap();
    assert_eq!(code(&w.bearer(t)), "OK");
    // The key disappears without the cache being told: the cached verdict still stands...
    w.kit.engine.runtime().borrow_mut().jwt[0].as_mut().unwrap().remote_keys = Some(vec![]);
    assert_eq!(code(&w.bearer(t)), "OK");
    // ...until the key set change clears it, as the adapter does.
    w.kit.engine.runtime().borrow_mut().jwt[0].as_mut().unwrap().clear_cache();
    assert!(code(&w.bearer(t)).starts_with("A403JK"));
}

#[test]
fn plugin_configuration_is_validated() {
    let bad = json!({
        "plugins": [
            { "name": "a", "type": "jwtAuth", "data": { "parameter": "Authorization", "jwk": { "kty": "RSA", "n": "AQAB", "e": "AQAB" } } },
            { "name": "b", "type": "jwtAuth", "data": "parameter: X-Token\nparameterLocation: body\njwks: []\nsurprise: 1\n" },
            { "name": "c", "type": "jwtAuth", "data": "{ not json: [ nor yaml" },
            { "name": "d", "type": "noSuchPlugin", "data": {} },
            { "name": "e", "type": "jwtAuth", "data": { "parameter": "A", "jwk": { "kty": "oct", "k": "c2hvcnQ" } } },
            { "name": "f", "type": "jwtAuth", "data": { "parameter": "A", "jwk": { "kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NQ" } } },
            { "name": "f", "type": "jwtAuth", "data": { "parameter": "A", "jwksUri": "ftp://x" } },
            { "name": "g", "type": "jwtAuth", "data": { "parameter": "A", "jwks": { "keys": vec![json!({ "kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZg" }); 65] } } }
        ],
        "groupPlugins": [ { "plugin": "f" }, { "plugin": "ghost" } ],
        "apis": [ { "name": "x", "method": "GET", "path": "/x", "authType": "ANONYMOUS",
                    "plugins": [ { "plugin": "f" }, { "plugin": "f", "stages": ["RELEASE"] }, { "plugin": "f", "stages": ["TEST"] } ] } ]
    });
    let all: Vec<String> = compile(bad.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    let text = all.join("\n");
    for expected in [
        "plugins[0].data (plugin a).jwk: key 0: RSA keys shorter than 2048 bits are refused",
        "plugins[1].data (plugin b).parameterLocation: unknown location body",
        "plugins[1].data (plugin b).surprise: unknown field",
        "plugins[2].data: is neither JSON nor YAML",
        "plugins[3].type: unknown plugin type noSuchPlugin",
        "plugins[4].data (plugin e).jwk: key 0: an oct key must have at least 16 bytes",
        "plugins[6].name: duplicate plugin name f",
        "plugins[7].data (plugin g).jwks: 65 keys: at most 64 are accepted",
        "groupPlugins[1].plugin: unknown plugin ghost",
        "apis[0].plugins[1]: a second jwtAuth plugin on apis[0] in stage RELEASE at api level",
        "apis[0].plugins[2]: binds the plugin in a stage the API is not published in",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("MDEyMzQ1"), "key material leaked");
}

#[test]
fn api_binding_overrides_group_binding_per_stage() {
    let vs = vectors();
    let (a, b) = (&vs[0], &vs[6]);
    let cfg = json!({
        "stages": ["RELEASE", "TEST"],
        "plugins": [ { "name": "group-jwt", "type": "jwtAuth", "data": plugin_for(a) },
                     { "name": "api-jwt", "type": "jwtAuth", "data": serde_json::to_string(&plugin_for(b)).unwrap() } ],
        "groupPlugins": [ { "plugin": "group-jwt" } ],
        "apis": [ { "name": "x", "method": "GET", "path": "/x", "authType": "ANONYMOUS", "stages": ["RELEASE", "TEST"],
                    "plugins": [ { "plugin": "api-jwt", "stages": ["TEST"] } ] },
                  { "name": "y", "method": "GET", "path": "/y", "authType": "ANONYMOUS" } ]
    });
    let gw = compile(cfg.to_string().as_bytes()).unwrap();
    assert_eq!(gw.bound(cagate_core::ApiId(0), cagate_core::StageId(0)).jwt, Some(cagate_core::PluginId(0)), "RELEASE: the group's");
    assert_eq!(gw.bound(cagate_core::ApiId(0), cagate_core::StageId(1)).jwt, Some(cagate_core::PluginId(1)), "TEST: the API's");
    assert_eq!(gw.bound(cagate_core::ApiId(1), cagate_core::StageId(0)).jwt, Some(cagate_core::PluginId(0)));
    assert_eq!(gw.bound(cagate_core::ApiId(1), cagate_core::StageId(1)).jwt, None, "y is not published in TEST");
}

#[test]
fn rsa_signature_edge_cases() {
    let v = vectors().into_iter().find(|v| v["alg"] == "RS256").unwrap();
    let key = Key::from_jwk(&v["jwk"]).unwrap();
    let t = v["token"].as_str().unwrap();
    let (input, sig) = t.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert!(key.verify(Alg::RS256, input.as_bytes(), &sig));
    assert!(!key.verify(Alg::RS384, input.as_bytes(), &sig), "same key, other hash");
    assert!(!key.verify(Alg::RS256, input.as_bytes(), &sig[1..]), "short signature");
    assert!(!key.verify(Alg::RS256, input.as_bytes(), &[0xff; 256]), "signature >= modulus");
    assert!(!key.verify(Alg::RS256, input.as_bytes(), &[0; 256]));
    let mut flipped = sig.clone();
    flipped[100] ^= 1;
    assert!(!key.verify(Alg::RS256, input.as_bytes(), &flipped));
    let mut even = v["jwk"].clone();
    let mut n = URL_SAFE_NO_PAD.decode(even["n"].as_str().unwrap()).unwrap();
    *n.last_mut().unwrap() &= 0xfe;
    even["n"] = json!(URL_SAFE_NO_PAD.encode(&n));
    assert!(Key::from_jwk(&even).is_err());
    let mut e1 = v["jwk"].clone();
    e1["e"] = json!("AQ");
    assert!(Key::from_jwk(&e1).is_err(), "e = 1 is refused");
}

#[test]
fn a_token_without_kid_tries_the_unnamed_keys_then_the_others() {
    let (a, b) = (b"secret-a-0123456789abcdef0123456789", b"secret-b-0123456789abcdef0123456789");
    let jwk = |k: &[u8], kid: Option<&str>| {
        let mut j = json!({ "kty": "oct", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(k) });
        if let Some(kid) = kid {
            j["kid"] = json!(kid);
        }
        j
    };
    let mut w = world(json!({ "parameter": "Authorization", "parameterLocation": "header", "jwks": [ jwk(a, None), jwk(b, Some("k2")) ] }));
    use hmac::{Hmac, Mac};
    let mint = |secret: &[u8]| {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#), URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#));
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    };
    assert_eq!(code(&w.bearer(&mint(a))), "OK");
    assert_eq!(code(&w.bearer(&mint(b))), "OK", "the named key, after the unnamed one");
    assert!(code(&w.bearer(&mint(b"secret-c-0123456789abcdef0123456789"))).starts_with("A403JT"));
}
