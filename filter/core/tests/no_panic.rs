#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A panic kills the Wasm VM and every request on its worker: feed the request path random and
//! mutated input and require an answer (admit or refuse), never a panic.

use cagate_core::compile;
use cagate_core::conditions;
use cagate_core::headers::{serialize, Headers};
use cagate_core::testkit::{Delivery, Kit, MemoryStream};
use serde_json::json;
use std::cell::RefCell;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, max: usize, alphabet: &[u8]) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| alphabet[(self.next() as usize) % alphabet.len()]).collect()
    }
}

const NASTY: &[u8] = b"%/?&=+;,.:$'\"()[]{}*\\ \t\r\n\x00\x7f\x80\xff\xe4\xb8\xadaZ09-_~<>!#@";

#[test]
fn the_request_path_never_panics() {
    let jwk = json!({"kty":"oct","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"});
    let cfg = json!({
        "maxBodyBytes": 256, "maxUrlBytes": 512, "maxHops": 3,
        "apps": [ { "appId": 1, "appKey": "k", "appSecret": "s", "appCodes": ["C"] } ],
        "plugins": [
            { "name": "jwt", "type": "jwtAuth", "data": { "parameter": "Authorization", "jwk": jwk, "bypassEmptyToken": true,
              "claimParameters": [ { "claimName": "sub", "parameterName": "s", "location": "query" } ] } },
            { "name": "ac", "type": "accessControl", "data": { "parameters": { "a": "Query:a", "b": "Form:b", "x": "XFF:-1", "t": "Token:sub", "p": "Parameter:id" },
              "rules": [ { "name": "r", "condition": "$a > 3 or $b = 'x' or $x = null or $t = null or $t <> $p", "ifFalse": "DENY" } ] } },
            { "name": "tc", "type": "trafficControl", "data": { "unit": "SECOND", "apiDefault": 1000000 } },
            { "name": "ip", "type": "ipControl", "data": { "type": "REFUSE", "resource": "XFF:0", "items": [ { "blocks": ["10.0.0.0/8"] } ] } },
            { "name": "cors", "type": "cors", "data": { "allowOrigins": "*.example.org" } },
            { "name": "be", "type": "backendSignature", "data": { "key": "k", "secret": "s" } }
        ],
        "groupPlugins": [ { "plugin": "jwt" }, { "plugin": "ac" }, { "plugin": "tc" }, { "plugin": "ip" }, { "plugin": "cors" }, { "plugin": "be" } ],
        "apis": [
            { "name": "a", "method": "ANY", "path": "/x/[id]/*", "appCodeAuth": "HEADER_QUERY", "authorizations": [ { "appId": 1 } ],
              "parameters": [ { "name": "n", "location": "QUERY", "type": "INT" } ] },
            { "name": "b", "method": "ANY", "path": "/*", "authType": "ANONYMOUS" }
        ]
    });
    let kit = Kit::new(&cfg.to_string(), 1_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let names: [&[u8]; 14] = [
        b"x-ca-key",
        b"x-ca-signature",
        b"x-ca-signature-headers",
        b"x-ca-timestamp",
        b"x-ca-nonce",
        b"content-type",
        b"content-md5",
        b"authorization",
        b"x-ca-stage",
        b"x-forwarded-for",
        b"origin",
        b"access-control-request-method",
        b"x-ca-hops",
        b"cookie",
    ];
    let (mut admitted, mut refused) = (0, 0);
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..20_000u32 {
        let path = match i % 3 {
            0 => [b"/x/".as_slice(), &rng.bytes(40, NASTY)].concat(),
            1 => [b"/".as_slice(), &rng.bytes(40, b"abc/?&=%20")].concat(),
            _ => rng.bytes(60, NASTY),
        };
        let method = [&b"GET"[..], b"POST", b"OPTIONS", b"\xff"][(rng.next() % 4) as usize];
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for _ in 0..(rng.next() % 8) {
            let name = names[(rng.next() as usize) % names.len()].to_vec();
            let value = match rng.next() % 5 {
                0 => b"k".to_vec(),
                4 => b"198.51.100.7, 203.0.113.7".to_vec(),
                1 => b"application/x-www-form-urlencoded".to_vec(),
                2 => [b"Bearer ".as_slice(), &rng.bytes(80, b"abcXYZ019-_.=")].concat(),
                _ => rng.bytes(50, NASTY),
            };
            pairs.push((name, value));
        }
        if rng.next().is_multiple_of(2) {
            pairs.push((b"x-forwarded-for".to_vec(), b"198.51.100.7".to_vec()));
        }
        // also through the serialized form the adapter uses, truncated at random
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
        let mut buf = serialize(&refs);
        if i.is_multiple_of(5) {
            let cut = (rng.next() as usize) % (buf.len() + 1);
            buf.truncate(cut);
        }
        let Some(h) = Headers::from_serialized(&buf) else { continue };
        // The adapter reads method and path from the header map: they come first in it.
        let mut request = vec![(b":method".to_vec(), method.to_vec()), (b":path".to_vec(), path)];
        request.extend(h.iter().map(|(n, v)| (n.to_vec(), v.to_vec())));
        let stream = MemoryStream {
            request: RefCell::new(request),
            body: rng.bytes(64, NASTY),
            peer: Some("not an address".into()),
            ..MemoryStream::default()
        };
        // The body in one or more data frames, ending the request or followed by trailers.
        let delivery = Delivery { body: i % 7 != 0, pieces: (i % 3) as usize, trailers: i % 4 == 0 };
        let o = kit.run(stream, delivery);
        match o.code() {
            _ if o.forwarded() => admitted += 1,
            Some(code) => {
                refused += 1;
                *codes.entry(code).or_insert(0) += 1;
            }
            None => assert!(o.reply().is_some(), "neither forwarded nor answered"), // a CORS preflight
        }
    }
    assert!(admitted > 0 && refused > 0, "admitted {admitted}, refused {refused}: {codes:?}");
}

#[test]
fn conditions_and_config_never_panic() {
    let mut rng = Rng(12345);
    let vars = vec!["a".to_string(), "b".to_string()];
    for _ in 0..20_000 {
        let src = String::from_utf8_lossy(&rng.bytes(30, b"$ab()'\"=<>!andortnulxyz0129.- \xe4\xb8\xad")).into_owned();
        if let Ok(e) = conditions::parse(&src, &vars) {
            conditions::eval(&e, &|_| conditions::Val::Null, &mut || 0.5);
        }
        let doc = rng.bytes(80, b"{}[]\":,apisnmethodpath/ 0123456789truefalsenull\\");
        let _ = compile(&doc);
    }
}
