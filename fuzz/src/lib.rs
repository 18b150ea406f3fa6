//! What the fuzz targets share: the request input format, the fixed configurations, signers that let
//! a fuzzed request or token pass its signature check (so the fuzzer reaches the code behind it), and
//! `drive`, which runs a request through the core's engine with the test kit's in-memory hosts, as the
//! Wasm adapter does (`filter/wasm/src/http.rs`), and checks what comes out.
//!
//! # The request input format (targets `request_path` and `string_to_sign`)
//!
//! ```text
//! byte 0        control byte (each target documents its bits)
//! METHOD PATH\n first line: the method, one space, the path with its query
//! name: value\n header lines, up to an empty line ("\n\n"); a line splits at its first ':' after
//!               the first byte (so ":path: /x" works), one space after the ':' is dropped
//! body          everything after the empty line
//! ```
//! In raw mode the header section is the proxy-wasm serialized header map itself, as bytes.
//! `fuzz/seeds.py` writes seeds in this format.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_core::jwt::jwk::Alg;
use cagate_core::testkit::{Delivery, Kit, LocalReply, MemoryStream, Outcome};
use cagate_core::{
    errors, headers, reply_for, sign, Algorithm, Gateway, Headers, NonceStore, NonceStoreConfig, Refusal, Signed, StringToSign, ERROR_CODE_HEADER,
};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::sync::OnceLock;

/// The fixed "now" of every target (2027-01-15): the seeds' timestamps are this.
pub const NOW: i64 = 1_800_000_000_000;
pub const REQUEST_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Apps of the request-path configuration: (appKey, appSecret).
pub const APPS: [(&str, &str); 3] = [("k1", "test-app-secret-1-0123456789abcdef"), ("k2", "s2-0123456789abcdef"), ("k3", "s3-0123456789abcdef")];

/// Peer addresses a control byte chooses from.
pub const PEERS: [&str; 4] = ["192.0.2.4:5555", "10.1.2.3:80", "[2001:db8::1]:443", "not an address"];

/// How much later the second run of a request happens: replay, rate-limit windows, expiry.
pub const LATER_MS: [i64; 4] = [0, 1_000, 61_000, 3_600_000];

// ---------------------------------------------------------------------------------------------
// A bounded stack

/// How deep the stack of a fuzz input may grow: 1 MiB, the order of the Wasm VM's (Rust's wasm32
/// default stack is 1 MiB). A recursion as deep as its input (a nested condition, say) overflows it
/// well within the fuzzer's input sizes, where the usual 8 MiB would take much longer inputs.
pub const STACK_LIMIT: u64 = 1 << 20;

extern "C" fn on_segv(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let msg: &[u8] = b"\ncagate-fuzz: SIGSEGV: most likely a stack overflow, a recursion deeper than the 1 MiB stack allows (as in the Wasm VM)\n";
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort();
    }
}

/// Once, on the thread libFuzzer runs inputs on (its main thread): caps the stack's growth at
/// `STACK_LIMIT` (Linux checks RLIMIT_STACK whenever the main thread's stack grows), and gives the
/// thread an alternate signal stack and a SIGSEGV handler that reports and aborts. Without them a
/// stack overflow kills the process before libFuzzer can save the input: its own handler would run
/// on the exhausted stack, and Rust's is not installed under libFuzzer's `main`. With them the
/// abort reaches libFuzzer's SIGABRT handler, which writes the crash file.
fn guard_stack() {
    const ALT_STACK: usize = 512 * 1024;
    let alt: &'static mut [u8] = Box::leak(vec![0u8; ALT_STACK].into_boxed_slice());
    // SAFETY: plain libc calls with valid, 'static memory; the handler only calls async-signal-safe functions.
    unsafe {
        let ss = libc::stack_t { ss_sp: alt.as_mut_ptr().cast(), ss_flags: 0, ss_size: ALT_STACK };
        libc::sigaltstack(&ss, std::ptr::null_mut());
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_segv as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_STACK, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_cur.min(STACK_LIMIT as libc::rlim_t);
            libc::setrlimit(libc::RLIMIT_STACK, &lim);
        }
    }
}

/// The usual way a target runs an input: the stack guard set up once (`CAGATE_FUZZ_FULL_STACK=1`
/// leaves the stack as it is), then `body`.
pub fn run(data: &[u8], body: fn(&[u8])) {
    static GUARD: OnceLock<()> = OnceLock::new();
    GUARD.get_or_init(|| {
        if std::env::var_os("CAGATE_FUZZ_FULL_STACK").is_none() {
            guard_stack();
        }
    });
    body(data);
}

// ---------------------------------------------------------------------------------------------
// The request input format

pub struct RequestInput<'a> {
    pub control: u8,
    pub method: &'a [u8],
    pub path: &'a [u8],
    pub head: &'a [u8],
    pub body: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_at_seq<'a>(s: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    find(s, sep).map(|i| (&s[..i], &s[i + sep.len()..]))
}

pub fn split_request(data: &[u8]) -> Option<RequestInput<'_>> {
    let (&control, rest) = data.split_first()?;
    let (line, rest) = split_at_seq(rest, b"\n").unwrap_or((rest, &[]));
    let (method, path) = split_at_seq(line, b" ").unwrap_or((line, b""));
    let (head, body) = if rest.first() == Some(&b'\n') { (&rest[..0], &rest[1..]) } else { split_at_seq(rest, b"\n\n").unwrap_or((rest, &[])) };
    Some(RequestInput { control, method, path, head, body })
}

pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Header lines to pairs (see the format above).
pub fn header_lines(head: &[u8]) -> Pairs {
    let mut out = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let colon = line.iter().skip(1).position(|&b| b == b':').map(|p| p + 1);
        let (name, value) = match colon {
            Some(c) => (&line[..c], &line[c + 1..]),
            None => (line, &line[line.len()..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        out.push((name.to_vec(), value.to_vec()));
    }
    out
}

pub fn refs(pairs: &Pairs) -> Vec<(&[u8], &[u8])> {
    pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect()
}

fn get<'p>(pairs: &'p Pairs, name: &[u8]) -> Option<&'p [u8]> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
}

// ---------------------------------------------------------------------------------------------
// JWT vectors and signers

/// `filter/core/tests/data/jwt_vectors.json`: PyJWT-minted tokens and their public JWKs.
pub fn jwt_vectors() -> &'static [Value] {
    static V: OnceLock<Vec<Value>> = OnceLock::new();
    V.get_or_init(|| serde_json::from_str(include_str!("../../filter/core/tests/data/jwt_vectors.json")).unwrap_or_default())
}

pub fn vector(alg: &str) -> &'static Value {
    static NULL: Value = Value::Null;
    jwt_vectors().iter().find(|v| v["alg"] == alg).unwrap_or(&NULL)
}

/// The secret of the HS256 vector: the oct key the configurations carry.
pub fn hs_secret() -> Vec<u8> {
    let k = vector("HS256")["jwk"]["k"].as_str().unwrap_or("");
    URL_SAFE_NO_PAD.decode(k).unwrap_or_default()
}

fn es256_signer() -> p256::ecdsa::SigningKey {
    let mut secret = [0u8; 32];
    secret[31] = 7;
    secret[0] = 0x5a;
    p256::ecdsa::SigningKey::from_bytes(&secret.into()).unwrap_or_else(|_| unreachable_key())
}

fn es384_signer() -> p384::ecdsa::SigningKey {
    let mut secret = [0u8; 48];
    secret[47] = 11;
    secret[0] = 0x3c;
    p384::ecdsa::SigningKey::from_bytes(&secret.into()).unwrap_or_else(|_| panic!("fixed P-384 test key rejected"))
}

fn ed25519_signer() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
}

fn unreachable_key() -> p256::ecdsa::SigningKey {
    panic!("fixed P-256 test key rejected")
}

/// Public JWKs of the fuzz harness' own keys (the vectors' private keys are not in the repository),
/// so that re-signed ES256 and EdDSA tokens verify.
pub fn harness_jwks() -> Vec<Value> {
    let es = es256_signer();
    let point = es.verifying_key().to_encoded_point(false);
    let (x, y) = (point.x().map(|x| x.to_vec()).unwrap_or_default(), point.y().map(|y| y.to_vec()).unwrap_or_default());
    let p384 = es384_signer().verifying_key().to_encoded_point(false);
    let (x384, y384) = (p384.x().map(|x| x.to_vec()).unwrap_or_default(), p384.y().map(|y| y.to_vec()).unwrap_or_default());
    let ed = ed25519_signer().verifying_key().to_bytes();
    vec![
        json!({ "kty": "EC", "crv": "P-256", "kid": "fuzz-ES256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y) }),
        json!({ "kty": "EC", "crv": "P-384", "kid": "fuzz-ES384", "x": URL_SAFE_NO_PAD.encode(x384), "y": URL_SAFE_NO_PAD.encode(y384) }),
        json!({ "kty": "OKP", "crv": "Ed25519", "kid": "fuzz-EdDSA", "x": URL_SAFE_NO_PAD.encode(ed) }),
    ]
}

/// Four vector keys (HS256, RS256, ES256, EdDSA) and the harness' own (ES256, ES384, EdDSA).
pub fn jwt_keys() -> Vec<Value> {
    let mut keys: Vec<Value> = ["HS256", "RS256", "ES256", "EdDSA"].iter().map(|a| vector(a)["jwk"].clone()).collect();
    keys.extend(harness_jwks());
    keys
}

/// Replaces a token's signature with a valid one over its first two segments, for the `alg` its
/// header names: HS* with the configured oct key, ES256, ES384 and EdDSA with the harness' keys, anything
/// else with HS256. `None` for a token without two segments.
pub fn resign_jwt(token: &[u8]) -> Option<Vec<u8>> {
    let first = token.iter().position(|&b| b == b'.')?;
    let second = token[first + 1..].iter().position(|&b| b == b'.').map_or(token.len(), |p| first + 1 + p);
    let input = &token[..second];
    let alg = URL_SAFE_NO_PAD
        .decode(&token[..first])
        .ok()
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let secret = hs_secret();
    fn mac<M: Mac + hmac::digest::KeyInit>(k: &[u8], m: &[u8]) -> Vec<u8> {
        match <M as hmac::digest::KeyInit>::new_from_slice(k) {
            Ok(mut h) => {
                h.update(m);
                h.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
    let sig = match alg.as_str() {
        "HS384" => mac::<Hmac<sha2::Sha384>>(&secret, input),
        "HS512" => mac::<Hmac<sha2::Sha512>>(&secret, input),
        "ES256" => {
            use p256::ecdsa::signature::Signer;
            let s: p256::ecdsa::Signature = es256_signer().sign(input);
            s.to_bytes().to_vec()
        }
        "ES384" => {
            use p384::ecdsa::signature::Signer;
            let s: p384::ecdsa::Signature = es384_signer().sign(input);
            s.to_bytes().to_vec()
        }
        "EdDSA" => {
            use ed25519_dalek::Signer;
            ed25519_signer().sign(input).to_bytes().to_vec()
        }
        _ => mac::<Hmac<sha2::Sha256>>(&secret, input),
    };
    Some([input, b".", URL_SAFE_NO_PAD.encode(sig).as_bytes()].concat())
}

/// ECDSA signatures by the harness' keys (r || s), for the differential checks of the jwt target.
pub fn es256_sign(msg: &[u8]) -> Vec<u8> {
    use p256::ecdsa::signature::Signer;
    let s: p256::ecdsa::Signature = es256_signer().sign(msg);
    s.to_bytes().to_vec()
}

pub fn es384_sign(msg: &[u8]) -> Vec<u8> {
    use p384::ecdsa::signature::Signer;
    let s: p384::ecdsa::Signature = es384_signer().sign(msg);
    s.to_bytes().to_vec()
}

pub const ALGS: [&str; 12] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"];

pub fn all_algs() -> Vec<Alg> {
    ALGS.iter().filter_map(|a| Alg::parse(a)).collect()
}

// ---------------------------------------------------------------------------------------------
// Aliyun signature

/// Signs the request as a client would, when it names an `x-ca-key` of `APPS`: removes any
/// `x-ca-signature` and appends the right one (the form body is signed when the content type says
/// it is a form).
pub fn resign_aliyun(pairs: &mut Pairs, method: &[u8], path: &[u8], body: &[u8]) {
    let Some(key) = get(pairs, b"x-ca-key").map(cagate_core::trim) else { return };
    let Some(&(_, secret)) = APPS.iter().find(|(k, _)| k.as_bytes() == key) else { return };
    pairs.retain(|(n, _)| n != b"x-ca-signature");
    let signature = {
        let h = Headers::from_pairs(refs(pairs));
        let form = cagate_core::is_form(h.get(b"content-type")).then_some(body);
        let sts = StringToSign::build(&Signed { method, path, headers: &h, form });
        let alg = Algorithm::from_header(h.get(b"x-ca-signature-method")).unwrap_or(Algorithm::HmacSha256);
        sign(alg, secret.as_bytes(), &sts.canonical())
    };
    pairs.push((b"x-ca-signature".to_vec(), signature.into_bytes()));
}

/// Re-signs every bearer token and `token=` query parameter (see `resign_jwt`).
pub fn resign_tokens(pairs: &mut Pairs) {
    for (n, v) in pairs.iter_mut() {
        if n == b"authorization" && cagate_core::starts_with_ignore_case(v, b"bearer ") {
            if let Some(t) = resign_jwt(cagate_core::trim(&v[7..])) {
                *v = [&b"Bearer "[..], &t].concat();
            }
        }
    }
    let Some(i) = pairs.iter().position(|(n, _)| n == b":path") else { return };
    let path = pairs[i].1.clone();
    let Some(at) = find(&path, b"token=") else { return };
    let start = at + 6;
    let end = path[start..].iter().position(|&b| b == b'&' || b == b'#').map_or(path.len(), |e| start + e);
    if let Some(t) = resign_jwt(&path[start..end]) {
        pairs[i].1 = [&path[..start], &t, &path[end..]].concat();
    }
}

// ---------------------------------------------------------------------------------------------
// Configurations

/// The request path's configuration: every plugin type bound, apps, AppCode, JWT (HS256 jwk),
/// ipControl, accessControl with conditions, trafficControl, backends, a mock.
pub fn rich_config() -> Value {
    let hs = vector("HS256")["jwk"].clone();
    json!({
        "stages": ["RELEASE", "TEST", "PRE"],
        "signature": { "timestampToleranceSeconds": 900, "nonceTtlSeconds": 900, "nonceCapacity": 4096 },
        "maxBodyBytes": 1024, "maxUrlBytes": 2048, "maxHops": 3,
        "stageVariables": { "RELEASE": { "orders": "orders-prod" }, "TEST": { "orders": "orders-test" }, "PRE": { "orders": "orders-pre" } },
        "apps": [
            { "appId": 10001, "name": "one", "appKey": APPS[0].0, "appSecret": APPS[0].1, "appCodes": ["CODE1"], "ownerId": "owner-a" },
            { "appId": 10002, "appKey": APPS[1].0, "appSecret": APPS[1].1, "appCodes": ["CODE2"], "ownerId": "owner-a" },
            { "appId": 10003, "appKey": APPS[2].0, "appSecret": APPS[2].1, "appCodes": ["CODE3"] }
        ],
        "plugins": [
            { "name": "jwt", "type": "jwtAuth", "data": { "parameter": "Authorization", "jwk": hs, "bypassEmptyToken": false,
                "claimParameters": [ { "claimName": "userId", "parameterName": "X-User-Id", "location": "header" },
                                     { "claimName": "sub", "parameterName": "subject", "location": "query" } ] } },
            { "name": "jwt-q", "type": "jwtAuth", "data": { "parameter": "token", "parameterLocation": "query", "jwks": [ hs ],
                "issuer": "https://issuer.example", "audiences": ["cagate", "other"], "preventJtiReplay": true, "jtiCapacity": 64,
                "cacheSize": 2, "bypassEmptyToken": true } },
            { "name": "ac", "type": "accessControl", "data": {
                "parameters": { "userId": "Token:userId", "userType": "Token:userType", "pathUserId": "Parameter:userId",
                                "q": "Query:q", "h": "Header:X-Kind", "x": "XFF:-1", "ip": "System:CaClientIp", "m": "Method",
                                "p": "Path", "app": "System:CaAppId", "ua": "System:CaClientUa", "dom": "System:CaDomain" },
                "rules": [
                    { "name": "admin", "condition": "$userType = 'admin'", "ifTrue": "ALLOW" },
                    { "name": "q", "condition": "$q = 'deny' or ($h <> null and $x = '10.0.0.1') or Random() < 0", "ifTrue": "DENY",
                      "statusCode": 451, "errorMessage": "no ${q} from ${ip} ${dom} ${ua}" },
                    { "name": "user", "condition": "$userId = $pathUserId and $m = 'GET' and $p <> '/x'", "ifFalse": "DENY", "statusCode": 403,
                      "errorMessage": "Path not match ${userId} vs /${pathUserId}",
                      "responseHeaders": { "Content-Type": "application/xml", "X-Reason": "${userId} vs ${pathUserId} ${q}" },
                      "responseBody": "<Reason>Path not match ${userId} vs /${pathUserId}</Reason>" } ] } },
            { "name": "ac-form", "type": "accessControl", "data": {
                "parameters": { "f": "Form:f", "app": "System:CaAppId", "key": "System:CaAppKey", "api": "System:CaApiName",
                                "stage": "System:CaStage", "rid": "System:CaRequestId", "n": "Query:n" },
                "rules": [ { "name": "form", "condition": "$f = 'deny' or $n >= 100 or ($app = 10002 and $stage = 'TEST')", "ifTrue": "DENY" } ] } },
            { "name": "tc", "type": "trafficControl", "data": { "unit": "SECOND", "apiDefault": 6, "userDefault": 4, "appDefault": 3,
                "rateLimitHeaders": true, "specials": [ { "type": "APP", "policies": [ { "key": 10002, "value": 1 } ] },
                                                        { "type": "USER", "policies": [ { "key": "owner-a", "value": 5 } ] } ] } },
            { "name": "tc-min", "type": "trafficControl", "data": { "unit": "MINUTE", "apiDefault": 2 } },
            { "name": "ip", "type": "ipControl", "data": { "type": "REFUSE", "items": [ { "blocks": ["10.0.0.0/8", "2001:db8::/32"] } ] } },
            { "name": "ip-xff", "type": "ipControl", "data": { "type": "REFUSE", "resource": "XFF:0",
                "items": [ { "blocks": ["10.0.0.0/8", "203.0.113.66", "::ffff:192.0.2.0/120"] } ] } },
            { "name": "ip-allow", "type": "ipControl", "data": { "type": "ALLOW",
                "items": [ { "appId": 10001, "blocks": ["192.0.2.0/24"] }, { "blocks": ["10.0.0.0/8", "2001:db8::/64"] } ] } },
            { "name": "cors", "type": "cors", "data": { "allowOrigins": "https://app.example.com,*.example.org", "allowCredentials": true,
                "allowHeaders": "Content-Type,X-Ca-Key,X-Ca-Signature,X-Ca-Signature-Headers,X-Ca-Timestamp,X-Ca-Nonce,Authorization",
                "exposeHeaders": "X-Ca-Request-Id", "maxAge": 600 } },
            { "name": "basic", "type": "basicAuth", "data": { "users": [ { "username": "ops", "password": "pa55w0rd" } ] } },
            { "name": "be", "type": "backendSignature", "data": { "type": "APIGW_BACKEND", "key": "backend-key-1", "secret": "backend-secret-123456" } },
            { "name": "cb", "type": "circuitBreaker", "data": "timeoutThreshold: 2\nwindowInSeconds: 30\nopenTimeoutSeconds: 2\n" },
            { "name": "em", "type": "errorMapping", "data": "parameters:\n  statusCode: \"StatusCode\"\n  resultCode: \"BodyJsonField:$.result_code\"\n  resultId: \"BodyJsonField:$.req_msg_id\"\nerrorCondition: \"$statusCode = 200 and $resultCode <> 'OK'\"\nerrorCode: \"resultCode\"\nmappings:\n  - code: \"ROLE_NOT_EXISTS\"\n    statusCode: 404\n    errorMessage: \"Role Not Exists, RequestId=${resultId}\"\ndefaultMapping:\n  statusCode: 500\n  errorMessage: \"Unknown Error, ${resultCode}, RequestId=${resultId}\"\n" }
        ],
        "groupPlugins": [ { "plugin": "tc" }, { "plugin": "ip" }, { "plugin": "be", "stages": ["TEST"] } ],
        "apis": [
            { "name": "orders", "method": "GET", "path": "/orders/[orderId]", "appCodeAuth": "HEADER", "stages": ["RELEASE", "TEST"],
              "requestMode": "MAPPING",
              "authorizations": [ { "appId": 10001 }, { "appId": 10001, "stage": "TEST" }, { "appId": 10002 },
                                  { "appId": 10003, "authValidTime": "2026-11-14T22:16:00Z" } ],
              "parameters": [ { "name": "orderId", "location": "PATH", "type": "LONG", "required": true },
                              { "name": "fields", "location": "QUERY", "backendName": "select", "backendLocation": "QUERY" },
                              { "name": "X-Tenant", "location": "HEADER", "backendName": "tenant", "backendLocation": "QUERY", "maxLength": 8 },
                              { "name": "trace", "location": "QUERY", "backendName": "X-Trace", "backendLocation": "HEADER" } ],
              "backend": { "type": "HTTP", "cluster": "#orders#", "path": "/v1/orders/[orderId]", "method": "GET", "timeoutMs": 3000,
                           "host": "orders.internal",
                           "constantParameters": [ { "name": "X-Source", "value": "gateway", "location": "HEADER" } ],
                           "systemParameters": [ { "name": "CaClientIp", "backendName": "X-Client-Ip", "location": "HEADER" },
                                                 { "name": "CaStage", "backendName": "stage", "location": "QUERY" },
                                                 { "name": "CaAppId", "backendName": "X-App", "location": "HEADER" } ] },
              "plugins": [ { "plugin": "cb" }, { "plugin": "tc-min", "stages": ["TEST"] }, { "plugin": "ip-xff" } ] },
            { "name": "strict", "method": "GET", "path": "/strict", "forceNonceCheck": true, "authorizations": [ { "appId": 10001 } ] },
            { "name": "form", "method": "POST", "path": "/form", "appCodeAuth": "HEADER_QUERY", "stages": ["RELEASE", "TEST"],
              "authorizations": [ { "appId": 10001 }, { "appId": 10002 }, { "appId": 10002, "stage": "TEST" } ],
              "parameters": [ { "name": "n", "location": "QUERY", "type": "INT" }, { "name": "f", "location": "FORM", "maxLength": 16 } ],
              "plugins": [ { "plugin": "ac-form" }, { "plugin": "ip-allow" } ] },
            { "name": "users", "method": "GET", "path": "/users/[userId]", "authType": "ANONYMOUS",
              "plugins": [ { "plugin": "jwt" }, { "plugin": "ac" }, { "plugin": "cors" } ] },
            { "name": "tokens", "method": "ANY", "path": "/tokens/*", "authType": "ANONYMOUS", "requestMode": "MAPPING_PASSTHROUGH",
              "plugins": [ { "plugin": "jwt-q" }, { "plugin": "cors" } ] },
            { "name": "admin", "method": "GET", "path": "/admin", "authType": "ANONYMOUS", "plugins": [ { "plugin": "basic" } ] },
            { "name": "signed-backend", "method": "ANY", "path": "/backend/*", "authType": "ANONYMOUS",
              "plugins": [ { "plugin": "be" }, { "plugin": "em" } ] },
            { "name": "items", "method": "POST", "path": "/items/[id]", "authType": "ANONYMOUS",
              "parameters": [ { "name": "id", "location": "PATH", "type": "LONG", "required": true },
                              { "name": "X-Tenant", "location": "HEADER", "required": true, "maxLength": 8 },
                              { "name": "status", "location": "QUERY", "enumValues": ["open", "closed"] },
                              { "name": "email", "location": "FORM", "required": true, "regularExpression": "^[^@]+@[^@]+$" } ] },
            { "name": "mock", "method": "GET", "path": "/mock", "authType": "ANONYMOUS",
              "backend": { "type": "MOCK", "mockStatusCode": 201, "mockResult": "{\"ok\":true}", "mockHeaders": [ { "name": "X-Mock", "value": "1" } ] } },
            { "name": "signed", "method": "ANY", "path": "/signed/[a]/*", "appCodeAuth": "HEADER_QUERY", "stages": ["RELEASE", "TEST", "PRE"],
              "authorizations": [ { "appId": 10001 }, { "appId": 10002 }, { "appId": 10003 }, { "appId": 10001, "stage": "PRE" } ],
              "plugins": [ { "plugin": "cors" }, { "plugin": "be" } ] },
            { "name": "open", "method": "ANY", "path": "/*", "authType": "ANONYMOUS", "plugins": [ { "plugin": "em" } ] }
        ]
    })
}

/// A target's VM: the engine of `cfg` with the test kit's in-memory hosts (shared data, clock,
/// stream), as the adapter runs it. An engine is not `Sync`: a target keeps its kit in a
/// `thread_local!` (libFuzzer runs inputs on one thread) and calls `Kit::forget` before each input,
/// so that every input starts from the same VM state.
pub fn kit(cfg: &Value) -> Kit {
    match cagate_core::compile(cfg.to_string().as_bytes()) {
        Ok(gw) => Kit::from_gateway(gw, NOW),
        Err(p) => panic!("fuzz fixture configuration refused: {:?}", p.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
}

/// A nonce store made once: `NonceStore::new` names 4096 shard keys, too slow to do per input.
/// Shards that were never `ensure`d read as empty, as in a fresh store.
pub fn shared_nonces() -> &'static NonceStore {
    static N: OnceLock<NonceStore> = OnceLock::new();
    N.get_or_init(|| NonceStore::new(NonceStoreConfig::for_capacity(4096)))
}

// ---------------------------------------------------------------------------------------------
// The request through the engine, as the adapter runs it, and the checks on what comes out

/// How one request comes and what its backend does.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    pub peer: &'static str,
    /// Whether the backend fails (the circuit breaker's and the error mapping's input).
    pub backend_fails: bool,
    /// The body comes in this many data frames (0 and 1: one).
    pub pieces: usize,
    /// Trailers end the request (after the body, if any).
    pub trailers: bool,
}

impl Default for Env {
    fn default() -> Env {
        Env { peer: PEERS[0], backend_fails: false, pieces: 1, trailers: false }
    }
}

/// A header value Envoy and HTTP/1 can carry: no NUL, CR or LF.
pub fn is_field_value(v: &[u8]) -> bool {
    !v.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
}

fn is_field_name(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|&b| b > 0x20 && b < 0x7f && !b.is_ascii_uppercase())
}

/// Whether Envoy could have delivered this header map: its codecs refuse NUL, CR and LF in names
/// and values, so the core may copy a client's value into a header as it is. The header checks
/// below apply only to such requests; other maps are still run (no panic), unchecked.
pub fn envoy_could_send(head: &Headers<'_>) -> bool {
    head.iter().all(|(n, v)| is_field_value(n) && is_field_value(v))
}

/// `CAGATE_FUZZ_LAX=1` turns the header checks off (no-panic only): to keep fuzzing for other bugs
/// while a header finding awaits its fix.
fn lax() -> bool {
    static LAX: OnceLock<bool> = OnceLock::new();
    *LAX.get_or_init(|| std::env::var_os("CAGATE_FUZZ_LAX").is_some())
}

/// The local reply of a refusal: every header must be one Envoy accepts.
pub fn check_refusal(r: &Refusal, checked: bool) {
    let reply = reply_for(r, REQUEST_ID, cagate_core::errors::ErrorContract::Vpc);
    let headers = reply.headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
    check_reply(&LocalReply { status: reply.status, headers, body: reply.body.into_bytes() }, checked);
}

/// A local reply the gateway sent (a refusal, a preflight, a mock): a status in range, every
/// header value one Envoy accepts; a refusal's code is one of the contract's, and a reply of the
/// gateway's own making (no error code: a mock, a preflight) has valid header names too.
fn check_reply(reply: &LocalReply, checked: bool) {
    let code = reply.headers.iter().find(|(n, _)| n == ERROR_CODE_HEADER).map(|(_, v)| v.as_str());
    let shown = code.unwrap_or("(no code)");
    assert!((100..=599).contains(&reply.status), "reply {shown} status {}", reply.status);
    if let Some(code) = code {
        assert!(errors::by_code(code).is_some(), "refusal code {code:?} is not in the contract");
    }
    for (n, v) in reply.headers.iter().filter(|_| checked) {
        assert!(is_field_value(v.as_bytes()), "reply {shown} header {n} has an invalid value {v:?}");
        assert!(code.is_some() || is_field_name(n.as_bytes()), "reply header {n:?} = {v:?}");
    }
}

/// The forwarded request as the backend gets it: every value one Envoy accepts, and every header
/// the gateway set (not the client's own) with a valid name.
fn check_upstream(head: &Headers<'_>, upstream: &[(Vec<u8>, Vec<u8>)], checked: bool) {
    for (n, v) in upstream.iter().filter(|_| checked) {
        let shown = String::from_utf8_lossy(n);
        assert!(is_field_value(v), "the backend would get header {shown} = {:?}", String::from_utf8_lossy(v));
        let clients = head.iter().any(|(cn, cv)| cn == n.as_slice() && cv == v.as_slice());
        assert!(clients || n.first() == Some(&b':') || is_field_name(n), "edit of an invalid header name {shown:?}");
    }
}

/// The response phase for a forwarded request: the backend answers (500 when it fails, else 200,
/// with the request's body as its JSON, or a fixed one), the circuit breaker counts, errorMapping
/// may rewrite it; what the client gets must be one Envoy can carry.
fn respond(kit: &Kit, o: &mut Outcome, env: &Env, body: &[u8], checked: bool) {
    let doc = match serde_json::from_slice::<Value>(body) {
        Ok(_) => body.to_vec(),
        Err(_) => json!({ "result_code": "ROLE_NOT_EXISTS", "req_msg_id": 7 }).to_string().into_bytes(),
    };
    let status = if env.backend_fails { 500 } else { 200 };
    kit.respond(o, status, &[("content-type", "application/json")], "via_upstream", &doc);
    let status = o.stream.response_header(":status").and_then(|s| s.parse::<u16>().ok());
    assert!(status.is_some_and(|s| (100..=599).contains(&s)), "response status {status:?}");
    for (n, v) in o.stream.response.borrow().iter().filter(|_| checked) {
        assert!(is_field_value(v), "the client would get header {n} = {:?}", String::from_utf8_lossy(v));
    }
}

/// `CAGATE_FUZZ_DEBUG=1` prints each decision (to check that seeds reach what they are meant to).
fn debug(what: std::fmt::Arguments<'_>) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("CAGATE_FUZZ_DEBUG").is_some()) {
        eprintln!("cagate-fuzz: {what}");
    }
}

/// Runs one request through the engine as the adapter does (`filter/wasm/src/http.rs`): `head` is
/// the header map the host hands over (`:method` and `:path` are read from it), `body` follows it
/// as `env` says (nothing when empty, unless trailers end the request), the peer is `env.peer`, the
/// clock says `now`. A forwarded request then gets its response. Checks what comes out.
pub fn drive(kit: &Kit, env: &Env, head: &Headers<'_>, body: &[u8], now: i64) -> Outcome {
    let checked = envoy_could_send(head) && !lax();
    kit.clock.0.set(now);
    let stream = MemoryStream {
        request: RefCell::new(head.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()),
        body: body.to_vec(),
        peer: Some(env.peer.to_string()),
        ..MemoryStream::default()
    };
    let delivery = Delivery { body: !body.is_empty(), pieces: env.pieces, trailers: env.trailers };
    let mut o = kit.run(stream, delivery);
    if let Some(reply) = o.reply() {
        debug(format_args!("answered {} {:?} {:?}", reply.status, o.code(), o.message()));
        check_reply(&reply, checked);
        return o;
    }
    if !o.forwarded() {
        debug(format_args!("held (cluster-mode checks pending)"));
        return o;
    }
    let upstream = o.stream.request.borrow().clone();
    debug(format_args!("forwarded {:?}", upstream.iter().map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v))).collect::<Vec<_>>()));
    check_upstream(head, &upstream, checked);
    respond(kit, &mut o, env, body, checked);
    o
}

/// Builds `Headers` from pairs either through the proxy-wasm serialized form (as the adapter gets
/// them) or directly, and calls `f`.
pub fn with_headers<T>(pairs: &Pairs, serialized: bool, f: impl FnOnce(&Headers<'_>) -> T) -> Option<T> {
    let r = refs(pairs);
    if serialized {
        let buf = headers::serialize(&r);
        let h = Headers::from_serialized(&buf)?;
        assert_eq!(h.iter().count(), r.len(), "serialize/from_serialized lost pairs");
        Some(f(&h))
    } else {
        Some(f(&Headers::from_pairs(r)))
    }
}

/// A few fixed requests through any configuration: what `config_compile` and `config_plugin_data`
/// run once a fuzzed configuration compiles. `prefix` is the path they go to.
pub fn fixed_requests(prefix: &str) -> Vec<(Pairs, Vec<u8>)> {
    let token = vector("HS256")["token"].as_str().unwrap_or("").to_string();
    let basic = "Basic b3BzOnBhNTV3MHJk"; // ops:pa55w0rd
    let p = |m: &str, path: String, extra: &[(&str, &str)]| -> Pairs {
        let mut v: Pairs = vec![
            (b":method".to_vec(), m.as_bytes().to_vec()),
            (b":path".to_vec(), path.into_bytes()),
            (b":authority".to_vec(), b"example.com".to_vec()),
        ];
        v.extend(extra.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())));
        v
    };
    let bearer = format!("Bearer {token}");
    let cookie = format!("a=b; jwt={token}");
    vec![
        (
            p(
                "GET",
                format!("{prefix}/42?q=1&token={token}&AppCode=CODE1"),
                &[
                    ("authorization", &bearer),
                    ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
                    ("origin", "https://app.example.com"),
                    ("cookie", &cookie),
                    ("x-token", &token),
                    ("user-agent", "ua/1"),
                    ("x-kind", "k"),
                    ("x-tenant", "t1"),
                ],
            ),
            Vec::new(),
        ),
        (
            p(
                "OPTIONS",
                format!("{prefix}/42"),
                &[("origin", "https://x.example.org"), ("access-control-request-method", "GET"), ("access-control-request-headers", "authorization")],
            ),
            Vec::new(),
        ),
        (
            p(
                "POST",
                format!("{prefix}/7?n=5"),
                &[("content-type", "application/x-www-form-urlencoded"), ("authorization", "APPCODE CODE1"), ("x-forwarded-for", "192.0.2.9")],
            ),
            b"f=v&a=%E4%B8%AD&email=a@b".to_vec(),
        ),
        (p("GET", format!("{prefix}/admin"), &[("authorization", basic), ("x-ca-stage", "TEST")]), Vec::new()),
        (p("DELETE", format!("{prefix}/"), &[]), Vec::new()),
    ]
}

/// Runs `fixed_requests` twice each through a freshly compiled gateway, on a VM of the thread
/// (`Kit::reconfigure`: a new engine per input would be most of an input's time).
pub fn exercise(gw: &Gateway, prefix: &str) {
    thread_local! {
        static VM: RefCell<Option<Kit>> = const { RefCell::new(None) };
    }
    VM.with_borrow_mut(|vm| {
        match vm {
            Some(kit) => kit.reconfigure(gw.clone()),
            None => *vm = Some(Kit::from_gateway(gw.clone(), NOW)),
        }
        let Some(kit) = vm.as_mut() else { return };
        kit.forget();
        for (pairs, body) in fixed_requests(prefix) {
            for (i, later) in [0, 61_000].into_iter().enumerate() {
                // The second time, the body in two data frames and trailers ending the request.
                let env = Env { peer: PEERS[i], backend_fails: i == 1, pieces: 1 + i, trailers: i == 1 };
                with_headers(&pairs, true, |h| drive(kit, &env, h, &body, NOW + later));
            }
        }
    });
}
