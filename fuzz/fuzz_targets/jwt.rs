//! jwtAuth on arbitrary tokens, and JWK parsing and verification on arbitrary JSON.
//!
//! Every input is used three ways:
//! 1. as a bearer token, as it is, through a jwtAuth plugin holding the HS256, RS256, ES256 and EdDSA
//!    keys of `filter/core/tests/data/jwt_vectors.json` (and two keys of the harness);
//! 2. re-signed (`cagate_fuzz::resign_jwt`: a valid signature over its first two segments for the
//!    `alg` its header names), so that fuzzed headers and claims get past the signature to the
//!    claim checks, through the plugin with the token in a header (claims to headers and query), in
//!    the query (issuer, audiences, a small cache) and in a cookie (jti replay); twice each;
//! 3. as a JWK, a JWK array or a JWK Set (`Key::from_jwk`, `parse_key_set`): every key parsed then
//!    verifies fixed signatures with every algorithm (an RSA key also a signature below its modulus).
//!
//! The ECDSA verifier against a reference is the `ecdsa` target.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_core::jwt::jwk::{parse_key_set, Key};
use cagate_core::testkit::Kit;
use cagate_core::Headers;
use cagate_fuzz::{all_algs, drive, jwt_keys, jwt_vectors, resign_jwt, Env, NOW};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::sync::OnceLock;

thread_local! {
    static KIT: RefCell<Kit> = RefCell::new(vm());
}

/// The VM of the target: jwtAuth with the token in a header, the query and a cookie.
fn vm() -> Kit {
    let keys = jwt_keys();
    let cfg = json!({
        "plugins": [
            { "name": "jh", "type": "jwtAuth", "data": { "parameter": "Authorization", "jwks": { "keys": keys },
              "claimParameters": [ { "claimName": "userId", "parameterName": "X-User-Id", "location": "header" },
                                   { "claimName": "sub", "parameterName": "subject", "location": "query" },
                                   { "claimName": "aud", "parameterName": "X-Aud", "location": "header" } ] } },
            { "name": "jq", "type": "jwtAuth", "data": { "parameter": "token", "parameterLocation": "query", "jwks": keys,
              "issuer": "https://issuer.example", "audiences": ["cagate", "other"], "cacheSize": 1, "clockSkewSeconds": 0 } },
            { "name": "jc", "type": "jwtAuth", "data": { "parameter": "jwt", "parameterLocation": "cookie", "jwks": keys,
              "preventJtiReplay": true, "jtiCapacity": 64, "ignoreExpirationCheck": true } },
            { "name": "ac", "type": "accessControl", "data": {
              "parameters": { "userId": "Token:userId", "path": "Parameter:userId", "t": "Token:userType" },
              "rules": [ { "name": "owner", "condition": "$userId = $path or $t = 'admin'", "ifFalse": "DENY",
                           "errorMessage": "${userId} is not ${path}" } ] } }
        ],
        "apis": [
            { "name": "h", "method": "GET", "path": "/h/[userId]", "authType": "ANONYMOUS", "plugins": [ { "plugin": "jh" }, { "plugin": "ac" } ] },
            { "name": "q", "method": "GET", "path": "/q", "authType": "ANONYMOUS", "plugins": [ { "plugin": "jq" } ] },
            { "name": "c", "method": "GET", "path": "/c", "authType": "ANONYMOUS", "plugins": [ { "plugin": "jc" } ] }
        ]
    });
    cagate_fuzz::kit(&cfg)
}

/// Signing input and signature of a vector token, for each algorithm.
fn fixed_signatures() -> &'static [(Vec<u8>, Vec<u8>)] {
    static S: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    S.get_or_init(|| {
        jwt_vectors()
            .iter()
            .filter_map(|v| v["token"].as_str())
            .filter_map(|t| t.rsplit_once('.'))
            .map(|(input, sig)| (input.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(sig).unwrap_or_default()))
            .collect()
    })
}

fn through(kit: &Kit, path: &[u8], name: &[u8], value: &[u8]) {
    let mut pairs = vec![(b":method".to_vec(), b"GET".to_vec()), (b":path".to_vec(), path.to_vec())];
    if !name.is_empty() {
        pairs.push((name.to_vec(), value.to_vec()));
    }
    cagate_fuzz::with_headers(&pairs, true, |h: &Headers<'_>| {
        for later in [0, 61_000] {
            drive(kit, &Env { peer: "192.0.2.1:1", ..Env::default() }, h, b"", NOW + later);
        }
    });
}

fn keys(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    let mut parsed: Vec<Key> = Vec::new();
    if let Ok(k) = Key::from_jwk(&v) {
        parsed.push(k);
    }
    if let Ok(ks) = parse_key_set(&v) {
        parsed.extend(ks);
    }
    // A signature just below the modulus: the RSA arithmetic on any key the parser accepts.
    let below_n = v.get("n").and_then(Value::as_str).and_then(|n| URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()).map(|mut n| {
        if let Some(first) = n.iter().position(|&b| b != 0) {
            n[first] -= 1;
        }
        n
    });
    for k in &parsed {
        for alg in all_algs() {
            let _ = k.allows(alg);
            for (input, sig) in fixed_signatures() {
                let _ = k.verify(alg, input, sig);
            }
            if let Some(sig) = &below_n {
                let _ = k.verify(alg, b"a.b", sig);
            }
            let _ = k.verify(alg, data, &[0u8; 64]);
        }
    }
}

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, one));

fn one(data: &[u8]) {
    KIT.with_borrow_mut(|kit| {
        kit.forget();
        through(kit, b"/h/42", b"authorization", &[&b"Bearer "[..], data].concat());
        if let Some(t) = resign_jwt(data) {
            through(kit, b"/h/42?subject=forged", b"authorization", &[&b"Bearer "[..], &t].concat());
            through(kit, &[&b"/q?a=1&token="[..], &t].concat(), b"", b"");
            through(kit, b"/c", b"cookie", &[&b"a=b; jwt="[..], &t, b"; c=d"].concat());
        }
    });
    keys(data);
}
